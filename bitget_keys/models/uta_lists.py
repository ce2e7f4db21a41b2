"""
Unified Trading Account (v3): the lists of sub-accounts and keys, freezing a
sub-account, and the account settings that tell a master's mode.

The v3 lists page with an opaque ``cursor`` and a ``has_next`` flag (a boolean in
Bitget's examples, a string in its tables: both read alike). Bitget's example answers
return a cursor even on the last page, so paging stops on ``has_next`` being false, on a
short or empty page, or when the cursor stops moving.
"""

from __future__ import annotations

import datetime as dt

import attrs

from bitget_keys.errors import Problem
from bitget_keys.models._rules import UTA_MAX_LIST_LIMIT, Checked, Problems, check_uid
from bitget_keys.models.common import (
    AccountMode,
    FreezeOperation,
    Permission,
    SubaccountMode,
    SubaccountStatus,
    UTAKeyType,
    UTASubaccountType,
)

__all__ = [
    "AccountSettings",
    "FreezeUTASubaccountRequest",
    "ListUTASubaccountAPIKeysRequest",
    "ListUTASubaccountsRequest",
    "UTASubaccount",
    "UTASubaccountAPIKey",
    "UTASubaccountAPIKeyPage",
    "UTASubaccountPage",
]


def _check_page(out: Problems, limit: int, cursor: str | None) -> None:
    checked: object = limit
    if not isinstance(checked, int) or isinstance(checked, bool):
        out.append(Problem("limit", "must be an integer"))
    elif not 1 <= limit <= UTA_MAX_LIST_LIMIT:
        out.append(Problem("limit", f"must be 1-{UTA_MAX_LIST_LIMIT} (got {limit})"))
    given: object = cursor
    if given is not None and (not isinstance(given, str) or not given):
        out.append(Problem("cursor", "must be the cursor of the previous page, or None"))


@attrs.frozen(kw_only=True)
class ListUTASubaccountsRequest(Checked):
    """v3 sub-list: one page of the master's sub-accounts (every kind, classic and unified)."""

    limit: int = UTA_MAX_LIST_LIMIT
    #: ``None`` for the first page, then the previous page's `UTASubaccountPage.cursor`.
    cursor: str | None = None

    def _check(self, out: Problems) -> None:
        _check_page(out, self.limit, self.cursor)


@attrs.frozen(kw_only=True)
class UTASubaccount:
    """A sub-account as v3 sub-list shows it."""

    sub_uid: str
    #: The virtual email, masked (``abc****@virtual-bitget.com``).
    username: str = ""
    note: str = ""
    status: SubaccountStatus | None = None
    account_mode: SubaccountMode | None = None
    type: UTASubaccountType | None = None
    created_time: dt.datetime | None = None
    updated_time: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class UTASubaccountPage:
    """One page of v3 sub-list."""

    subaccounts: tuple[UTASubaccount, ...] = ()
    has_next: bool = False
    cursor: str | None = None


@attrs.frozen(kw_only=True)
class ListUTASubaccountAPIKeysRequest(Checked):
    """v3 sub-api-list: one page of a sub-account's keys (never with secrets)."""

    sub_uid: str
    limit: int = UTA_MAX_LIST_LIMIT
    cursor: str | None = None

    def _check(self, out: Problems) -> None:
        check_uid(out, "sub_uid", self.sub_uid)
        _check_page(out, self.limit, self.cursor)


@attrs.frozen(kw_only=True)
class UTASubaccountAPIKey:
    """A unified sub-account's key as sub-api-list and update-sub-api show it (no secret)."""

    api_key: str
    note: str = ""
    type: UTAKeyType | None = None
    permissions: tuple[Permission, ...] = ()
    ips: tuple[str, ...] = ()
    #: ``ts`` on the wire; Bitget does not document it, it reads as the creation time.
    created_time: dt.datetime | None = None

    @property
    def created_ms(self) -> int | None:
        """``created_time`` in epoch milliseconds, exactly as Bitget sent it."""
        if self.created_time is None:
            return None
        return round(self.created_time.timestamp() * 1000)


@attrs.frozen(kw_only=True)
class UTASubaccountAPIKeyPage:
    """One page of v3 sub-api-list."""

    keys: tuple[UTASubaccountAPIKey, ...] = ()
    has_next: bool = False
    cursor: str | None = None


@attrs.frozen(kw_only=True)
class FreezeUTASubaccountRequest(Checked):
    """v3 freeze-sub: freeze or unfreeze one sub-account."""

    sub_uid: str
    operation: FreezeOperation = attrs.field(converter=FreezeOperation)

    def _check(self, out: Problems) -> None:
        check_uid(out, "sub_uid", self.sub_uid)
        if not self.operation.known:
            out.append(Problem("operation", "must be freeze or unfreeze"))


@attrs.frozen(kw_only=True)
class AccountSettings:
    """v3 account settings, reduced to what key management needs: the account's mode."""

    account_mode: AccountMode
    #: The calling key's UID (Bitget added it in 2025; older answers may lack it).
    uid: str | None = None
