"""
The enums the models share, which keep values Bitget adds later instead of failing.

An unknown permission or status becomes a pseudo-member of its enum (`OpenStrEnum`),
so an answer that carries one still decodes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Self

__all__ = [
    "AccountMode",
    "FreezeOperation",
    "OpenStrEnum",
    "PermType",
    "Permission",
    "SubaccountMode",
    "SubaccountStatus",
    "UTAKeyType",
    "UTASubaccountType",
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
    #: v3 ND-broker keys only: withdrawals (the key must be read_and_write).
    WITHDRAW = "withdraw"


class PermType(OpenStrEnum):
    """Whether a key may write or only read."""

    READ_AND_WRITE = "read_and_write"
    READONLY = "readonly"


class UTAKeyType(OpenStrEnum):
    """Whether a Unified Trading Account (v3) sub-account key may write or only read."""

    READ_WRITE = "read_write"
    READ_ONLY = "read_only"


class SubaccountMode(OpenStrEnum):
    """
    Which kind of account a v3 sub-account is (the master must be unified or hybrid).

    create-sub takes it in lower case; sub-list answers in upper case: both read alike.
    """

    CLASSIC = "classic"
    UNIFIED = "unified"

    @classmethod
    def _missing_(cls, value: object) -> SubaccountMode | None:
        if isinstance(value, str) and value.lower() in cls._value2member_map_:
            return cls(value.lower())
        return super()._missing_(value)


class AccountMode(OpenStrEnum):
    """
    What a master account is, as far as API keys go.

    ``classic`` accounts use the v2 endpoints; ``unified`` and ``hybrid`` ones use v3
    (Bitget's settings endpoint answers one of those, and 40084 for a classic key).
    ``upgrading`` and ``switching`` are transitions of about a minute, during which
    neither family can be relied on.
    """

    CLASSIC = "classic"
    UNIFIED = "unified"
    HYBRID = "hybrid"
    UPGRADING = "upgrading"
    SWITCHING = "switching"

    @property
    def family(self) -> str | None:
        """The API family serving this mode's keys: ``v2``, ``v3``, or ``None`` in a transition."""
        if self is AccountMode.CLASSIC:
            return "v2"
        if self in (AccountMode.UNIFIED, AccountMode.HYBRID):
            return "v3"
        return None


class UTASubaccountType(OpenStrEnum):
    """What kind of sub-account v3 sub-list shows: regular, virtual or custodial."""

    COMMON = "COMMON"
    VIRTUAL_CHILD = "VIRTUAL_CHILD"
    ENTRUST_CHILD = "ENTRUST_CHILD"


class FreezeOperation(OpenStrEnum):
    """What v3 freeze-sub does to a sub-account."""

    FREEZE = "freeze"
    UNFREEZE = "unfreeze"


class SubaccountStatus(OpenStrEnum):
    """The state of a virtual sub-account."""

    NORMAL = "normal"
    FREEZE = "freeze"
    DELETED = "del"
    #: v3 sub-list's documented spelling of a frozen sub-account (its example says freeze).
    FROZEN = "frozen"

    @property
    def frozen(self) -> bool:
        """Whether the sub-account is frozen, however the endpoint spells it."""
        return self in (SubaccountStatus.FREEZE, SubaccountStatus.FROZEN)


#: Every documented permission by its wire value.
PERMISSION_BY_VALUE: Final[dict[str, Permission]] = {member.value: member for member in Permission}


def permission(value: Permission | str) -> Permission:
    """The `Permission` for a wire value (a pseudo-member when Bitget adds one)."""
    # A dict lookup: calling an Enum class costs several times more, on every request.
    return PERMISSION_BY_VALUE.get(value) or Permission(value)
