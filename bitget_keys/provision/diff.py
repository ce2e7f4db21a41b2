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
Items the plan marks absent are never created. Given a `DriftContext`, it also returns
what differs and what to revoke (`bitget_keys.provision.drift`); neutralised keys count
for nothing, so a planned key whose only live copy was neutralised is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import attrs

from bitget_keys import models as m
from bitget_keys.provision.drift import DriftContext, FreezeChange, KeyChange, KeyRevoke, lifecycle
from bitget_keys.provision.key_ops import is_neutralised
from bitget_keys.provision.plan import AccountSpec, BrokerKeySpec, KeySpec, State, SubaccountSpec

__all__ = [
    "AccountDiff",
    "Conflict",
    "DriftContext",
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
    #: Planned keys that exist but differ from the plan (given a `DriftContext`).
    key_changes: tuple[KeyChange, ...] = ()
    #: Sub-accounts to freeze or unfreeze.
    freezes: tuple[FreezeChange, ...] = ()
    #: Live keys to revoke.
    revokes: tuple[KeyRevoke, ...] = ()
    #: Broker keys the plan marks absent that exist: to delete.
    broker_revokes: tuple[BrokerKeySpec, ...] = ()

    @property
    def creates(self) -> int:
        """How many create requests' worth of items this diff holds."""
        return len(self.new_subaccounts) + len(self.new_keys)

    @property
    def empty(self) -> bool:
        """Whether the account already matches its plan."""
        return not (
            self.new_subaccounts
            or self.new_keys
            or self.broker_changes
            or self.key_changes
            or self.freezes
            or self.revokes
            or self.broker_revokes
        )


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
    """The labels of the keys that count: a neutralised key was revoked."""
    return {key.label for key in keys if not is_neutralised(key)}


def _broker_differs(spec: BrokerKeySpec, live: m.BrokerSubaccountAPIKey | None) -> bool:
    if live is None:
        return True
    if set(spec.permissions) != set(live.permissions) or spec.perm_type != live.perm_type:
        return True
    if spec.ip_list is not None and set(spec.ip_list) != set(live.ip_list):
        return True
    return spec.label is not None and spec.label != live.label


def _present(sub: SubaccountSpec) -> SubaccountSpec:
    """``sub`` as it is created: its keys the plan marks absent are left out."""
    keys = tuple(key for key in sub.keys if key.state is State.PRESENT)
    return sub if len(keys) == len(sub.keys) else attrs.evolve(sub, keys=keys)


def _missing_keys(
    planned: SubaccountSpec, uid: str, keys: Iterable[m.VirtualSubaccountAPIKey]
) -> list[MissingKey]:
    """The present keys of ``planned`` that its live sub-account ``uid`` lacks."""
    labels = _live_labels(keys)
    return [
        MissingKey(subaccount=planned, subaccount_uid=uid, key=key)
        for index, key in enumerate(planned.keys)
        if key.state is State.PRESENT
        and key.label not in labels
        and not (index == 0 and planned.label in labels)
    ]


def _broker_changes(account: AccountSpec, live: LiveState) -> tuple[BrokerKeySpec, ...]:
    """The present broker keys whose settings differ from the plan."""
    changes = []
    for spec in account.broker_keys:
        listed = live.broker_keys.get(spec.sub_uid, ())
        current = next((key for key in listed if key.api_key == spec.api_key), None)
        if spec.state is State.PRESENT and _broker_differs(spec, current):
            changes.append(spec)
    return tuple(changes)


def _not_creatable(planned: SubaccountSpec) -> Conflict:
    return Conflict(
        planned.label,
        f"sub-account {planned.name!r} does not exist and every key planned for it is "
        "absent: plan a key to create it with",
    )


def _keys_to_create(
    planned: SubaccountSpec, uid: str, keys: Sequence[m.VirtualSubaccountAPIKey]
) -> tuple[list[MissingKey], list[Conflict]]:
    """
    The missing keys the live sub-account has slots for (every listed key takes one,
    neutralised ones too), and a conflict naming those it has none for.
    """
    missing = _missing_keys(planned, uid, keys)
    room = max(m.MAX_SUBACCOUNT_KEYS - len(keys), 0)
    if len(missing) <= room:
        return missing, []
    return missing[:room], [_no_room(planned, keys, missing[room:])]


def _no_room(
    planned: SubaccountSpec, keys: Sequence[m.VirtualSubaccountAPIKey], left: Sequence[MissingKey]
) -> Conflict:
    """Planned keys a sub-account has no slot for: refused before anything is sent."""
    labels = ", ".join(repr(missing.key.label) for missing in left)
    neutralised = sum(1 for key in keys if is_neutralised(key))
    why = (
        f" ({neutralised} of them neutralised: Bitget has no delete for a classic "
        "sub-account's keys, so delete those in its web UI)"
        if neutralised
        else ""
    )
    return Conflict(
        planned.label,
        f"sub-account {planned.label!r}: key(s) {labels} not created: it holds {len(keys)} "
        f"keys{why}, and Bitget allows {m.MAX_SUBACCOUNT_KEYS}",
    )


def diff_account(
    account: AccountSpec, live: LiveState, context: DriftContext | None = None
) -> AccountDiff:
    """
    What is missing from ``live`` for ``account``'s plan, in creation order; given
    ``context``, what differs and what to revoke too.
    """
    by_label: dict[str, m.VirtualSubaccount] = {}
    for subaccount in live.subaccounts:
        if subaccount.status is not m.SubaccountStatus.DELETED:
            by_label.setdefault(subaccount.label, subaccount)
    new_subaccounts: list[SubaccountSpec] = []
    new_keys: list[MissingKey] = []
    matched: dict[str, str] = {}
    #: Sub-accounts the plan marks absent that exist, by label.
    retired: dict[str, str] = {}
    conflicts: list[Conflict] = []
    for planned in account.subaccounts:
        found = by_label.get(planned.label)
        absent = planned.state is State.ABSENT
        if found is None and not absent:
            if _present(planned).keys:
                new_subaccounts.append(_present(planned))
            else:
                conflicts.append(_not_creatable(planned))
        if found is None:
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
        uid = found.subaccount_uid
        (retired if absent else matched)[planned.label] = uid
        if not absent:
            fitting, no_room = _keys_to_create(planned, uid, live.keys.get(uid, ()))
            new_keys += fitting
            conflicts += no_room
    diff = AccountDiff(
        account=account.name,
        new_subaccounts=tuple(new_subaccounts),
        new_keys=tuple(new_keys),
        broker_changes=_broker_changes(account, live),
        matched=matched,
        conflicts=tuple(conflicts),
    )
    if context is None:
        return diff
    more = lifecycle(account, live, {**matched, **retired}, context)
    return attrs.evolve(
        diff,
        key_changes=more.key_changes,
        freezes=more.freezes,
        revokes=more.revokes,
        broker_revokes=more.broker_revokes,
    )
