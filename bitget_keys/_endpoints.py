"""
The one table of the Bitget endpoints this library calls: method, path and rate limit.

Rates come from Bitget's documentation (requests per 1-second window, counted per
account UID unless ``scope`` is ``"ip"``). Where a public source disagrees or is
unconfirmed the stricter value is used: account-info is listed by one third party at
10/s and is treated as 1/s here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

import attrs

__all__ = ["ENDPOINTS", "Endpoint", "EndpointName"]


class EndpointName(StrEnum):
    """
    Every endpoint's stable name: the key of its rate-limit lane, of scheduler policies
    and statistics, and of the emulator's audit. A `str`, so a plain name works too.
    """

    SERVER_TIME = "server_time"
    ACCOUNT_INFO = "account_info"
    ACCOUNT_INFO_V3 = "account_info_v3"
    CREATE_COPY_API_KEY = "create_copy_api_key"
    CREATE_VIRTUAL_SUBACCOUNT_API_KEY = "create_virtual_subaccount_api_key"
    BATCH_CREATE_VIRTUAL_SUBACCOUNTS = "batch_create_virtual_subaccounts"
    MODIFY_BROKER_SUBACCOUNT_API_KEY = "modify_broker_subaccount_api_key"
    LIST_VIRTUAL_SUBACCOUNTS = "list_virtual_subaccounts"
    LIST_VIRTUAL_SUBACCOUNT_API_KEYS = "list_virtual_subaccount_api_keys"
    MODIFY_VIRTUAL_SUBACCOUNT_API_KEY = "modify_virtual_subaccount_api_key"
    MODIFY_VIRTUAL_SUBACCOUNT = "modify_virtual_subaccount"
    CREATE_VIRTUAL_SUBACCOUNTS = "create_virtual_subaccounts"
    CREATE_BROKER_SUBACCOUNT_API_KEY = "create_broker_subaccount_api_key"
    LIST_BROKER_SUBACCOUNT_API_KEYS = "list_broker_subaccount_api_keys"
    DELETE_BROKER_SUBACCOUNT_API_KEY = "delete_broker_subaccount_api_key"
    ACCOUNT_SETTINGS = "account_settings"
    CREATE_UTA_SUBACCOUNT = "create_uta_subaccount"
    LIST_UTA_SUBACCOUNTS = "list_uta_subaccounts"
    FREEZE_UTA_SUBACCOUNT = "freeze_uta_subaccount"
    CREATE_UTA_SUBACCOUNT_API_KEY = "create_uta_subaccount_api_key"
    UPDATE_UTA_SUBACCOUNT_API_KEY = "update_uta_subaccount_api_key"
    DELETE_UTA_SUBACCOUNT_API_KEY = "delete_uta_subaccount_api_key"
    LIST_UTA_SUBACCOUNT_API_KEYS = "list_uta_subaccount_api_keys"
    CREATE_UTA_BROKER_SUBACCOUNT_API_KEY = "create_uta_broker_subaccount_api_key"
    MODIFY_UTA_BROKER_SUBACCOUNT_API_KEY = "modify_uta_broker_subaccount_api_key"
    DELETE_UTA_BROKER_SUBACCOUNT_API_KEY = "delete_uta_broker_subaccount_api_key"
    QUERY_UTA_BROKER_SUBACCOUNT_API_KEY = "query_uta_broker_subaccount_api_key"


@attrs.frozen
class Endpoint:
    """One Bitget endpoint and its documented limit."""

    #: Short stable name, used for rate-limit lanes, logs and statistics.
    name: str
    method: Literal["GET", "POST"]
    #: Request path, ``/api`` included; this is what is signed.
    path: str
    #: Requests allowed per ``window`` seconds.
    rate: int
    window: float = 1.0
    #: What Bitget counts the limit against.
    scope: Literal["uid", "ip"] = "uid"
    signed: bool = True
    #: Whether a call creates something that Bitget shows only once or allows only once.
    creates: bool = False

    @property
    def family(self) -> Literal["v2", "v3"]:
        """
        The API family: ``v2`` serves classic accounts (a unified master's key gets 40085),
        ``v3`` serves Unified Trading Accounts (a classic master's key gets 40084).
        """
        return "v3" if self.path.startswith("/api/v3/") else "v2"


SERVER_TIME: Final = Endpoint(
    EndpointName.SERVER_TIME, "GET", "/api/v2/public/time", 20, scope="ip", signed=False
)
ACCOUNT_INFO: Final = Endpoint(EndpointName.ACCOUNT_INFO, "GET", "/api/v2/spot/account/info", 1)
CREATE_COPY_API_KEY: Final = Endpoint(
    EndpointName.CREATE_COPY_API_KEY,
    "POST",
    "/api/v2/copy/mix-trader/create-copy-api",
    1,
    creates=True,
)
CREATE_VIRTUAL_SUBACCOUNT_API_KEY: Final = Endpoint(
    EndpointName.CREATE_VIRTUAL_SUBACCOUNT_API_KEY,
    "POST",
    "/api/v2/user/create-virtual-subaccount-apikey",
    5,
    creates=True,
)
BATCH_CREATE_VIRTUAL_SUBACCOUNTS: Final = Endpoint(
    EndpointName.BATCH_CREATE_VIRTUAL_SUBACCOUNTS,
    "POST",
    "/api/v2/user/batch-create-subaccount-and-apikey",
    1,
    creates=True,
)
MODIFY_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    EndpointName.MODIFY_BROKER_SUBACCOUNT_API_KEY,
    "POST",
    "/api/v2/broker/manage/modify-subaccount-apikey",
    10,
)
LIST_VIRTUAL_SUBACCOUNTS: Final = Endpoint(
    EndpointName.LIST_VIRTUAL_SUBACCOUNTS, "GET", "/api/v2/user/virtual-subaccount-list", 1
)
LIST_VIRTUAL_SUBACCOUNT_API_KEYS: Final = Endpoint(
    EndpointName.LIST_VIRTUAL_SUBACCOUNT_API_KEYS,
    "GET",
    "/api/v2/user/virtual-subaccount-apikey-list",
    5,
)
MODIFY_VIRTUAL_SUBACCOUNT_API_KEY: Final = Endpoint(
    EndpointName.MODIFY_VIRTUAL_SUBACCOUNT_API_KEY,
    "POST",
    "/api/v2/user/modify-virtual-subaccount-apikey",
    5,
)
#: Freezes or unfreezes a virtual sub-account (its ``status``), resending its rights.
MODIFY_VIRTUAL_SUBACCOUNT: Final = Endpoint(
    EndpointName.MODIFY_VIRTUAL_SUBACCOUNT,
    "POST",
    "/api/v2/user/modify-virtual-subaccount",
    5,
)
CREATE_VIRTUAL_SUBACCOUNTS: Final = Endpoint(
    EndpointName.CREATE_VIRTUAL_SUBACCOUNTS,
    "POST",
    "/api/v2/user/create-virtual-subaccount",
    5,
    creates=True,
)
CREATE_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    EndpointName.CREATE_BROKER_SUBACCOUNT_API_KEY,
    "POST",
    "/api/v2/broker/manage/create-subaccount-apikey",
    10,
    creates=True,
)
LIST_BROKER_SUBACCOUNT_API_KEYS: Final = Endpoint(
    EndpointName.LIST_BROKER_SUBACCOUNT_API_KEYS,
    "GET",
    "/api/v2/broker/manage/subaccount-apikey-list",
    10,
)

#: The only key delete of the v2 API: virtual sub-accounts' keys have none.
DELETE_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    EndpointName.DELETE_BROKER_SUBACCOUNT_API_KEY,
    "POST",
    "/api/v2/broker/manage/delete-subaccount-apikey",
    10,
)

# -- Unified Trading Accounts (v3) ---------------------------------------------------------
# The user endpoints allow 10 requests per second per UID each, the ND-broker ones 20,
# account-info 5 (it needs no permission, so any key, a sub-account's too, may call it).

ACCOUNT_SETTINGS: Final = Endpoint(
    EndpointName.ACCOUNT_SETTINGS, "GET", "/api/v3/account/settings", 20
)
ACCOUNT_INFO_V3: Final = Endpoint(EndpointName.ACCOUNT_INFO_V3, "GET", "/api/v3/account/info", 5)
CREATE_UTA_SUBACCOUNT: Final = Endpoint(
    EndpointName.CREATE_UTA_SUBACCOUNT, "POST", "/api/v3/user/create-sub", 10, creates=True
)
LIST_UTA_SUBACCOUNTS: Final = Endpoint(
    EndpointName.LIST_UTA_SUBACCOUNTS, "GET", "/api/v3/user/sub-list", 10
)
FREEZE_UTA_SUBACCOUNT: Final = Endpoint(
    EndpointName.FREEZE_UTA_SUBACCOUNT, "POST", "/api/v3/user/freeze-sub", 10
)
CREATE_UTA_SUBACCOUNT_API_KEY: Final = Endpoint(
    EndpointName.CREATE_UTA_SUBACCOUNT_API_KEY,
    "POST",
    "/api/v3/user/create-sub-api",
    10,
    creates=True,
)
UPDATE_UTA_SUBACCOUNT_API_KEY: Final = Endpoint(
    EndpointName.UPDATE_UTA_SUBACCOUNT_API_KEY, "POST", "/api/v3/user/update-sub-api", 10
)
DELETE_UTA_SUBACCOUNT_API_KEY: Final = Endpoint(
    EndpointName.DELETE_UTA_SUBACCOUNT_API_KEY, "POST", "/api/v3/user/delete-sub-api", 10
)
LIST_UTA_SUBACCOUNT_API_KEYS: Final = Endpoint(
    EndpointName.LIST_UTA_SUBACCOUNT_API_KEYS, "GET", "/api/v3/user/sub-api-list", 10
)
CREATE_UTA_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    EndpointName.CREATE_UTA_BROKER_SUBACCOUNT_API_KEY,
    "POST",
    "/api/v3/broker/create-sub-apikey",
    20,
    creates=True,
)
MODIFY_UTA_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    EndpointName.MODIFY_UTA_BROKER_SUBACCOUNT_API_KEY,
    "POST",
    "/api/v3/broker/modify-sub-apikey",
    20,
)
DELETE_UTA_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    EndpointName.DELETE_UTA_BROKER_SUBACCOUNT_API_KEY,
    "POST",
    "/api/v3/broker/delete-sub-apikey",
    20,
)
QUERY_UTA_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    EndpointName.QUERY_UTA_BROKER_SUBACCOUNT_API_KEY, "GET", "/api/v3/broker/query-sub-apikey", 20
)

#: Every endpoint, by name.
ENDPOINTS: Final[dict[str, Endpoint]] = {
    endpoint.name: endpoint
    for endpoint in (
        SERVER_TIME,
        ACCOUNT_INFO,
        CREATE_COPY_API_KEY,
        CREATE_VIRTUAL_SUBACCOUNT_API_KEY,
        BATCH_CREATE_VIRTUAL_SUBACCOUNTS,
        MODIFY_BROKER_SUBACCOUNT_API_KEY,
        LIST_VIRTUAL_SUBACCOUNTS,
        LIST_VIRTUAL_SUBACCOUNT_API_KEYS,
        MODIFY_VIRTUAL_SUBACCOUNT_API_KEY,
        MODIFY_VIRTUAL_SUBACCOUNT,
        CREATE_VIRTUAL_SUBACCOUNTS,
        CREATE_BROKER_SUBACCOUNT_API_KEY,
        LIST_BROKER_SUBACCOUNT_API_KEYS,
        DELETE_BROKER_SUBACCOUNT_API_KEY,
        ACCOUNT_SETTINGS,
        ACCOUNT_INFO_V3,
        CREATE_UTA_SUBACCOUNT,
        LIST_UTA_SUBACCOUNTS,
        FREEZE_UTA_SUBACCOUNT,
        CREATE_UTA_SUBACCOUNT_API_KEY,
        UPDATE_UTA_SUBACCOUNT_API_KEY,
        DELETE_UTA_SUBACCOUNT_API_KEY,
        LIST_UTA_SUBACCOUNT_API_KEYS,
        CREATE_UTA_BROKER_SUBACCOUNT_API_KEY,
        MODIFY_UTA_BROKER_SUBACCOUNT_API_KEY,
        DELETE_UTA_BROKER_SUBACCOUNT_API_KEY,
        QUERY_UTA_BROKER_SUBACCOUNT_API_KEY,
    )
}
