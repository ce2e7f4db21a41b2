"""
The rotation of one key: a journaled state machine, resumable after a crash at any step.

1. **Planned.** The row names the key, its old API key and the vault record that will
   hold the new key's passphrase.
2. **Passphrase stored.** The new key's passphrase (the plan's, or a generated one) is
   appended to the vault, encrypted, *before* any create is sent: if the create's
   answer is lost, the key it made can still be neutralised on a classic master,
   which needs the passphrase. The record is a placeholder (`PASSPHRASE_KIND`, no
   secret, stage pending); views of the vault's keys leave that kind out.
3. **Create sent**, journaled before the request leaves. The answer's secret goes to
   the vault (stage pending) before anything else. A lost answer (a timeout or a cut
   connection after sending, a 5xx) is settled through the key list, never by sending
   the create blindly again: a live key with this label that is neither the old key
   nor any key the vault knows is the lost answer's key; its secret is gone, so it is
   revoked (and recorded as revoked in the vault and the audit log), and then the key
   is created again. A key the vault holds as pending with this rotation's passphrase
   is this rotation's own (the process died between storing it and journaling it).
   A refusal (4xx) made nothing.
4. **Created → verified.** A request signed with the new key must be answered as its
   sub-account's (retried while Bitget answers 40006, not propagated yet; 40038, this
   host outside its whitelist, proves the key too), and the key's rights and
   whitelist as the master lists them must be the plan's.
5. **Promoted.** The vault holds the new key as current and the old one as previous;
   the grace deadline is journaled.
6. **Done** once the grace is over and the old key is revoked: deleted on a unified
   master, neutralised on a classic one (its passphrase is needed; without it the key
   can only be revoked in the web UI, and the rotation stays open, listed by every run,
   until the key is seen revoked or gone). A failed revoke is retried a few times, then
   left journaled as outstanding; every later run tries it first.

Each step is logged at INFO and written to the audit log; no secret ever is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

import attrs

from bitget_keys import models as m
from bitget_keys._client import Client
from bitget_keys._gate import DispatchGate, GateState
from bitget_keys._secret import Secret
from bitget_keys._signing import Credentials
from bitget_keys.errors import APIError, TransportError
from bitget_keys.lifecycle.rotation_journal import Rotation, RotationJournal, Step
from bitget_keys.lifecycle.rotation_ops import (
    PassphraseNotHeldError,
    SharedList,
    VerificationError,
    is_neutralised,
    revoke_key,
    rights_problem,
    verify_signing,
)
from bitget_keys.provision.family import ClassicAPI, NewKey, UnifiedAPI
from bitget_keys.provision.flows import generate_passphrase
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.outcomes import EXPECTED, NOT_SENT, ambiguous, refused
from bitget_keys.provision.plan import AccountSpec, KeySpec, SubaccountSpec
from bitget_keys.provision.retrying import describe_error
from bitget_keys.provision.vault_records import Stage, VaultRecord

__all__ = [
    "DEFAULT_GRACE",
    "KEY_KIND",
    "PASSPHRASE_KIND",
    "AuditSink",
    "KeyRotation",
    "MasterContext",
    "RotationEvent",
    "RotationSettings",
]

_log: Final = logging.getLogger("bitget_keys.rotate")

#: How long the old key stays valid once the new one is current: long enough for every
#: consumer to reload its credentials from the vault, short enough that a leaked key
#: does not outlive its rotation by a day.
DEFAULT_GRACE: Final = 3600.0
#: The vault record kind of a sub-account key (as apply stores it).
KEY_KIND: Final = "virtual_subaccount_key"
#: The vault record kind of a key's passphrase stored before the key exists.
PASSPHRASE_KIND: Final = "rotation_passphrase"  # noqa: S105 - a record kind, not a secret


class AuditSink(Protocol):
    """Where each lifecycle operation is recorded (`bitget_keys.provision.audit_log`)."""

    def record(
        self, operation: str, *, account: str, target: str, outcome: str, detail: str = ""
    ) -> None: ...


@attrs.frozen(kw_only=True)
class RotationSettings:
    """How rotations run."""

    grace: float = DEFAULT_GRACE
    #: Wait out the grace and revoke (``False``: leave it to ``rotate --finish``).
    wait: bool = True
    #: How long a new key may answer 40006 (not propagated) before it is given up on.
    verify_timeout: float = 120.0
    #: Tries of a revoke before it is left outstanding, and the first pause (doubled).
    revoke_attempts: int = 4
    revoke_backoff: float = 0.5


@attrs.frozen(kw_only=True)
class RotationEvent:
    """One step of one rotation, as shown and logged (never a secret)."""

    account: str
    #: ``SUBACCOUNT-LABEL/KEY-LABEL``.
    target: str
    #: What happened: ``passphrase stored``, ``creating``, ``created``, ``verified``, ...
    step: str
    api_key: str | None = None
    detail: str = ""
    #: ``None`` while the rotation goes on; else how this run left it: ``done``,
    #: ``waiting`` (the grace runs; ``rotate --finish`` revokes), ``failed``,
    #: ``refused``, ``outstanding`` (revoke failed, retried by every later run),
    #: ``manual`` (revoke it in the web UI).
    outcome: str | None = None

    def line(self) -> str:
        text = f"rotate {self.account}/{self.target}: {self.step}"
        if self.api_key:
            text += f" {self.api_key}"
        return f"{text}: {self.detail}" if self.detail else text


@attrs.define(eq=False)
class MasterContext:
    """What the rotations under one master share."""

    account: AccountSpec
    api: ClassicAPI | UnifiedAPI
    master_uid: str
    ledger: Ledger
    journal: RotationJournal
    settings: RotationSettings
    #: A client signing with a new key (its UID the sub-account's), paced as the run's.
    key_client: Callable[[Credentials], Client]
    on_event: Callable[[RotationEvent], None]
    audit: AuditSink | None
    gate: DispatchGate
    #: The vault's records by API key, as this run knows them (the last of each).
    records: dict[str, VaultRecord]
    lists: dict[str, SharedList] = attrs.field(factory=dict)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def keys_of(self, subaccount_uid: str) -> SharedList:
        """The shared key list of one sub-account."""
        found = self.lists.get(subaccount_uid)
        if found is None:
            found = SharedList(lambda: self.api.list_keys(subaccount_uid))
            self.lists[subaccount_uid] = found
        return found

    def persist(self, record: VaultRecord) -> bool:
        """Append ``record`` to the vault (see `Ledger.persist`); whether it is durable."""
        self.records[record.api_key] = record
        return self.ledger.persist(record)

    def audit_record(self, operation: str, target: str, outcome: str, detail: str = "") -> None:
        if self.audit is not None:
            self.audit.record(
                operation, account=self.account.name, target=target, outcome=outcome, detail=detail
            )


class KeyRotation:
    """One key's rotation, from wherever its journal row stands."""

    def __init__(
        self, ctx: MasterContext, sub: SubaccountSpec, key: KeySpec, rotation: Rotation
    ) -> None:
        self.ctx = ctx
        self.sub = sub
        self.key = key
        self.row = rotation
        self.outcome = "failed"

    # -- bookkeeping -------------------------------------------------------------------

    def event(
        self, step: str, api_key: str | None = None, detail: str = "", outcome: str | None = None
    ) -> None:
        if outcome is not None:
            self.outcome = outcome
        event = RotationEvent(
            account=self.ctx.account.name,
            target=self.row.target,
            step=step,
            api_key=api_key,
            detail=detail,
            outcome=outcome,
        )
        _log.info("%s", event.line())
        self.ctx.on_event(event)

    def advance(self, step: Step, **changes: object) -> None:
        self.row = self.ctx.journal.advance(self.row, step, **changes)

    def stop(self, step: str, detail: str, outcome: str = "failed") -> bool:
        """Leave the rotation where it is, saying why; always ``False`` (stop)."""
        self.row = self.ctx.journal.note(self.row, detail)
        self.event(step, detail=detail, outcome=outcome)
        return False

    def record(self, api_key: str, **fields: object) -> VaultRecord:
        """A vault record of a key of this sub-account."""
        values: dict[str, object] = {
            "kind": KEY_KIND,
            "account": self.ctx.account.name,
            "master_uid": self.ctx.master_uid,
            "api_key": api_key,
            "secret_key": None,
            "label": self.row.live_label,
            "subaccount_uid": self.row.subaccount_uid,
            "subaccount_name": self.sub.name,
            "subaccount_label": self.sub.label,
            "api_family": self.row.family,
        }
        return VaultRecord(**(values | fields))  # type: ignore[arg-type]

    @property
    def passphrase(self) -> Secret | None:
        found = self.ctx.records.get(self.row.passphrase_ref)
        return None if found is None else found.passphrase

    # -- the steps ---------------------------------------------------------------------

    async def run(self) -> str:
        """Take the rotation as far as it can go now; return how it was left."""
        steps: dict[Step, Callable[[], Awaitable[bool]]] = {
            Step.PLANNED: self.store_passphrase,
            Step.PASSPHRASE_STORED: self.create,
            Step.CREATE_SENT: self.reconcile,
            Step.CREATED: self.verify,
            Step.VERIFIED: self.promote,
            Step.PROMOTED: self.retire,
            Step.REVOKE_MANUAL: self.check_manual,
        }
        while not self.row.step.finished:
            if not await steps[self.row.step]():
                break
        return self.outcome

    async def store_passphrase(self) -> bool:
        if self.passphrase is None:
            placeholder = self.record(
                self.row.passphrase_ref,
                kind=PASSPHRASE_KIND,
                passphrase=self.key.passphrase or generate_passphrase(),
                stage=Stage.PENDING,
            )
            if not self.ctx.persist(placeholder):
                return self.stop("failed", "the vault could not be written; nothing was sent")
        self.advance(Step.PASSPHRASE_STORED)
        self.event("passphrase stored")
        return True

    def sending(self) -> bool:
        return self.ctx.gate.state is GateState.OPEN

    async def create(self) -> bool:
        passphrase = self.passphrase
        if passphrase is None:  # pragma: no cover - stored by the step before
            return self.stop("failed", "the new key's passphrase is not in the vault")
        if not self.sending():
            return self.stop("stopped", f"not sent: {self.ctx.gate.reason}")
        self.advance(Step.CREATE_SENT)
        self.event("creating", detail=f"replaces {self.row.old_api_key}")
        spec = attrs.evolve(self.key, label=self.row.live_label)
        try:
            created = await self.ctx.api.create_key(self.row.subaccount_uid, spec, passphrase)
        except EXPECTED as exc:
            return await self.create_failed(exc)
        return self.created(created, passphrase)

    async def create_failed(self, exc: BaseException) -> bool:
        detail = describe_error(exc)
        if isinstance(exc, NOT_SENT):
            self.advance(Step.PASSPHRASE_STORED, detail=f"not sent: {detail}")
            self.event("stopped", detail=f"not sent: {detail}", outcome="failed")
            return False
        if ambiguous(exc):
            self.ctx.audit_record("rotate.create", self.row.target, "unknown", detail)
            self.event("create unknown", detail=f"{detail}; reading the key list")
            return await self.reconcile()
        if refused(exc):
            self.advance(Step.REFUSED, detail=detail)
            self.ctx.audit_record("rotate.create", self.row.target, "refused", detail)
            self.event("refused", detail=f"Bitget refused the create: {detail}", outcome="refused")
            return False
        # Throttled past its retries, or another answer that made nothing.
        self.advance(Step.PASSPHRASE_STORED, detail=detail)
        self.ctx.audit_record("rotate.create", self.row.target, "failed", detail)
        self.event("failed", detail=detail, outcome="failed")
        return False

    def created(self, created: NewKey, passphrase: Secret) -> bool:
        record = self.record(
            created.api_key,
            secret_key=created.secret_key,
            passphrase=passphrase,
            permissions=[str(p) for p in created.permissions],
            ip_list=created.ip_list,
            perm_type=created.perm_type,
            stage=Stage.PENDING,
        )
        durable = self.ctx.persist(record)
        self.advance(Step.CREATED, new_api_key=created.api_key)
        self.ctx.audit_record("rotate.create", self.row.target, "ok", created.api_key)
        self.event("created", created.api_key, "pending")
        if not durable:
            return self.stop("held", "its secret is held in memory: the vault could not be written")
        return True

    def is_own(self, live: m.VirtualSubaccountAPIKey) -> bool:
        """Whether ``live`` is the key this rotation stored (but did not journal) as made."""
        record = self.ctx.records.get(live.api_key)
        passphrase = self.passphrase
        return (
            record is not None
            and record.kind == KEY_KIND
            and record.stage is Stage.PENDING
            and record.held
            and passphrase is not None
            and record.passphrase == passphrase
        )

    def strays(
        self, keys: tuple[m.VirtualSubaccountAPIKey, ...]
    ) -> list[m.VirtualSubaccountAPIKey]:
        """Live keys with this label that no one holds: made by a create whose answer was lost."""
        known = {self.row.old_api_key, self.row.new_api_key}
        return [
            key
            for key in keys
            if key.label == self.row.live_label
            and key.api_key not in known
            and key.api_key not in self.ctx.records
            and not is_neutralised(key)
        ]

    async def reconcile(self) -> bool:
        """A create whose answer never came: find what it made, from the key list."""
        try:
            keys = await self.ctx.keys_of(self.row.subaccount_uid).read()
        except EXPECTED as exc:
            return self.stop("failed", f"the key list could not be read: {describe_error(exc)}")
        own = [key for key in keys if key.label == self.row.live_label and self.is_own(key)]
        if own:
            self.advance(Step.CREATED, new_api_key=own[0].api_key)
            self.event("created", own[0].api_key, "pending (found in the vault)")
            return True
        if not await self.revoke_strays(keys):
            return False
        self.advance(Step.PASSPHRASE_STORED)
        return True

    async def revoke_strays(self, keys: tuple[m.VirtualSubaccountAPIKey, ...]) -> bool:
        """Revoke every key a lost answer made (its secret is gone); ``False``: one failed."""
        for stray in self.strays(keys):
            try:
                how = await revoke_key(self.ctx.api, stray, self.passphrase)
            except EXPECTED as exc:
                detail = f"orphan {stray.api_key} of a lost answer not revoked yet: "
                detail += describe_error(exc)
                self.ctx.audit_record("rotate.create", self.row.target, "failed", detail)
                return self.stop("failed", detail + "; the next rotate tries again")
            self.ctx.persist(
                self.record(
                    stray.api_key,
                    passphrase=self.passphrase,
                    stage=Stage.REVOKED,
                    revoked_how=how,
                )
            )
            self.advance(self.row.step, orphans=(*self.row.orphans, stray.api_key))
            detail = f"orphan of a lost create answer (secret never received) {how}"
            self.ctx.audit_record(
                "rotate.create", self.row.target, "unknown", f"{stray.api_key} {detail}"
            )
            self.event("orphan revoked", stray.api_key, detail)
        return True

    async def verify(self) -> bool:
        new = self.row.new_api_key or ""
        record = self.ctx.records.get(new)
        if record is None or record.secret_key is None or record.passphrase is None:
            return self.stop("failed", f"the vault holds no secret for {new}")
        credentials = Credentials(
            api_key=new,
            secret_key=record.secret_key,
            passphrase=record.passphrase,
            uid=self.row.subaccount_uid,
        )
        client = self.ctx.key_client(credentials)
        try:
            note = await verify_signing(
                client,
                new,
                self.row.family,
                self.row.subaccount_uid,
                within=self.ctx.settings.verify_timeout,
                sleep=self.ctx.sleep,
            )
            keys = await self.ctx.keys_of(self.row.subaccount_uid).read()
        except (VerificationError, APIError, TransportError, *NOT_SENT) as exc:
            self.ctx.audit_record("rotate.verify", self.row.target, "failed", describe_error(exc))
            return self.stop("verify failed", describe_error(exc))
        finally:
            await client.aclose()
        live = next((key for key in keys if key.api_key == new), None)
        problem = "not in its sub-account's key list" if live is None else None
        problem = problem or rights_problem(self.row.family, self.key, live)  # type: ignore[arg-type]
        if problem is not None:
            self.ctx.audit_record("rotate.verify", self.row.target, "failed", problem)
            return self.stop("verify failed", f"{new} {problem}")
        if not await self.revoke_strays(keys):
            return False
        self.advance(Step.VERIFIED)
        self.ctx.audit_record("rotate.verify", self.row.target, "ok", note or new)
        self.event("verified", new, note)
        return True

    async def promote(self) -> bool:
        new, old = self.row.new_api_key or "", self.row.old_api_key
        self.ctx.persist(self.ctx.records[new].staged(Stage.CURRENT))
        previous = self.ctx.records.get(old) or self.record(old)
        self.ctx.persist(previous.staged(Stage.PREVIOUS))
        until = time.time() + self.row.grace
        self.advance(Step.PROMOTED, grace_until=until)
        detail = f"{new} current, {old} previous until {_when(until)}"
        self.ctx.audit_record("rotate.promote", self.row.target, "ok", detail)
        self.event("promoted", new, f"{old} previous until {_when(until)}")
        return True

    async def retire(self) -> bool:
        """After the grace: revoke the old key (retried, then left outstanding)."""
        remaining = (self.row.grace_until or 0.0) - time.time()
        if remaining > 0:
            if not self.ctx.settings.wait:
                detail = f"{self.row.old_api_key} is revoked by `rotate --finish` after "
                self.event(
                    "waiting", detail=detail + _when(self.row.grace_until), outcome="waiting"
                )
                return False
            await self.ctx.sleep(remaining)
        settings = self.ctx.settings
        pause = settings.revoke_backoff
        failure = ""
        for attempt in range(settings.revoke_attempts):
            if attempt:
                await self.ctx.sleep(pause)
                pause *= 2
            try:
                how = await self.revoke_old()
            except PassphraseNotHeldError as exc:
                self.advance(Step.REVOKE_MANUAL, detail=str(exc))
                self.ctx.audit_record("rotate.revoke", self.row.target, "failed", str(exc))
                self.event("revoke manually", self.row.old_api_key, str(exc), outcome="manual")
                return False
            except EXPECTED as exc:
                failure = describe_error(exc)
                continue
            if how is not None:
                self.revoked(how)
            return True
        detail = f"revoke outstanding: {failure}; every later rotate tries it again"
        self.ctx.audit_record("rotate.revoke", self.row.target, "failed", failure)
        return self.stop("revoke failed", detail, outcome="outstanding")

    async def revoke_old(self) -> str | None:
        """Revoke the old key unless it is already (deleted or neutralised)."""
        keys = await self.ctx.keys_of(self.row.subaccount_uid).read()
        live = next((key for key in keys if key.api_key == self.row.old_api_key), None)
        if live is None:
            return "deleted"
        if self.row.family == "v2" and is_neutralised(live):
            return "neutralised"
        record = self.ctx.records.get(live.api_key)
        self.event("revoking", live.api_key)
        return await revoke_key(self.ctx.api, live, None if record is None else record.passphrase)

    def revoked(self, how: str) -> None:
        old = self.row.old_api_key
        previous = self.ctx.records.get(old) or self.record(old)
        self.ctx.persist(previous.staged(Stage.REVOKED, revoked_how=how))
        self.advance(Step.DONE, detail=how)
        self.ctx.audit_record("rotate.revoke", self.row.target, "ok", f"{old} {how}")
        self.event("revoked", old, how, outcome="done")

    async def check_manual(self) -> bool:
        """An old key only the web UI can revoke: done once it is seen gone or stripped."""
        try:
            keys = await self.ctx.keys_of(self.row.subaccount_uid).read()
        except EXPECTED as exc:
            return self.stop("failed", f"the key list could not be read: {describe_error(exc)}")
        live = next((key for key in keys if key.api_key == self.row.old_api_key), None)
        if live is None or not live.permissions:
            self.revoked("deleted" if live is None else "neutralised")
            return True
        detail = "still live: its passphrase is not held, revoke it in Bitget's web UI"
        self.event("revoke manually", live.api_key, detail, outcome="manual")
        return False


def _when(epoch: float | None) -> str:
    stamp = time.gmtime(epoch or 0.0)
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", stamp)
