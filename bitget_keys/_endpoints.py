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
    )
}
