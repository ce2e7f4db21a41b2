"""
What apply would do, item by item, with the attributes each change sets: the model
behind ``plan``'s output, its JSON document and a saved plan.

`account_changes` is pure: from a plan account, the family serving its master and its
live state it lists every create and change (a new sub-account and each of its keys, a
further key, a broker key's settings as ``old -> new``, the copy key), in the order
apply makes them, and the notices apply would report without changing anything: live
keys whose secrets the vault lacks (orphans) and conflicts. Given a `DriftContext`, it
also lists each planned key that drifted (``~``, each differing attribute ``live ->
planned``), each sub-account to freeze or unfreeze, and each revoke (``-``, saying how:
deleted, or neutralised where Bitget can't delete).

Attribute values are plain JSON values (strings, lists of strings, ``null``), so the
same objects serve the text, ``plan --json`` and the saved plan, which compares them
with what apply computes again.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable
from typing import Any, Final

import attrs

from bitget_keys import models as m
from bitget_keys.errors import ValidationError
from bitget_keys.provision.account_report import AccountReport
from bitget_keys.provision.diff import AccountDiff, DriftContext, LiveState, diff_account
from bitget_keys.provision.drift import FreezeChange, KeyChange, KeyRevoke
from bitget_keys.provision.family import Family
from bitget_keys.provision.key_ops import is_neutralised
from bitget_keys.provision.plan import AccountSpec, BrokerKeySpec, KeySpec, SubaccountSpec
from bitget_keys.provision.plan_modes import unified_key, unified_subaccount
from bitget_keys.provision.results import ItemKind

__all__ = [
    "AccountChanges",
    "Action",
    "Attribute",
    "Notice",
    "PlannedChange",
    "Summary",
    "Value",
    "account_changes",
    "summarize",
]

#: An attribute's value as JSON has it.
Value = str | list[str] | bool | None

#: How a revoke is carried out, by the family serving the master.
REVOKE_HOW: Final = {
    "v2": "neutralise (classic keys cannot be deleted)",
    "v3": "delete",
}


class Action(enum.StrEnum):
    """What a change does; shown as Terraform does (``+``, ``~``, ``-``)."""

    CREATE = "create"
    CHANGE = "change"
    REVOKE = "revoke"

    @property
    def symbol(self) -> str:
        return {"create": "+", "change": "~", "revoke": "-"}[self.value]


@attrs.frozen
class Attribute:
    """One attribute a change sets; a change's also says what it was (``old``)."""

    name: str
    new: Value
    old: Value = None
    #: Whether ``old`` is shown (``old -> new``): a change's attributes.
    changed: bool = False

    def to_json(self) -> Any:
        return {"old": self.old, "new": self.new} if self.changed else self.new


@attrs.frozen(kw_only=True)
class PlannedChange:
    """One thing apply would create, change or revoke."""

    account: str
    action: Action
    kind: ItemKind
    #: The item as apply's results name it: ``alpha``, ``alpha/trade``,
    #: ``5550001/bg_sub`` (broker sub-account UID and key), ``copy``.
    address: str
    attributes: tuple[Attribute, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "action": self.action.value,
            "kind": self.kind.value,
            "address": self.address,
            "attributes": {a.name: a.to_json() for a in self.attributes},
        }


@attrs.frozen(kw_only=True)
class Notice:
    """What apply would report without changing anything: an orphan or a conflict."""

    account: str
    #: ``orphan`` or ``conflict``.
    kind: str
    address: str
    detail: str
    api_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "kind": self.kind,
            "address": self.address,
            "api_key": self.api_key,
            "detail": self.detail,
        }


@attrs.frozen(kw_only=True)
class AccountChanges:
    """Everything apply would do for one plan account."""

    account: str
    family: Family
    changes: tuple[PlannedChange, ...] = ()
    notices: tuple[Notice, ...] = ()


@attrs.frozen
class Summary:
    """The counts ``plan`` ends with."""

    create: int = 0
    change: int = 0
    revoke: int = 0
    orphans: int = 0
    conflicts: int = 0

    @property
    def changes(self) -> bool:
        return bool(self.create or self.change or self.revoke)

    def line(self) -> str:
        if not self.changes and not (self.orphans or self.conflicts):
            return "No changes. Live state matches the plan."
        return f"Plan: {self.create} to create, {self.change} to change, {self.revoke} to revoke."

    def to_json(self) -> dict[str, int]:
        return attrs.asdict(self)


def summarize(accounts: Iterable[AccountChanges]) -> Summary:
    """The counts of every account's changes and notices."""
    counts = dict.fromkeys(("create", "change", "revoke", "orphan", "conflict"), 0)
    for account in accounts:
        for change in account.changes:
            counts[change.action.value] += 1
        for notice in account.notices:
            counts[notice.kind] += 1
    return Summary(
        counts["create"], counts["change"], counts["revoke"], counts["orphan"], counts["conflict"]
    )


def _strings(values: Iterable[object]) -> list[str]:
    return sorted(str(value) for value in values)


def _key_attributes(key: KeySpec, family: Family) -> tuple[Attribute, ...]:
    """What a new key is created with, as its family's create request carries it."""
    if family == "v3":
        try:
            settings = unified_key(key)
        except ValidationError:  # the mode check refuses such a plan before apply runs
            pass
        else:
            return (
                Attribute("label", settings.note),
                Attribute("permissions", _strings(settings.permissions)),
                Attribute("perm_type", str(settings.type)),
                Attribute("ip_list", list(settings.ips)),
            )
    return (
        Attribute("label", key.label),
        Attribute("permissions", _strings(key.permissions)),
        # None: the request leaves it out and Bitget's default applies (a first key
        # made by batch-create never takes one).
        Attribute("perm_type", None if key.perm_type is None else str(key.perm_type)),
        Attribute("ip_list", list(key.ip_list)),
    )


def _new_subaccount(account: str, sub: SubaccountSpec, family: Family) -> list[PlannedChange]:
    name = unified_subaccount(sub)[0] if family == "v3" else sub.name
    changes = [
        PlannedChange(
            account=account,
            action=Action.CREATE,
            kind=ItemKind.SUBACCOUNT,
            address=sub.label,
            attributes=(Attribute("name", name), Attribute("label", sub.label)),
        )
    ]
    changes += [_new_key(account, sub, key, family) for key in sub.keys]
    return changes


def _new_key(account: str, sub: SubaccountSpec, key: KeySpec, family: Family) -> PlannedChange:
    return PlannedChange(
        account=account,
        action=Action.CREATE,
        kind=ItemKind.KEY,
        address=f"{sub.label}/{key.label}",
        attributes=_key_attributes(key, family),
    )


def _broker_change(
    account: str, spec: BrokerKeySpec, live: m.BrokerSubaccountAPIKey | None
) -> PlannedChange:
    """A broker key's modify: each attribute that differs, ``old -> new``."""
    wanted: list[tuple[str, Value, Value]] = [
        (
            "permissions",
            None if live is None else _strings(live.permissions),
            _strings(spec.permissions),
        ),
        (
            "perm_type",
            None if live is None or live.perm_type is None else str(live.perm_type),
            str(spec.perm_type),
        ),
    ]
    if spec.ip_list is not None:
        old = None if live is None else _strings(live.ip_list)
        wanted.append(("ip_list", old, _strings(spec.ip_list)))
    if spec.label is not None:
        wanted.append(("label", None if live is None else live.label, spec.label))
    attributes = tuple(
        Attribute(name, new, old, changed=True)
        for name, old, new in wanted
        # Whitelists and permissions compare as sets, as the diff does.
        if live is None or old != new
    )
    return PlannedChange(
        account=account,
        action=Action.CHANGE,
        kind=ItemKind.BROKER_KEY,
        address=f"{spec.sub_uid}/{spec.api_key}",
        attributes=attributes,
    )


def _orphans(
    account: AccountSpec, diff: AccountDiff, live: LiveState, family: Family, vault: Collection[str]
) -> list[Notice]:
    """Planned keys that exist live without their secret in the vault (as apply reports)."""
    found: list[Notice] = []
    for sub in account.subaccounts:
        uid = diff.matched.get(sub.label)
        if uid is None:
            continue
        live_keys = {key.label: key for key in live.keys.get(uid, ()) if not is_neutralised(key)}
        for index, key in enumerate(sub.keys):
            present = live_keys.get(key.label) or (live_keys.get(sub.label) if index == 0 else None)
            if present is not None and present.api_key not in vault:
                found.append(
                    Notice(
                        account=account.name,
                        kind="orphan",
                        address=f"{sub.label}/{key.label}",
                        detail=AccountReport.orphan_detail(family),
                        api_key=present.api_key,
                    )
                )
    return found


#: Shown on a modify or neutralisation whose key's passphrase no one holds.
NOT_HELD: Final = Attribute(
    "passphrase", "not held: apply cannot send this; change the key in Bitget's web UI"
)


def _key_change(account: str, change: KeyChange, context: DriftContext) -> PlannedChange:
    """A drifted key's modify: each differing attribute, ``live -> planned``."""
    attributes = [Attribute("api_key", change.live.api_key)]
    attributes += [Attribute(d.name, d.planned, d.live, changed=True) for d in change.differences]
    if context.passphrase_missing(change.live.api_key, change.key):
        attributes.append(NOT_HELD)
    return PlannedChange(
        account=account,
        action=Action.CHANGE,
        kind=ItemKind.KEY,
        address=f"{change.subaccount.label}/{change.key.label}",
        attributes=tuple(attributes),
    )


def _freeze(account: str, change: FreezeChange) -> PlannedChange:
    return PlannedChange(
        account=account,
        action=Action.CHANGE,
        kind=ItemKind.SUBACCOUNT,
        address=change.label,
        attributes=(Attribute("frozen", change.frozen, not change.frozen, changed=True),),
    )


def _revoke(account: str, revoke: KeyRevoke, context: DriftContext) -> PlannedChange:
    family = "v3" if context.family == "v3" else "v2"
    attributes = [
        Attribute("api_key", revoke.live.api_key),
        Attribute("how", REVOKE_HOW[family]),
        Attribute("reason", str(revoke.reason)),
    ]
    # Deleting a unified key takes no passphrase; neutralising a classic one does.
    if family == "v2" and context.passphrase_missing(revoke.live.api_key, revoke.key):
        attributes.append(NOT_HELD)
    return PlannedChange(
        account=account,
        action=Action.REVOKE,
        kind=ItemKind.KEY,
        address=f"{revoke.subaccount}/{revoke.live.label}",
        attributes=tuple(attributes),
    )


def _lifecycle_changes(
    account: str, diff: AccountDiff, context: DriftContext
) -> list[PlannedChange]:
    """The modifies, freezes and revokes of ``diff``, as apply carries them out."""
    changes = [_key_change(account, change, context) for change in diff.key_changes]
    changes += [_freeze(account, change) for change in diff.freezes]
    changes += [_revoke(account, revoke, context) for revoke in diff.revokes]
    changes += [
        PlannedChange(
            account=account,
            action=Action.REVOKE,
            kind=ItemKind.BROKER_KEY,
            address=f"{spec.sub_uid}/{spec.api_key}",
            attributes=(Attribute("how", "delete"), Attribute("reason", "absent in the plan")),
        )
        for spec in diff.broker_revokes
    ]
    return changes


def account_changes(
    account: AccountSpec,
    family: Family,
    live: LiveState,
    *,
    copy_key: bool,
    vault_keys: Collection[str] | None = None,
    context: DriftContext | None = None,
) -> AccountChanges:
    """
    What apply would do for ``account`` whose master (served by ``family``) has ``live``.

    ``copy_key``: whether apply would create the copy key (planned, not in the vault).
    ``vault_keys``: the API keys whose secrets the vault holds; ``None`` (no vault read)
    foresees no orphans. ``context``: how drift and revokes are found (``None``: creates
    and broker key changes only).
    """
    diff = diff_account(account, live, context)
    changes: list[PlannedChange] = []
    for sub in diff.new_subaccounts:
        changes += _new_subaccount(account.name, sub, family)
    changes += [
        _new_key(account.name, missing.subaccount, missing.key, family) for missing in diff.new_keys
    ]
    for spec in diff.broker_changes:
        listed = live.broker_keys.get(spec.sub_uid, ())
        current = next((key for key in listed if key.api_key == spec.api_key), None)
        changes.append(_broker_change(account.name, spec, current))
    if context is not None:
        changes += _lifecycle_changes(account.name, diff, context)
    if copy_key:
        changes.append(
            PlannedChange(
                account=account.name,
                action=Action.CREATE,
                kind=ItemKind.COPY_KEY,
                address="copy",
            )
        )
    notices = [] if vault_keys is None else _orphans(account, diff, live, family, vault_keys)
    notices += [
        Notice(account=account.name, kind="conflict", address=c.label, detail=c.detail)
        for c in diff.conflicts
    ]
    return AccountChanges(
        account=account.name, family=family, changes=tuple(changes), notices=tuple(notices)
    )
