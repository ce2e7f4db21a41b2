"""
Running one account's rounds: read live state, diff, create what is missing, read again.

A round starts every create it can at once (`flows`): further keys of sub-accounts that
exist, broker key changes, and the batches of new sub-accounts one after another. The
batch answers may mask new sub-accounts' UIDs, so `AccountRun.locate` learns them from
the sub-account list and starts their further keys while later batches still go out.
Results, journal and vault writes go through the account's `AccountReport`. Given a
`DriftContext`, a round also modifies keys that drifted, freezes or unfreezes
sub-accounts and revokes keys (`revoke_flows`), all at once with the creates.

Reads of live state that decide what to create (the first read, and the re-reads
after a round) are background work on the master's lanes (priority `DECIDING`): a
sub-account list read that `locate` needs, to start keys already decided, goes ahead
of them, whichever plan account (of the same master) or process (sharing the UIDs
through Redis, see ``RedisRateLimitScheduler``'s ``horizon``) asked first. Two plan
accounts of one master, or two shards of one plan, then start their first further
keys one list interval after the first batch, not after every account's first read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Final

import attrs

from bitget_keys import models as m
from bitget_keys._client import Client
from bitget_keys._client.call_pacing import pacing
from bitget_keys._gate import DispatchGate, GateState
from bitget_keys.errors import AccountModeError
from bitget_keys.provision import flows, revoke_flows
from bitget_keys.provision import live as reads
from bitget_keys.provision.account_report import AccountReport
from bitget_keys.provision.diff import (
    AccountDiff,
    DriftContext,
    LiveState,
    MissingKey,
    diff_account,
)
from bitget_keys.provision.family import (
    ClassicAPI,
    Family,
    UnifiedAPI,
    api_of_family,
    family_problems,
)
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.outcomes import EXPECTED
from bitget_keys.provision.plan import AccountSpec, KeySpec, SubaccountSpec
from bitget_keys.provision.plan_modes import PlanMode
from bitget_keys.provision.results import ItemKey, ItemKind, OnResult, Status
from bitget_keys.provision.revoke_flows import DIFF_PARTS, item_of, reads_unplanned

__all__ = ["DECIDING", "AccountRun", "without_refused"]

_log: Final = logging.getLogger("bitget_keys.apply")

#: The priority of reads that decide what to create: below the default of the reads
#: and creates that carry out what was decided.
DECIDING: Final = -1


class AccountRun:
    """Applies one account's plan; every outcome goes to ``on_result``."""

    def __init__(  # noqa: PLR0917 - built in one place
        self,
        account: AccountSpec,
        api: ClassicAPI | UnifiedAPI,
        ledger: Ledger,
        gate: DispatchGate,
        on_result: OnResult,
        fail: Callable[[BaseException], None],
    ) -> None:
        self.account = account
        #: The family (v2 or v3) that serves this master, chosen before the run.
        self.api = api
        self.client: Client = api.client
        self.ledger = ledger
        self.gate = gate
        self.out = AccountReport(account, ledger, gate, on_result)
        #: Records an unexpected error of a task; the run goes on until all have ended.
        self.fail = fail
        self.master_uid = ""
        #: Live state read moments before the run (see `apply_plan`), used instead of
        #: the first read.
        self.first_live: LiveState | None = None
        # The current round's state (see `round`).
        self.known = reads.KnownState(LiveState())
        self.group: asyncio.TaskGroup | None = None
        #: Sub-accounts created this round whose UIDs are not known yet, by label.
        self.unlocated: dict[str, flows.Created] = {}
        self.batches_done = True
        self.keys_in_progress = 0
        self.wake = asyncio.Event()
        #: The vault's keys (stages, passphrases), for modifies and revokes.
        self.held = revoke_flows.HeldKeys()
        #: How drift and revokes are found; ``None``: creates only (set by `apply_plan`).
        self.drift: DriftContext | None = None
        #: Where modifies, freezes and revokes are recorded.
        self.audit = revoke_flows.Audit()

    async def run(self, max_rounds: int) -> None:
        self.master_uid = await reads.read_retrying(self.client.uid)
        live = self.first_live
        if live is None:
            with pacing(priority=DECIDING):
                live = await self.first_read()
        for uid, keys in live.keys.items():
            # Keys an earlier run stored before it learned their sub-account's UID.
            for key in keys if uid.isdigit() else ():
                self.ledger.add_subaccount_uid(key.api_key, uid)
        live = await self.with_drift(live)
        for number in range(max_rounds + 1):
            diff = self.without_refused(diff_account(self.account, live, self.drift))
            for conflict in diff.conflicts:
                item = ItemKey(ItemKind.SUBACCOUNT, conflict.label)
                if item not in self.out.reported:
                    self.out.report(item, Status.CONFLICT, detail=conflict.detail)
            if diff.empty or number == max_rounds or not self.out.sending:
                break
            known = await self.round(diff, live)
            if self.gate.state is not GateState.ABORTED:
                # Even when stopping: what unknown outcomes changed is read again, so
                # the report names every key that exists without its secret.
                with pacing(priority=DECIDING):
                    await known.refresh(self.api, self.account)
            live = known.live()
            if self.gate.state is GateState.ABORTED:
                self.out.the_rest()
                return
        await flows.copy_key(self)
        self.out.final(live, self.api.family, self.drift)

    async def with_drift(self, live: LiveState) -> LiveState:
        """
        Drift is judged by the family that serves the master now (the first read may
        have switched it); prune needs the keys of sub-accounts the plan does not name.
        """
        if self.drift is None:
            return live
        self.drift = attrs.evolve(self.drift, family=self.api.family)
        if not self.drift.prune:
            return live
        with pacing(priority=DECIDING):
            return await reads_unplanned(self.api, live)

    def without_refused(self, diff: AccountDiff) -> AccountDiff:
        """``diff`` without what Bitget refused for good earlier in this run."""
        return without_refused(diff, self.out.refused | self.out.carried_out)

    async def first_read(self) -> LiveState:
        """
        Read live state through the master's family; switch family once if refused.

        A master can change mode between being asked and being read (an upgrade Bitget
        finished meanwhile). A 40084 or 40085 carried nothing out, so an ``auto``
        account is read once more through the family the refusal names, if the plan
        holds nothing that family's rules refuse; otherwise the refusal ends the account.
        """
        try:
            return await reads.read_live_state(self.api, self.account)
        except AccountModeError as exc:
            family: Family = "v2" if exc.family == "v2" else "v3"
            if (
                self.account.mode is not PlanMode.AUTO
                or family == self.api.family
                or family_problems(self.account, family)
            ):
                raise
            _log.info("%s: %s; reading it again through %s", self.account.name, exc, family)
            self.api = api_of_family(self.client, family)
            return await reads.read_live_state(self.api, self.account)

    async def guarded(self, work: Awaitable[None]) -> None:
        """
        Run one task of a round; an error it did not expect closes the gate.

        It never cancels the round's other tasks: those with a request on the wire still
        get their answers (and their secrets are stored). The error is raised once
        every task of the run has ended.
        """
        try:
            await work
        except Exception as exc:  # noqa: BLE001 - recorded and raised by apply_plan
            self.fail(exc)

    def spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        if self.group is None:  # pragma: no cover - only called inside a round
            msg = "a round's task started outside a round"
            raise RuntimeError(msg)
        return self.group.create_task(self.guarded(work))

    async def round(self, diff: AccountDiff, live: LiveState) -> reads.KnownState:
        """
        Create everything ``diff`` lacks, each item as soon as it can go.

        Returns live state as the round left it, with what unknown outcomes may have
        changed marked stale.
        """
        self.known = reads.KnownState(live)
        self.unlocated = {}
        self.batches_done = not diff.new_subaccounts
        self.keys_in_progress = 0
        try:
            async with asyncio.TaskGroup() as group:
                self.group = group
                for missing in diff.new_keys:
                    self.start_key(missing)
                for spec in diff.broker_changes:
                    self.spawn(flows.modify_broker_key(self, spec))
                self.start_lifecycle(diff)
                if isinstance(self.api, UnifiedAPI):
                    # One create-sub each; each sub-account's keys follow its answer.
                    for sub in diff.new_subaccounts:
                        self.spawn(flows.create_unified_subaccount(self, self.api, sub))
                elif diff.new_subaccounts:
                    self.spawn(self.create_new_subaccounts(diff.new_subaccounts))
                    self.spawn(self.locate())
        finally:
            self.group = None
        return self.known

    def start_lifecycle(self, diff: AccountDiff) -> None:
        """Start every modify, freeze and revoke of ``diff`` at once."""
        for change in diff.key_changes:
            self.spawn(revoke_flows.modify_key(self, change))
        for freeze in diff.freezes:
            self.spawn(revoke_flows.set_frozen(self, freeze))
        for revoke in diff.revokes:
            self.spawn(revoke_flows.revoke_key(self, revoke))
        for spec in diff.broker_revokes:
            self.spawn(revoke_flows.delete_broker_key(self, spec))

    def start_key(self, missing: MissingKey) -> None:
        self.keys_in_progress += 1
        self.spawn(flows.create_key(self, missing)).add_done_callback(self.key_finished)

    def key_finished(self, _task: asyncio.Task[None]) -> None:
        self.keys_in_progress -= 1
        if not self.keys_in_progress:
            self.wake.set()

    async def create_new_subaccounts(self, subs: Sequence[SubaccountSpec]) -> None:
        """Send the batches one after another; `locate` picks up what they created."""
        try:
            for start in range(0, len(subs), m.MAX_BATCH_ITEMS):
                for created in await flows.create_subaccounts(
                    self, subs[start : start + m.MAX_BATCH_ITEMS]
                ):
                    if created.row.subaccount_uid.isdigit():
                        # Bitget sent the UID in clear: nothing to look up.
                        self.located(created.row.subaccount_uid, created)
                    else:
                        self.unlocated[created.spec.label] = created
                self.wake.set()
        finally:
            self.batches_done = True
            self.wake.set()

    async def locate(self) -> None:
        """
        Learn new sub-accounts' UIDs from the list, then start their further keys.

        A read goes out as soon as some are waiting, unless keys are still being
        created and more batches are to come: then the key lane is busy anyway, and
        the next read serves every batch answered meanwhile.
        """
        while self.unlocated or not self.batches_done:
            if not self.unlocated or (self.keys_in_progress and not self.batches_done):
                self.wake.clear()
                await self.wake.wait()
                continue
            await self.locate_once()

    async def locate_once(self) -> None:
        asked = set(self.unlocated)
        try:
            listed = await reads.list_subaccounts(self.api)
        except EXPECTED as exc:
            # The round ends by listing sub-accounts again (and the keys of any it did
            # not know); their further keys go in the next round.
            _log.info(
                "%s: sub-account list failed: %s", self.account.name, reads.describe_error(exc)
            )
            for label in asked:
                del self.unlocated[label]
            self.known.stale_list = True
            return
        self.known.listed(listed)
        by_label = {
            sub.label: sub for sub in listed if sub.status is not m.SubaccountStatus.DELETED
        }
        for label, created in list(self.unlocated.items()):
            found = by_label.get(label)
            if found is not None:
                del self.unlocated[label]
                self.located(found.subaccount_uid, created)
            elif label in asked:
                # Read after its answer arrived, and not listed: live state decides.
                del self.unlocated[label]
                self.known.stale_list = True

    def located(self, uid: str, created: flows.Created) -> None:
        """A new sub-account's UID is known: record its first key, start the others."""
        self.ledger.add_subaccount_uid(created.row.api_key, uid)
        self.known_subaccount(uid, created.row.subaccount_name, created.spec)
        self.known.add_key(flows.first_key(uid, created))
        self.start_keys(uid, created.spec, created.spec.keys[1:])

    def known_subaccount(self, uid: str, name: str, spec: SubaccountSpec) -> None:
        """Record a sub-account this round created."""
        if uid not in self.known.subaccounts:
            self.known.subaccounts[uid] = m.VirtualSubaccount(
                subaccount_uid=uid, subaccount_name=name, label=spec.label
            )

    def start_keys(self, uid: str, spec: SubaccountSpec, keys: Sequence[KeySpec]) -> None:
        """Start creating ``keys`` of the sub-account ``uid``, all at once."""
        for key in keys:
            self.start_key(MissingKey(subaccount=spec, subaccount_uid=uid, key=key))


def without_refused(diff: AccountDiff, refused: Collection[ItemKey]) -> AccountDiff:
    """``diff`` without the items Bitget refused for good earlier in the run."""
    if not refused:
        return diff
    kept: dict[str, Any] = {
        part: tuple(entry for entry in getattr(diff, part) if item_of(entry) not in refused)
        for part in DIFF_PARTS
    }
    return attrs.evolve(diff, **kept)
