"""
Request and response models for Bitget's API-key endpoints.

Every class is a frozen, keyword-only attrs class with Python names; the wire names
live in the private converter. Collections are tuples. Secrets (passphrases, secret
keys) are `Secret` values, never printed.

Requests check every documented Bitget rule when they are built and raise
`ValidationError` listing each broken rule with its field, so nothing invalid is ever
sent. Responses accept values Bitget adds later: an unknown permission or status
becomes a pseudo-member of its enum rather than an error.

The rules themselves live in `bitget_keys.models._rules`, one function each, so that
code checking values of its own (a provisioning plan) applies the same ones. Models are
grouped by what they describe: `common` (enums), `account` (v2 and v3 account info),
`subaccounts` and `keys` (v2 user endpoints; the copy-trading key too), `broker` (v2
ND-broker endpoints).
"""

from __future__ import annotations

from bitget_keys.models._rules import (
    BATCH_KEY_PERMISSIONS as BATCH_KEY_PERMISSIONS,
)
from bitget_keys.models._rules import (
    BROKER_KEY_PERMISSIONS as BROKER_KEY_PERMISSIONS,
)
from bitget_keys.models._rules import (
    BROKER_LABEL_MAX_LENGTH as BROKER_LABEL_MAX_LENGTH,
)
from bitget_keys.models._rules import LABEL_MAX_LENGTH as LABEL_MAX_LENGTH
from bitget_keys.models._rules import MAX_BATCH_ITEMS as MAX_BATCH_ITEMS
from bitget_keys.models._rules import MAX_IP_LIST as MAX_IP_LIST
from bitget_keys.models._rules import MAX_LIST_LIMIT as MAX_LIST_LIMIT
from bitget_keys.models._rules import MAX_SUBACCOUNT_KEYS as MAX_SUBACCOUNT_KEYS
from bitget_keys.models._rules import MAX_SUBACCOUNTS as MAX_SUBACCOUNTS
from bitget_keys.models._rules import (
    MODIFY_VIRTUAL_KEY_PERMISSIONS as MODIFY_VIRTUAL_KEY_PERMISSIONS,
)
from bitget_keys.models._rules import (
    SUBACCOUNT_PERMISSIONS as SUBACCOUNT_PERMISSIONS,
)
from bitget_keys.models._rules import UTA_NOTE_MAX_LENGTH as UTA_NOTE_MAX_LENGTH
from bitget_keys.models._rules import (
    VIRTUAL_KEY_PERMISSIONS as VIRTUAL_KEY_PERMISSIONS,
)
from bitget_keys.models._rules import Problems as Problems
from bitget_keys.models._rules import (
    ip_problem,
    label_problem,
    perm_type_problem,
    subaccount_name_key,
    subaccount_name_problem,
)
from bitget_keys.models.account import AccountInfo, ServerTime, UTAAccountInfo
from bitget_keys.models.broker import (
    BrokerSubaccountAPIKey,
    CreateBrokerSubaccountAPIKeyRequest,
    DeleteBrokerSubaccountAPIKeyRequest,
    ListBrokerSubaccountAPIKeysRequest,
    ModifyBrokerSubaccountAPIKeyRequest,
)
from bitget_keys.models.common import (
    AccountMode,
    FreezeOperation,
    OpenStrEnum,
    Permission,
    PermType,
    SubaccountMode,
    SubaccountStatus,
    UTAKeyType,
    UTASubaccountType,
)
from bitget_keys.models.common import permission as permission
from bitget_keys.models.keys import (
    CopyAPIKey,
    CreateCopyAPIKeyRequest,
    CreatedVirtualSubaccountAPIKey,
    CreateVirtualSubaccountAPIKeyRequest,
    ListVirtualSubaccountAPIKeysRequest,
    ModifyVirtualSubaccountAPIKeyRequest,
    VirtualSubaccountAPIKey,
)
from bitget_keys.models.subaccounts import (
    BatchCreateVirtualSubaccountsRequest,
    CreatedVirtualSubaccount,
    CreatedVirtualSubaccounts,
    CreateVirtualSubaccountsRequest,
    ListVirtualSubaccountsRequest,
    ModifyVirtualSubaccountRequest,
    ModifyVirtualSubaccountResult,
    NewVirtualSubaccount,
    VirtualSubaccount,
    VirtualSubaccountPage,
)
from bitget_keys.models.uta import (
    CLEAR_WHITELIST,
    ClearWhitelist,
    CreatedUTASubaccount,
    CreatedUTASubaccountAPIKey,
    CreateUTASubaccountAPIKeyRequest,
    CreateUTASubaccountRequest,
    DeleteUTASubaccountAPIKeyRequest,
    UpdateUTASubaccountAPIKeyRequest,
)
from bitget_keys.models.uta_broker import (
    CreateUTABrokerSubaccountAPIKeyRequest,
    DeleteUTABrokerSubaccountAPIKeyRequest,
    ModifyUTABrokerSubaccountAPIKeyRequest,
    UTABrokerSubaccountAPIKey,
)
from bitget_keys.models.uta_lists import (
    AccountSettings,
    FreezeUTASubaccountRequest,
    ListUTASubaccountAPIKeysRequest,
    ListUTASubaccountsRequest,
    UTASubaccount,
    UTASubaccountAPIKey,
    UTASubaccountAPIKeyPage,
    UTASubaccountPage,
)

__all__ = [
    "CLEAR_WHITELIST",
    "AccountInfo",
    "AccountMode",
    "AccountSettings",
    "BatchCreateVirtualSubaccountsRequest",
    "BrokerSubaccountAPIKey",
    "ClearWhitelist",
    "CopyAPIKey",
    "CreateBrokerSubaccountAPIKeyRequest",
    "CreateCopyAPIKeyRequest",
    "CreateUTABrokerSubaccountAPIKeyRequest",
    "CreateUTASubaccountAPIKeyRequest",
    "CreateUTASubaccountRequest",
    "CreateVirtualSubaccountAPIKeyRequest",
    "CreateVirtualSubaccountsRequest",
    "CreatedUTASubaccount",
    "CreatedUTASubaccountAPIKey",
    "CreatedVirtualSubaccount",
    "CreatedVirtualSubaccountAPIKey",
    "CreatedVirtualSubaccounts",
    "DeleteBrokerSubaccountAPIKeyRequest",
    "DeleteUTABrokerSubaccountAPIKeyRequest",
    "DeleteUTASubaccountAPIKeyRequest",
    "FreezeOperation",
    "FreezeUTASubaccountRequest",
    "ListBrokerSubaccountAPIKeysRequest",
    "ListUTASubaccountAPIKeysRequest",
    "ListUTASubaccountsRequest",
    "ListVirtualSubaccountAPIKeysRequest",
    "ListVirtualSubaccountsRequest",
    "ModifyBrokerSubaccountAPIKeyRequest",
    "ModifyUTABrokerSubaccountAPIKeyRequest",
    "ModifyVirtualSubaccountAPIKeyRequest",
    "ModifyVirtualSubaccountRequest",
    "ModifyVirtualSubaccountResult",
    "NewVirtualSubaccount",
    "OpenStrEnum",
    "PermType",
    "Permission",
    "ServerTime",
    "SubaccountMode",
    "SubaccountStatus",
    "UTAAccountInfo",
    "UTABrokerSubaccountAPIKey",
    "UTAKeyType",
    "UTASubaccount",
    "UTASubaccountAPIKey",
    "UTASubaccountAPIKeyPage",
    "UTASubaccountPage",
    "UTASubaccountType",
    "UpdateUTASubaccountAPIKeyRequest",
    "VirtualSubaccount",
    "VirtualSubaccountAPIKey",
    "VirtualSubaccountPage",
    "ip_problem",
    "label_problem",
    "perm_type_problem",
    "subaccount_name_key",
    "subaccount_name_problem",
]
