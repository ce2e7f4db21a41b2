"""
The pure diff between a plan and what exists: no I/O, no clock.

Live sub-accounts are matched to planned ones by label (labels are unique per master in
a plan; a unified sub-account's note), because Bitget masks names in some answers; what
a name shows must agree with the plan, case-insensitively, or the match is reported as a
conflict: a classic name in clear (its first 8 letters), a unified username (the virtual
email's local part), or the first letters a masked unified name shows. Keys are
matched by label within their sub-account. The first key of a classic sub-account is
created together with it by batch-create, which gives it the sub-account's label on
Bitget, so that key is present when a live key carries either its own label or the
sub-account's.

`diff_account` returns what is missing, in the order it must be made: sub-accounts (with
their first keys), then further keys of existing sub-accounts, then broker key changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

import attrs

from bitget_keys import models as m
from bitget_keys.provision.plan import AccountSpec, BrokerKeySpec, KeySpec, SubaccountSpec

__all__ = [
    "AccountDiff",
    "Conflict",
    "LiveState",
    "MissingKey",
    "diff_account",
    "name_contradicts",
]

_CLEAR_NAME: Final = re.compile(r"([A-Za-z]{8})(?![A-Za-z])")


@attrs.frozen(kw_only=True)
class LiveState:
    """What one master account has, as read from the list endpoints."""

    subaccounts: tuple[m.VirtualSubaccount, ...] = ()
    #: Keys per sub-account UID.
    keys: Mapping[str, tuple[m.VirtualSubaccountAPIKey, ...]] = attrs.field(factory=dict)
    #: Keys per broker sub-account UID.
    broker_keys: Mapping[str, tuple[m.BrokerSubaccountAPIKey, ...]] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class MissingKey:
    """A planned key absent from an existing sub-account."""

    subaccount: SubaccountSpec
    subaccount_uid: str
    key: KeySpec


@attrs.frozen
class Conflict:
    """A planned sub-account that live state contradicts; only a person can settle it."""

    #: The plan's label of the sub-account.
    label: str
    detail: str

    def __str__(self) -> str:
        return self.detail


@attrs.frozen(kw_only=True)
class AccountDiff:
    """What must be done for one master account to match its plan."""

    account: str
    #: Sub-accounts to create, each with its first key.
    new_subaccounts: tuple[SubaccountSpec, ...] = ()
    #: Further keys of sub-accounts that exist.
    new_keys: tuple[MissingKey, ...] = ()
    #: Broker keys whose settings differ from the plan.
    broker_changes: tuple[BrokerKeySpec, ...] = ()
    #: Planned sub-accounts found live, by planned label, with their UIDs.
    matched: Mapping[str, str] = attrs.field(factory=dict)
    #: Problems that stop an item (for example a label matching a differently named
    #: sub-account); reported, never "fixed" by creating something.
    conflicts: tuple[Conflict, ...] = ()

    @property
    def creates(self) -> int:
        """How many create requests' worth of items this diff holds."""
        return len(self.new_subaccounts) + len(self.new_keys)

    @property
    def empty(self) -> bool:
        """Whether the account already matches its plan."""
        return not (self.new_subaccounts or self.new_keys or self.broker_changes)


def clear_name(name: str) -> str | None:
    """The 8-letter name when Bitget sent it in clear (maybe with a suffix), else None."""
    if "*" in name:
        return None
    found = _CLEAR_NAME.match(name)
    return found.group(1).lower() if found else None


def name_contradicts(live: str, planned: str) -> bool:
    """
    Whether a live sub-account's name, as far as Bitget shows it, is not the planned one.

    A classic name in clear is its 8 letters; a unified one is the virtual email's local
    part (the username). A masked name (``abc****@virtual-bitget.com``) shows its first
    letters, which must begin the planned name; a fully masked one says nothing.
    """
    planned = planned.lower()
    if "*" in live:
        return not planned.startswith(live.split("*", 1)[0].lower())
    name = clear_name(live)
    if name is not None:
        return name != planned
    local = live.split("@", 1)[0].lower()
    return local.isascii() and local.isalpha() and local != planned


def _live_labels(keys: Iterable[m.VirtualSubaccountAPIKey]) -> set[str]:
    return {key.label for key in keys}


def _broker_differs(spec: BrokerKeySpec, live: m.BrokerSubaccountAPIKey | None) -> bool:
    if live is None:
        return True
    if set(spec.permissions) != set(live.permissions) or spec.perm_type != live.perm_type:
        return True
    if spec.ip_list is not None and set(spec.ip_list) != set(live.ip_list):
        return True
    return spec.label is not None and spec.label != live.label


def diff_account(account: AccountSpec, live: LiveState) -> AccountDiff:
    """What is missing from ``live`` for ``account``'s plan, in creation order."""
    by_label: dict[str, m.VirtualSubaccount] = {}
    for subaccount in live.subaccounts:
        if subaccount.status is not m.SubaccountStatus.DELETED:
            by_label.setdefault(subaccount.label, subaccount)
    new_subaccounts: list[SubaccountSpec] = []
    new_keys: list[MissingKey] = []
    matched: dict[str, str] = {}
    conflicts: list[Conflict] = []
    for planned in account.subaccounts:
        found = by_label.get(planned.label)
        if found is None:
            new_subaccounts.append(planned)
            continue
        if name_contradicts(found.subaccount_name, planned.name):
            conflicts.append(
                Conflict(
                    planned.label,
                    f"sub-account {planned.name!r}: label {planned.label!r} belongs to the "
                    f"live sub-account {found.subaccount_name!r} ({found.subaccount_uid})",
                )
            )
            continue
        matched[planned.label] = found.subaccount_uid
        labels = _live_labels(live.keys.get(found.subaccount_uid, ()))
        for index, key in enumerate(planned.keys):
            present = key.label in labels or (index == 0 and planned.label in labels)
            if not present:
                new_keys.append(
                    MissingKey(subaccount=planned, subaccount_uid=found.subaccount_uid, key=key)
                )
    broker_changes = []
    for spec in account.broker_keys:
        current = next(
            (key for key in live.broker_keys.get(spec.sub_uid, ()) if key.api_key == spec.api_key),
            None,
        )
        if _broker_differs(spec, current):
            broker_changes.append(spec)
    return AccountDiff(
        account=account.name,
        new_subaccounts=tuple(new_subaccounts),
        new_keys=tuple(new_keys),
        broker_changes=tuple(broker_changes),
        matched=matched,
        conflicts=tuple(conflicts),
    )
