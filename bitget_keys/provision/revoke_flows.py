"""
The lifecycle flows of an apply round: modify a key that drifted, revoke a key, freeze
or unfreeze a sub-account, delete a broker key.

Each is journalled (its intent before the request, its outcome after) and recorded in
the round's `KnownState`, so the next round's diff sees it done. A failure is not
reported at once: the round loop reads again and diffs again, so a revocation that
failed (a 5xx, a lost answer) is tried again in the next round, and the run's final
report names each one that never succeeded, with its last error (`AccountReport.final`).
Bitget refusing one for good (a 4xx) is not tried again. A modify, and a classic key's
neutralisation, need the key's passphrase: the vault's record of the key, else the
plan's; without either the item fails saying so, never silently skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

import attrs

from bitget_keys import models as m
from bitget_keys._gate import DispatchGate
from bitget_keys._secret import Secret
from bitget_keys.errors import DispatchStoppedError
from bitget_keys.provision import key_ops
from bitget_keys.provision.audit_log import AuditLog, AuditLogError
from bitget_keys.provision.diff import AccountDiff, LiveState, MissingKey
from bitget_keys.provision.drift import FreezeChange, KeyChange, KeyRevoke
from bitget_keys.provision.family import AccountAPI
from bitget_keys.provision.journal import Outcome
from bitget_keys.provision.live import list_keys
from bitget_keys.provision.outcomes import EXPECTED, ambiguous, refused, stop_on_backend_failure
from bitget_keys.provision.plan import BrokerKeySpec, SubaccountSpec
from bitget_keys.provision.results import ItemKey, ItemKind, Status
from bitget_keys.provision.retrying import describe_error
from bitget_keys.provision.vault_records import Stage, VaultRecord

if TYPE_CHECKING:
    from bitget_keys.provision.account_run import AccountRun

__all__ = [
    "DIFF_PARTS",
    "NOT_HELD_DETAIL",
    "Audit",
    "HeldKeys",
    "change_items",
    "delete_broker_key",
    "failure_status",
    "item_of",
    "modify_key",
    "reads_unplanned",
    "revoke_key",
    "set_frozen",
]

#: Why a modify or a classic key's neutralisation can't be sent.
NOT_HELD_DETAIL: Final = (
    "passphrase not held (neither the vault nor the plan has it): change it in Bitget's web UI"
)


_log: Final = logging.getLogger("bitget_keys.apply")


class Audit:
    """
    Where a run's modifies, freezes and revokes are recorded: the audit log at ``path``,
    opened at its first entry (``bitget-keys apply`` opens it before sending anything,
    so a damaged log is refused before the run starts). A log
    that can't be written stops the run from sending more, so no further lifecycle
    operation goes unrecorded.
    """

    __slots__ = ("gate", "log", "path")

    def __init__(self, path: Path | None = None, gate: DispatchGate | None = None) -> None:
        #: ``None``: nothing is recorded (a library caller that keeps no log).
        self.path = path
        self.gate = gate
        self.log: AuditLog | None = None

    def __repr__(self) -> str:
        return f"<Audit {self.path}>"

    def record(
        self, operation: str, *, account: str, target: str, outcome: str, detail: str
    ) -> None:
        """Append one entry; a failure is logged and stops the run's sending."""
        if self.path is None:
            return
        try:
            if self.log is None:
                self.log = AuditLog(self.path)
            self.log.record(
                operation, account=account, target=target, outcome=outcome, detail=detail
            )
        except AuditLogError as exc:
            _log.error("the audit log %s could not be written: %s", self.path, exc)
            if self.gate is not None:
                self.gate.close(f"the audit log could not be written: {exc}")


class HeldKeys:
    """The vault's last record of each key: stages, passphrases, copy keys."""

    __slots__ = ("read", "records")

    def __init__(self, records: Iterable[VaultRecord] | None = None) -> None:
        #: Whether a vault was read (``None`` given: none was, so nothing is known).
        self.read = records is not None
        self.records: dict[str, VaultRecord] = {record.api_key: record for record in records or ()}

    def __repr__(self) -> str:
        return f"<HeldKeys {len(self.records)}>"

    def stages(self) -> dict[str, Stage]:
        return {api_key: record.stage for api_key, record in self.records.items()}

    def with_passphrase(self) -> frozenset[str] | None:
        """The keys whose passphrase the vault holds; ``None`` when no vault was read."""
        if not self.read:
            return None
        return frozenset(k for k, record in self.records.items() if record.passphrase is not None)

    def copy_keys(self) -> frozenset[str]:
        """The traders' copy keys, which prune never revokes."""
        return frozenset(k for k, record in self.records.items() if record.kind == "copy_key")

    def passphrase(self, api_key: str, planned: Secret | None) -> Secret | None:
        """The key's passphrase: the vault's record of it, else the plan's."""
        record = self.records.get(api_key)
        if record is not None and record.passphrase is not None:
            return record.passphrase
        return planned


async def reads_unplanned(api: AccountAPI, live: LiveState) -> LiveState:
    """
    ``live`` with the keys of every sub-account whose keys it lacks (those the plan
    does not name): what prune needs to know.
    """
    uids = [
        sub.subaccount_uid
        for sub in live.subaccounts
        if sub.status is not m.SubaccountStatus.DELETED and sub.subaccount_uid not in live.keys
    ]
    if not uids:
        return live
    found = dict(zip(uids, await list_keys(api, uids), strict=True))
    return attrs.evolve(live, keys={**live.keys, **found})


#: The parts of an `AccountDiff` that list work, each entry one result's item.
DIFF_PARTS: Final = (
    "new_subaccounts",
    "new_keys",
    "broker_changes",
    "key_changes",
    "freezes",
    "revokes",
    "broker_revokes",
)
_LIFECYCLE_PARTS: Final = DIFF_PARTS[3:]

_Entry = SubaccountSpec | MissingKey | BrokerKeySpec | KeyChange | FreezeChange | KeyRevoke


def item_of(entry: _Entry) -> ItemKey:
    """The result item of one entry of a diff's parts (see `DIFF_PARTS`)."""
    if isinstance(entry, SubaccountSpec):
        return ItemKey(ItemKind.SUBACCOUNT, entry.label)
    if isinstance(entry, FreezeChange):
        return ItemKey(ItemKind.SUBACCOUNT, entry.label)
    if isinstance(entry, MissingKey | KeyChange):
        return ItemKey(ItemKind.KEY, entry.subaccount.label, entry.key.label)
    if isinstance(entry, KeyRevoke):
        return ItemKey(ItemKind.REVOKE, entry.subaccount, entry.live.api_key)
    return ItemKey(ItemKind.BROKER_KEY, entry.sub_uid, entry.api_key)


def change_items(diff: AccountDiff) -> Iterator[ItemKey]:
    """The result items of ``diff``'s modifies, freezes and revokes."""
    for part in _LIFECYCLE_PARTS:
        for entry in getattr(diff, part):
            yield item_of(entry)


def _begin(run: AccountRun, item: ItemKey, operation: str) -> int | None:
    """Journal the intent, unless the run stops sending (then reported stopped: ``None``)."""
    if not run.out.sending:
        run.out.stopped(item)
        return None
    return run.out.journal.begin(run.account.name, operation, item.journal_target())


def _audit(run: AccountRun, operation: str, target: str, outcome: str, detail: str = "") -> None:
    """The one place lifecycle operations reach the audit log (see `Audit`)."""
    account = run.account.name
    run.audit.record(operation, account=account, target=target, outcome=outcome, detail=detail)


def _failed(  # noqa: PLR0917 - one failure, every part of it
    run: AccountRun,
    item: ItemKey,
    entry: int | None,
    exc: BaseException,
    done: Status,
    api_key: str | None,
) -> str:
    """Settle, remember and return the outcome of a failed request (see `AccountReport`)."""
    out = run.out
    stop_on_backend_failure(out.gate, exc)
    unknown = ambiguous(exc)
    status = failure_status(exc)
    if refused(exc):
        out.refused.add(item)
    detail = describe_error(exc)
    if entry is not None:
        out.journal.settle(entry, Outcome.UNKNOWN if unknown else Outcome.FAILED, detail=detail)
    out.change_failed(item, status, done=done, api_key=api_key, detail=detail, error=exc)
    return "unknown" if unknown else "failed"


def failure_status(exc: BaseException) -> Status:
    """A failed change's status: stopped (never sent), unknown (may have taken effect), failed."""
    if isinstance(exc, DispatchStoppedError):
        return Status.STOPPED
    return Status.UNKNOWN if ambiguous(exc) else Status.FAILED


def _not_held(  # noqa: PLR0917 - every part of the failure
    run: AccountRun, item: ItemKey, operation: str, api_key: str, target: str, done: Status
) -> None:
    """A key whose passphrase no one holds: failed for good, and said so."""
    run.out.refused.add(item)
    run.out.change_failed(item, Status.FAILED, done=done, api_key=api_key, detail=NOT_HELD_DETAIL)
    _audit(run, operation, target, "refused", NOT_HELD_DETAIL)


def _replace_key(
    run: AccountRun, uid: str, key: m.VirtualSubaccountAPIKey | None, api_key: str
) -> None:
    """The round's known keys of ``uid`` with ``api_key`` replaced by ``key`` (or gone)."""
    keys = run.known.keys.get(uid, [])
    run.known.keys[uid] = [
        found for k in keys if (found := (key if k.api_key == api_key else k)) is not None
    ]


async def modify_key(run: AccountRun, change: KeyChange) -> None:
    """Give a planned key that drifted the plan's settings (the whole whitelist)."""
    item = item_of(change)
    out = run.out
    api_key = change.live.api_key
    passphrase = run.held.passphrase(api_key, change.key.passphrase)
    if passphrase is None and out.sending:
        _not_held(run, item, "modify", api_key, item.target, Status.MODIFIED)
        return
    entry = _begin(run, item, "modify")
    if entry is None or passphrase is None:
        return
    try:
        modified = await key_ops.modify_key(run.api, change.live, change.key, passphrase)
    except EXPECTED as exc:
        if ambiguous(exc):
            run.known.stale_keys.add(change.subaccount_uid)
        outcome = _failed(run, item, entry, exc, Status.MODIFIED, api_key)
        _audit(run, "modify", item.target, outcome, describe_error(exc))
        return
    out.journal.settle(entry, Outcome.DONE, api_key=api_key)
    _replace_key(run, change.subaccount_uid, modified, api_key)
    what = ", ".join(difference.name for difference in change.differences)
    out.carried_out.add(item)
    out.report(item, Status.MODIFIED, api_key=api_key, detail=f"restored {what}")
    _audit(run, "modify", item.target, "ok", what)


async def revoke_key(run: AccountRun, revoke: KeyRevoke) -> None:
    """Delete a key, or neutralise a classic one (Bitget has no delete for those)."""
    api_key = revoke.live.api_key
    item = item_of(revoke)
    target = f"{revoke.subaccount}/{revoke.live.label}"
    out = run.out
    planned = revoke.key.passphrase if revoke.key is not None else None
    passphrase = run.held.passphrase(api_key, planned)
    if passphrase is None and run.api.family == "v2" and out.sending:
        _not_held(run, item, "revoke", api_key, target, Status.NEUTRALISED)
        return
    entry = _begin(run, item, "revoke")
    if entry is None:
        return
    try:
        how = await key_ops.revoke_key(run.api, revoke.live, passphrase)
    except EXPECTED as exc:
        if ambiguous(exc):
            run.known.stale_keys.add(revoke.subaccount_uid)
        outcome = _failed(run, item, entry, exc, Status.REVOKED, api_key)
        _audit(run, "revoke", target, outcome, describe_error(exc))
        return
    out.journal.settle(entry, Outcome.DONE, api_key=api_key, detail=how)
    record = run.held.records.get(api_key)
    if record is not None:
        staged = record.staged(Stage.REVOKED, revoked_how=str(how))
        run.held.records[api_key] = staged
        out.persist(staged)
    deleted = how is key_ops.RevokeHow.DELETED
    neutralised = attrs.evolve(revoke.live, permissions=(), ip_list=key_ops.NEUTRAL_IP_LIST)
    _replace_key(run, revoke.subaccount_uid, None if deleted else neutralised, api_key)
    status = Status.REVOKED if deleted else Status.NEUTRALISED
    detail = f"{revoke.live.label!r}, {revoke.reason}: {how}"
    if not deleted:
        detail += " (classic keys cannot be deleted)"
    out.carried_out.add(item)
    out.report(item, status, api_key=api_key, detail=detail)
    _audit(run, "revoke", target, "ok", f"{revoke.reason}: {how}")


async def set_frozen(run: AccountRun, change: FreezeChange) -> None:
    """Freeze or unfreeze a sub-account."""
    item = item_of(change)
    operation = "freeze" if change.frozen else "unfreeze"
    out = run.out
    done = Status.FROZEN if change.frozen else Status.UNFROZEN
    entry = _begin(run, item, operation)
    if entry is None:
        return
    try:
        await key_ops.set_frozen(run.api, change.live, frozen=change.frozen)
    except EXPECTED as exc:
        if ambiguous(exc):
            run.known.stale_list = True
        outcome = _failed(run, item, entry, exc, done, None)
        _audit(run, operation, change.label, outcome, describe_error(exc))
        return
    out.journal.settle(entry, Outcome.DONE)
    status = m.SubaccountStatus.FREEZE if change.frozen else m.SubaccountStatus.NORMAL
    run.known.subaccounts[change.subaccount_uid] = attrs.evolve(change.live, status=status)
    out.carried_out.add(item)
    out.report(item, done, detail=f"sub-account {change.subaccount_uid}")
    _audit(run, operation, change.label, "ok", change.subaccount_uid)


async def delete_broker_key(run: AccountRun, spec: BrokerKeySpec) -> None:
    """Delete a broker sub-account key the plan marks absent."""
    item = item_of(spec)
    out = run.out
    entry = _begin(run, item, "revoke")
    if entry is None:
        return
    try:
        await key_ops.revoke_broker_key(run.client, run.api.family, spec.sub_uid, spec.api_key)
    except EXPECTED as exc:
        if ambiguous(exc):
            run.known.stale_broker_keys.add(spec.sub_uid)
        outcome = _failed(run, item, entry, exc, Status.REVOKED, spec.api_key)
        _audit(run, "revoke", item.target, outcome, describe_error(exc))
        return
    out.journal.settle(entry, Outcome.DONE, api_key=spec.api_key, detail="deleted")
    keys = run.known.broker_keys.get(spec.sub_uid, [])
    run.known.broker_keys[spec.sub_uid] = [k for k in keys if k.api_key != spec.api_key]
    out.carried_out.add(item)
    out.report(item, Status.REVOKED, api_key=spec.api_key, detail="deleted")
    _audit(run, "revoke", item.target, "ok", "deleted")
