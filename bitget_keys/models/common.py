"""
The enums the models share, which keep values Bitget adds later instead of failing.

An unknown permission or status becomes a pseudo-member of its enum (`OpenStrEnum`),
so an answer that carries one still decodes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Self

__all__ = [
    "OpenStrEnum",
    "PermType",
    "Permission",
    "SubaccountMode",
    "SubaccountStatus",
    "UTAKeyType",
    "permission",
]


class OpenStrEnum(StrEnum):
    """A string enum that keeps unknown values (as pseudo-members) instead of failing."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value.upper()
        member._value_ = value
        return member

    @property
    def known(self) -> bool:
        """Whether this value is one Bitget documents."""
        return self._name_ in type(self).__members__


class Permission(OpenStrEnum):
    """
    An API-key permission. Which values an endpoint takes differs by endpoint.

    User endpoints (virtual sub-accounts) document ``spot_trade``, ``margin_trade``,
    ``contract_trade``, ``transfer`` and ``read``; one version of the
    create-virtual-subaccount-apikey page documents the broker-style values too. Broker
    endpoints take ``contract_order``, ``contract_position``, ``spot_trade``,
    ``margin_trade``, ``copytrading_trade`` and ``wallet_transfer``. Unified Trading
    Account (v3) sub-account keys take ``uta_mgt`` and ``uta_trade``.
    """

    SPOT_TRADE = "spot_trade"
    MARGIN_TRADE = "margin_trade"
    CONTRACT_TRADE = "contract_trade"
    TRANSFER = "transfer"
    READ = "read"
    CONTRACT_ORDER = "contract_order"
    CONTRACT_POSITION = "contract_position"
    COPYTRADING_TRADE = "copytrading_trade"
    WALLET_TRANSFER = "wallet_transfer"
    WALLET_WITHDRAW = "wallet_withdraw"
    #: Unified Trading Account (v3) keys: UTA management, UTA trading.
    UTA_MGT = "uta_mgt"
    UTA_TRADE = "uta_trade"


class PermType(OpenStrEnum):
    """Whether a key may write or only read."""

    READ_AND_WRITE = "read_and_write"
    READONLY = "readonly"


class UTAKeyType(OpenStrEnum):
    """Whether a Unified Trading Account (v3) sub-account key may write or only read."""

    READ_WRITE = "read_write"
    READ_ONLY = "read_only"


class SubaccountMode(OpenStrEnum):
    """Which kind of account a new v3 sub-account is (the master must be unified or hybrid)."""

    CLASSIC = "classic"
    UNIFIED = "unified"


class SubaccountStatus(OpenStrEnum):
    """The state of a virtual sub-account."""

    NORMAL = "normal"
    FREEZE = "freeze"
    DELETED = "del"


#: Every documented permission by its wire value.
PERMISSION_BY_VALUE: Final[dict[str, Permission]] = {member.value: member for member in Permission}


def permission(value: Permission | str) -> Permission:
    """The `Permission` for a wire value (a pseudo-member when Bitget adds one)."""
    # A dict lookup: calling an Enum class costs several times more, on every request.
    return PERMISSION_BY_VALUE.get(value) or Permission(value)
