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
from bitget_keys.lifecycle.rotation_journal import Rotation, RotationJournal, Step
from bitget_keys.lifecycle.rotation_ops import (
    SharedList,
)
from bitget_keys.provision.family import ClassicAPI, UnifiedAPI
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.plan import AccountSpec, KeySpec, SubaccountSpec
from bitget_keys.provision.vault_records import PASSPHRASE_PLACEHOLDER_KIND, VaultRecord

__all__ = [
    "DEFAULT_GRACE",
    "KEY_KIND",
    "MAX_CREATES",
    "PASSPHRASE_KIND",
    "AuditSink",
    "MasterContext",
    "RotationBase",
    "RotationEvent",
    "RotationSettings",
    "when",
]

_log: Final = logging.getLogger("bitget_keys.rotate")

#: How long the old key stays valid once the new one is current: long enough for every
#: consumer to reload its credentials from the vault, short enough that a leaked key
#: does not outlive its rotation by a day.
DEFAULT_GRACE: Final = 3600.0
#: Creates one run sends for one key, each after a lost answer was settled through the
#: key list; then the rotation waits, journaled, for the next run (Bitget may be down).
MAX_CREATES: Final = 3
#: The vault record kind of a sub-account key (as apply stores it).
KEY_KIND: Final = "virtual_subaccount_key"
#: The vault record kind of a key's passphrase stored before the key exists.
PASSPHRASE_KIND: Final = PASSPHRASE_PLACEHOLDER_KIND


class AuditSink(Protocol):
    """Where each lifecycle operation is recorded (`bitget_keys.provision.audit_log`)."""

    def record(
        self, operation: str, *, account: str, target: str, outcome: str, detail: str = ""
    ) -> object: ...


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

    async def wait_until(self, moment: float) -> bool:
        """Wait until ``moment`` (epoch seconds); ``False`` when the run stops first."""
        while (left := moment - time.time()) > 0:
            if self.gate.state is not GateState.OPEN:
                return False
            await self.sleep(min(left, 1.0))
        return self.gate.state is GateState.OPEN

    def audit_record(self, operation: str, target: str, outcome: str, detail: str = "") -> None:
        if self.audit is not None:
            self.audit.record(
                operation, account=self.account.name, target=target, outcome=outcome, detail=detail
            )


class RotationBase:
    """A rotation's row and what every step writes: events, journal, vault records."""

    def __init__(
        self,
        ctx: MasterContext,
        sub: SubaccountSpec,
        key: KeySpec,
        rotation: Rotation,
        *,
        waits: bool = True,
    ) -> None:
        self.ctx = ctx
        #: Whether it may wait out its grace here (``RotationSettings.wait`` too).
        self.waits = waits and ctx.settings.wait
        self.sub = sub
        self.key = key
        self.row = rotation
        self.outcome = "failed"
        #: Creates sent by this run (each after the list showed the last one made nothing).
        self.creates = 0
        #: The key list the verification read, which the first revoke attempt uses: no
        #: request of this rotation changed the old key since.
        self.seen: tuple[m.VirtualSubaccountAPIKey, ...] | None = None

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
            # The plan's label, as apply records a key (a classic first key's live
            # label is its sub-account's).
            "label": self.key.label,
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


def when(epoch: float | None) -> str:
    stamp = time.gmtime(epoch or 0.0)
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", stamp)
