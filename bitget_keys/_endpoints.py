"""
The one table of the Bitget endpoints this library calls: method, path and rate limit.

Rates come from Bitget's documentation (requests per 1-second window, counted per
account UID unless ``scope`` is ``"ip"``). Where a public source disagrees or is
unconfirmed the stricter value is used: account-info is listed by one third party at
10/s and is treated as 1/s here.
"""

from __future__ import annotations

from typing import Final, Literal

import attrs

__all__ = ["ENDPOINTS", "Endpoint"]


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
    "server_time", "GET", "/api/v2/public/time", 20, scope="ip", signed=False
)
ACCOUNT_INFO: Final = Endpoint("account_info", "GET", "/api/v2/spot/account/info", 1)
CREATE_COPY_API_KEY: Final = Endpoint(
    "create_copy_api_key", "POST", "/api/v2/copy/mix-trader/create-copy-api", 1, creates=True
)
CREATE_VIRTUAL_SUBACCOUNT_API_KEY: Final = Endpoint(
    "create_virtual_subaccount_api_key",
    "POST",
    "/api/v2/user/create-virtual-subaccount-apikey",
    5,
    creates=True,
)
BATCH_CREATE_VIRTUAL_SUBACCOUNTS: Final = Endpoint(
    "batch_create_virtual_subaccounts",
    "POST",
    "/api/v2/user/batch-create-subaccount-and-apikey",
    1,
    creates=True,
)
MODIFY_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    "modify_broker_subaccount_api_key",
    "POST",
    "/api/v2/broker/manage/modify-subaccount-apikey",
    10,
)
LIST_VIRTUAL_SUBACCOUNTS: Final = Endpoint(
    "list_virtual_subaccounts", "GET", "/api/v2/user/virtual-subaccount-list", 1
)
LIST_VIRTUAL_SUBACCOUNT_API_KEYS: Final = Endpoint(
    "list_virtual_subaccount_api_keys", "GET", "/api/v2/user/virtual-subaccount-apikey-list", 5
)
MODIFY_VIRTUAL_SUBACCOUNT_API_KEY: Final = Endpoint(
    "modify_virtual_subaccount_api_key",
    "POST",
    "/api/v2/user/modify-virtual-subaccount-apikey",
    5,
)
CREATE_VIRTUAL_SUBACCOUNTS: Final = Endpoint(
    "create_virtual_subaccounts",
    "POST",
    "/api/v2/user/create-virtual-subaccount",
    5,
    creates=True,
)
CREATE_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    "create_broker_subaccount_api_key",
    "POST",
    "/api/v2/broker/manage/create-subaccount-apikey",
    10,
    creates=True,
)
LIST_BROKER_SUBACCOUNT_API_KEYS: Final = Endpoint(
    "list_broker_subaccount_api_keys", "GET", "/api/v2/broker/manage/subaccount-apikey-list", 10
)

# -- Unified Trading Accounts (v3) ---------------------------------------------------------
# The user endpoints allow 10 requests per second per UID each, the ND-broker ones 20.

ACCOUNT_SETTINGS: Final = Endpoint("account_settings", "GET", "/api/v3/account/settings", 20)
CREATE_UTA_SUBACCOUNT: Final = Endpoint(
    "create_uta_subaccount", "POST", "/api/v3/user/create-sub", 10, creates=True
)
LIST_UTA_SUBACCOUNTS: Final = Endpoint("list_uta_subaccounts", "GET", "/api/v3/user/sub-list", 10)
FREEZE_UTA_SUBACCOUNT: Final = Endpoint(
    "freeze_uta_subaccount", "POST", "/api/v3/user/freeze-sub", 10
)
CREATE_UTA_SUBACCOUNT_API_KEY: Final = Endpoint(
    "create_uta_subaccount_api_key", "POST", "/api/v3/user/create-sub-api", 10, creates=True
)
UPDATE_UTA_SUBACCOUNT_API_KEY: Final = Endpoint(
    "update_uta_subaccount_api_key", "POST", "/api/v3/user/update-sub-api", 10
)
DELETE_UTA_SUBACCOUNT_API_KEY: Final = Endpoint(
    "delete_uta_subaccount_api_key", "POST", "/api/v3/user/delete-sub-api", 10
)
LIST_UTA_SUBACCOUNT_API_KEYS: Final = Endpoint(
    "list_uta_subaccount_api_keys", "GET", "/api/v3/user/sub-api-list", 10
)
CREATE_UTA_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    "create_uta_broker_subaccount_api_key",
    "POST",
    "/api/v3/broker/create-sub-apikey",
    20,
    creates=True,
)
MODIFY_UTA_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    "modify_uta_broker_subaccount_api_key", "POST", "/api/v3/broker/modify-sub-apikey", 20
)
DELETE_UTA_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    "delete_uta_broker_subaccount_api_key", "POST", "/api/v3/broker/delete-sub-apikey", 20
)
QUERY_UTA_BROKER_SUBACCOUNT_API_KEY: Final = Endpoint(
    "query_uta_broker_subaccount_api_key", "GET", "/api/v3/broker/query-sub-apikey", 20
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
        CREATE_VIRTUAL_SUBACCOUNTS,
        CREATE_BROKER_SUBACCOUNT_API_KEY,
        LIST_BROKER_SUBACCOUNT_API_KEYS,
        ACCOUNT_SETTINGS,
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
