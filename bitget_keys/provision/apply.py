"""
Applying a plan: make live state match it, account by account, all accounts at once.

Each account starts by reading live state (the list endpoints) and diffing it against
the plan, then runs in rounds. A round creates what is missing, as soon as it can be
created: new sub-accounts in batches of at most five (each with its first key), further
keys of sub-accounts that exist, broker key changes, and the copy key. Bitget masks new
sub-accounts' UIDs in the batch answer, so after batches are answered the sub-account
list is read to learn their UIDs, and their further keys are created at once, while the
next batches are still going out (the keys' lane and the batches' lane are separate
budgets). While keys are still being created, later batches join one list read instead
of each costing one.

Nothing is created twice:

- Each run starts from live state, so a re-run (or a run after a crash) creates only
  what is still missing; re-running a completed plan sends no create.
- A create whose answer never came (timeout, dropped connection, server error) is
  *unknown*: it is not sent again in this round, and the round ends by reading again
  what it may have changed (the sub-account list, or that sub-account's keys); only
  what is still absent then is created in the next round. A round in which every
  answer arrived needs no such read: what it created is known exactly.
- The copy key can be created once per trader, ever, so an unknown copy-key outcome is
  reported and never retried.
- Reads change nothing, so a read that failed (server error, lost connection) is tried
  again, a few times, before the account gives up.

Nothing created is lost: each secret is appended to the vault (fsynced, synchronously, so
no other request of the run starts meanwhile) the moment its answer arrives, before the
item is journalled as done or reported. A key that exists live but whose secret is not
in the vault is reported as an orphan that needs attention (neutralise it, or delete it
in the web UI); it is never silently recreated.

One failing account or item never stops the others: every failure becomes a result.

Stopping never abandons an answer. The run shares one `DispatchGate` with its clients:
when it is closed (an interruption, a vault that cannot be written, a failing
rate-limit backend, an unexpected error), creates still waiting for their slot are not
sent (``stopped``), creates already on the wire are awaited and their secrets stored,
and what those may have changed is read again, so the final report names every orphan.
No task's error cancels another task: it closes the gate and is raised once all have
ended.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

import attrs

from bitget_keys import models as m
from bitget_keys._client import Client
from bitget_keys._gate import DispatchGate, GateState
from bitget_keys._secret import Secret
from bitget_keys.errors import (
    APIError,
    CopyAPIKeyExistsError,
    DispatchStoppedError,
    RateLimitBackendError,
    RateLimitWaitTooLongError,
    ServerError,
    TransportError,
    VaultError,
)
from bitget_keys.provision.diff import AccountDiff, LiveState, MissingKey, diff_account
from bitget_keys.provision.journal import Journal, Outcome
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.live import (
    KnownState,
    describe_error,
    list_subaccounts,
    read_live_state,
    read_retrying,
)
from bitget_keys.provision.plan import AccountSpec, BrokerKeySpec, KeySpec, Plan, SubaccountSpec
from bitget_keys.provision.preview import copy_key_accounts
from bitget_keys.provision.results import ItemKey, ItemKind, ItemResult, OnResult, Status
from bitget_keys.provision.vault import SecretsVault, VaultRecord

__all__ = [
    "ItemKey",
    "ItemKind",
    "ItemResult",
    "Status",
    "apply_plan",
    "generate_passphrase",
    "read_live_state",
]

_log: Final = logging.getLogger("bitget_keys.apply")

_PASSPHRASE_ALPHABET: Final = string.ascii_letters + string.digits

T = TypeVar("T")


def generate_passphrase(length: int = 24) -> Secret:
    """A random passphrase Bitget accepts: letters and digits, with at least one of each."""
    while True:
        text = "".join(secrets.choice(_PASSPHRASE_ALPHABET) for _ in range(length))
        if any(c.isdigit() for c in text) and any(c.isalpha() for c in text):
            return Secret(text)


def _ambiguous(exc: BaseException) -> bool:
    """Whether a failed create may still have taken effect."""
    if isinstance(exc, TransportError):
        return exc.maybe_sent
    return isinstance(exc, ServerError)


#: Errors of a request that certainly never left: the run stopped it, or it never got
#: a rate-limit slot.
_NOT_SENT: Final = (DispatchStoppedError, RateLimitBackendError, RateLimitWaitTooLongError)


def _stop_on_backend_failure(gate: DispatchGate, exc: BaseException) -> None:
    """A failing rate-limit backend would fail every further request: stop sending."""
    if isinstance(exc, RateLimitBackendError):
        gate.close(f"the rate-limit backend failed: {exc.detail}")


#: Every error a create or read can end with that becomes a result.
_EXPECTED: Final = (APIError, TransportError, *_NOT_SENT)


@attrs.frozen(kw_only=True)
class _Created:
    """A sub-account whose batch answer arrived: its first key is in the vault."""

    spec: SubaccountSpec
    row: m.CreatedVirtualSubaccount


def _first_key(uid: str, created: _Created) -> m.VirtualSubaccountAPIKey:
    # Batch-create gives the first key the sub-account's label.
    return m.VirtualSubaccountAPIKey(
        subaccount_uid=uid,
        api_key=created.row.api_key,
        label=created.spec.label,
        permissions=created.row.permissions,
        ip_list=created.row.ip_list,
    )


class _AccountRun:
    """Applies one account's plan; every outcome goes to ``on_result``."""

    def __init__(  # noqa: PLR0917 - private; built in one place
        self,
        account: AccountSpec,
        client: Client,
        ledger: Ledger,
        gate: DispatchGate,
        on_result: OnResult,
        fail: Callable[[BaseException], None],
    ) -> None:
        self.account = account
        self.client = client
        self.ledger = ledger
        self.journal = ledger.journal
        self.gate = gate
        self.on_result = on_result
        #: Records an unexpected error of a task; the run goes on until all have ended.
        self.fail = fail
        self.master_uid = ""
        self.reported: set[ItemKey] = set()
        # The current round's state (see `round`).
        self.known = KnownState(LiveState())
        self.group: asyncio.TaskGroup | None = None
        #: Sub-accounts created this round whose UIDs are not known yet, by label.
        self.unlocated: dict[str, _Created] = {}
        self.batches_done = True
        self.keys_in_progress = 0
        self.wake = asyncio.Event()

    @property
    def sending(self) -> bool:
        """Whether new creates may still go out."""
        return self.gate.state is GateState.OPEN

    def report(
        self, item: ItemKey, status: Status, *, api_key: str | None = None, detail: str = ""
    ) -> None:
        self.reported.add(item)
        result = ItemResult(
            account=self.account.name,
            kind=item.kind.value,
            target=item.target,
            status=status,
            api_key=api_key,
            detail=detail,
            subaccount=item.subaccount,
            key=item.key,
        )
        _log.info("%s %s %s: %s", result.account, item.kind, item.target, status.value)
        self.on_result(result)

    def stopped(self, item: ItemKey) -> None:
        """Report an item that was not sent because the run is stopping."""
        self.report(item, Status.STOPPED, detail=f"not sent: {self.gate.reason}")

    def begin(self, item: ItemKey) -> int:
        return self.journal.begin(self.account.name, item.kind.value, item.journal_target())

    def create_failed(self, entry: int, item: ItemKey, exc: BaseException) -> None:
        """
        Settle and report a create that failed: unknown if it may have taken effect.

        The caller marks what an unknown outcome may have changed as stale.
        """
        detail = describe_error(exc)
        _stop_on_backend_failure(self.gate, exc)
        if isinstance(exc, _NOT_SENT):
            self.journal.settle(entry, Outcome.FAILED, detail=f"not sent: {detail}")
            status = Status.STOPPED if isinstance(exc, DispatchStoppedError) else Status.FAILED
            self.report(item, status, detail=f"not sent: {detail}")
            return
        unknown = _ambiguous(exc)
        self.journal.settle(entry, Outcome.UNKNOWN if unknown else Outcome.FAILED, detail=detail)
        self.report(item, Status.UNKNOWN if unknown else Status.FAILED, detail=detail)

    def persist_key(  # noqa: PLR0917 - every part of the record
        self,
        sub: SubaccountSpec,
        key: KeySpec,
        api_key: str,
        secret_key: Secret,
        passphrase: Secret,
        subaccount_uid: str | None,
    ) -> str:
        """
        Store a new sub-account key (see `persist`); return the result's detail.

        A first key's sub-account UID is ``None`` when the batch answer masked it: the
        record names the sub-account by its name and label instead.
        """
        return self.persist(
            VaultRecord(
                kind="virtual_subaccount_key",
                account=self.account.name,
                master_uid=self.master_uid,
                api_key=api_key,
                secret_key=secret_key,
                passphrase=passphrase,
                label=key.label,
                subaccount_uid=subaccount_uid,
                subaccount_name=sub.name,
                subaccount_label=sub.label,
                permissions=[str(p) for p in key.permissions],
                ip_list=key.ip_list,
            )
        )

    def persist(self, record: VaultRecord) -> str:
        """
        Store a secret before anything else happens to its item.

        When the vault cannot be written the ledger holds it in memory (and the run
        stops sending); the returned detail says so, for the item's result.
        """
        if self.ledger.persist(record):
            return ""
        return "secret held in memory: the vault could not be written"

    async def run(self, max_rounds: int) -> None:
        self.master_uid = await read_retrying(self.client.uid)
        live = await read_live_state(self.client, self.account)
        for number in range(max_rounds + 1):
            diff = diff_account(self.account, live)
            for conflict in diff.conflicts:
                item = ItemKey(ItemKind.SUBACCOUNT, conflict.label)
                if item not in self.reported:
                    self.report(item, Status.CONFLICT, detail=conflict.detail)
            if diff.empty or number == max_rounds or not self.sending:
                break
            known = await self.round(diff, live)
            if self.gate.state is not GateState.ABORTED:
                # Even when stopping: what unknown outcomes changed is read again, so
                # the report names every key that exists without its secret.
                await known.refresh(self.client, self.account)
            live = known.live()
            if self.gate.state is GateState.ABORTED:
                self.report_the_rest()
                return
        await self.copy_key()
        self.final_report(live)

    def report_the_rest(self) -> None:
        """
        After an abort, with no read to tell: every item not reported yet is stopped.

        Those were never sent (a create on the wire has been reported unknown), but
        whether they already existed was not read again either.
        """
        detail = f"not checked: {self.gate.reason}"
        items = [ItemKey(ItemKind.COPY_KEY, key="copy")] if self.account.copy_api_key else []
        for sub in self.account.subaccounts:
            items.append(ItemKey(ItemKind.SUBACCOUNT, sub.label))
            items.extend(ItemKey(ItemKind.KEY, sub.label, key.label) for key in sub.keys)
        items.extend(
            ItemKey(ItemKind.BROKER_KEY, spec.sub_uid, spec.api_key)
            for spec in self.account.broker_keys
        )
        for item in items:
            if item not in self.reported:
                self.report(item, Status.STOPPED, detail=detail)

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

    async def round(self, diff: AccountDiff, live: LiveState) -> KnownState:
        """
        Create everything ``diff`` lacks, each item as soon as it can go.

        Returns live state as the round left it, with what unknown outcomes may have
        changed marked stale.
        """
        self.known = KnownState(live)
        self.unlocated = {}
        self.batches_done = not diff.new_subaccounts
        self.keys_in_progress = 0
        try:
            async with asyncio.TaskGroup() as group:
                self.group = group
                for missing in diff.new_keys:
                    self.start_key(missing)
                for spec in diff.broker_changes:
                    self.spawn(self.modify_broker_key(spec))
                if diff.new_subaccounts:
                    self.spawn(self.create_new_subaccounts(diff.new_subaccounts))
                    self.spawn(self.locate())
        finally:
            self.group = None
        return self.known

    def start_key(self, missing: MissingKey) -> None:
        self.keys_in_progress += 1
        self.spawn(self.create_key(missing)).add_done_callback(self.key_finished)

    def key_finished(self, _task: asyncio.Task[None]) -> None:
        self.keys_in_progress -= 1
        if not self.keys_in_progress:
            self.wake.set()

    async def create_new_subaccounts(self, subs: Sequence[SubaccountSpec]) -> None:
        """Send the batches one after another; `locate` picks up what they created."""
        try:
            for start in range(0, len(subs), m.MAX_BATCH_ITEMS):
                for created in await self.create_subaccounts(
                    subs[start : start + m.MAX_BATCH_ITEMS]
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
            listed = await list_subaccounts(self.client)
        except _EXPECTED as exc:
            # The round ends by listing sub-accounts again (and the keys of any it did
            # not know); their further keys go in the next round.
            _log.info("%s: sub-account list failed: %s", self.account.name, describe_error(exc))
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

    def located(self, uid: str, created: _Created) -> None:
        """A new sub-account's UID is known: record its first key, start the others."""
        if uid not in self.known.subaccounts:
            self.known.subaccounts[uid] = m.VirtualSubaccount(
                subaccount_uid=uid,
                subaccount_name=created.row.subaccount_name,
                label=created.spec.label,
            )
        self.known.add_key(_first_key(uid, created))
        for key in created.spec.keys[1:]:
            self.start_key(MissingKey(subaccount=created.spec, subaccount_uid=uid, key=key))

    async def create_subaccounts(self, batch: Sequence[SubaccountSpec]) -> list[_Created]:
        """Create one batch; return the sub-accounts whose answer arrived."""
        if not self.sending:
            for sub in batch:
                self.stopped(ItemKey(ItemKind.SUBACCOUNT, sub.label))
            return []
        passphrases = {sub.label: sub.keys[0].passphrase or generate_passphrase() for sub in batch}
        request = m.BatchCreateVirtualSubaccountsRequest(
            items=[
                m.NewVirtualSubaccount(
                    name=sub.name,
                    passphrase=passphrases[sub.label],
                    label=sub.label,
                    permissions=sub.keys[0].permissions,
                    ip_list=sub.keys[0].ip_list,
                )
                for sub in batch
            ]
        )
        entries = {sub.label: self.begin(ItemKey(ItemKind.SUBACCOUNT, sub.label)) for sub in batch}
        try:
            rows = await self.client.batch_create_virtual_subaccounts(request)
        except _EXPECTED as exc:
            self.known.stale_list |= _ambiguous(exc)
            for sub in batch:
                self.create_failed(entries[sub.label], ItemKey(ItemKind.SUBACCOUNT, sub.label), exc)
            return []
        by_label = {row.label: row for row in rows}
        created = []
        # Every secret of the answer is stored before any item of it is reported.
        details = {
            sub.label: self.persist_key(
                sub,
                sub.keys[0],
                row.api_key,
                row.secret_key,
                passphrases[sub.label],
                row.subaccount_uid if row.subaccount_uid.isdigit() else None,
            )
            for sub in batch
            if (row := by_label.get(sub.label)) is not None
        }
        for sub in batch:
            item = ItemKey(ItemKind.SUBACCOUNT, sub.label)
            row = by_label.get(sub.label)
            if row is None:
                # Bitget answered but left this item out: treat as unknown until listed.
                detail = "missing from the batch answer"
                self.known.stale_list = True
                self.journal.settle(entries[sub.label], Outcome.UNKNOWN, detail=detail)
                self.report(item, Status.UNKNOWN, detail=detail)
                continue
            first = ItemKey(ItemKind.KEY, sub.label, sub.keys[0].label)
            self.journal.settle(entries[sub.label], Outcome.DONE, api_key=row.api_key)
            self.report(item, Status.CREATED, api_key=row.api_key)
            self.report(first, Status.CREATED, api_key=row.api_key, detail=details[sub.label])
            created.append(_Created(spec=sub, row=row))
        return created

    async def create_key(self, missing: MissingKey) -> None:
        key: KeySpec = missing.key
        item = ItemKey(ItemKind.KEY, missing.subaccount.label, key.label)
        if not self.sending:
            self.stopped(item)
            return
        passphrase = key.passphrase or generate_passphrase()
        entry = self.begin(item)
        try:
            created = await self.client.create_virtual_subaccount_api_key(
                m.CreateVirtualSubaccountAPIKeyRequest(
                    subaccount_uid=missing.subaccount_uid,
                    passphrase=passphrase,
                    label=key.label,
                    ip_list=key.ip_list,
                    permissions=key.permissions,
                    perm_type=key.perm_type,
                )
            )
        except _EXPECTED as exc:
            if _ambiguous(exc):
                self.known.stale_keys.add(missing.subaccount_uid)
            self.create_failed(entry, item, exc)
            return
        detail = self.persist_key(
            missing.subaccount,
            key,
            created.api_key,
            created.secret_key,
            passphrase,
            missing.subaccount_uid,
        )
        self.journal.settle(entry, Outcome.DONE, api_key=created.api_key)
        self.report(item, Status.CREATED, api_key=created.api_key, detail=detail)
        self.known.add_key(
            m.VirtualSubaccountAPIKey(
                subaccount_uid=missing.subaccount_uid,
                api_key=created.api_key,
                label=key.label,
                permissions=created.permissions,
                ip_list=created.ip_list,
            )
        )

    async def modify_broker_key(self, spec: BrokerKeySpec) -> None:
        item = ItemKey(ItemKind.BROKER_KEY, spec.sub_uid, spec.api_key)
        if not self.sending:
            self.stopped(item)
            return
        try:
            await self.client.modify_broker_subaccount_api_key(
                m.ModifyBrokerSubaccountAPIKeyRequest(
                    sub_uid=spec.sub_uid,
                    api_key=spec.api_key,
                    passphrase=spec.passphrase,
                    permissions=spec.permissions,
                    perm_type=spec.perm_type,
                    ip_list=spec.ip_list,
                    label=spec.label,
                )
            )
        except _EXPECTED as exc:
            # A modify sets absolute values, so whatever its outcome, the next round
            # reads the key again and sends it once more only if it still differs.
            _stop_on_backend_failure(self.gate, exc)
            unknown = _ambiguous(exc)
            if unknown:
                self.known.stale_broker_keys.add(spec.sub_uid)
            if isinstance(exc, DispatchStoppedError):
                status = Status.STOPPED
            else:
                status = Status.UNKNOWN if unknown else Status.FAILED
            self.report(item, status, api_key=spec.api_key, detail=describe_error(exc))
            return
        self.known.modified(spec)
        self.report(item, Status.MODIFIED, api_key=spec.api_key)

    async def copy_key(self) -> None:
        if not self.account.copy_api_key:
            return
        item = ItemKey(ItemKind.COPY_KEY, key="copy")
        held = {record.account for record in self.ledger.unsaved if record.kind == "copy_key"}
        if self.account.name in copy_key_accounts(self.ledger.vault) | held:
            self.report(item, Status.UNCHANGED)
            return
        previous = [
            e
            for e in self.journal.unsettled(self.account.name)
            if e.target == item.journal_target()
        ]
        if previous:
            # Created at most once per trader, ever: an earlier attempt whose answer was
            # lost may have made it, and then its secret is gone. Never try again.
            self.report(
                item,
                Status.UNKNOWN,
                detail="an earlier attempt got no answer; check the trader's copy key on Bitget",
            )
            return
        if not self.sending:
            self.stopped(item)
            return
        passphrase = self.account.copy_passphrase or generate_passphrase()
        entry = self.begin(item)
        try:
            created = await self.client.create_copy_api_key(
                m.CreateCopyAPIKeyRequest(passphrase=passphrase)
            )
        except CopyAPIKeyExistsError as exc:
            self.journal.settle(entry, Outcome.FAILED, detail=describe_error(exc))
            self.report(item, Status.ORPHAN, detail=describe_error(exc))
            return
        except _EXPECTED as exc:
            self.create_failed(entry, item, exc)
            return
        detail = self.persist(
            VaultRecord(
                kind="copy_key",
                account=self.account.name,
                master_uid=self.master_uid,
                api_key=created.api_key,
                secret_key=created.secret_key,
                passphrase=passphrase,
                label="copy",
                permissions=[str(p) for p in created.permissions],
            )
        )
        self.journal.settle(entry, Outcome.DONE, api_key=created.api_key)
        self.report(item, Status.CREATED, api_key=created.api_key, detail=detail)

    def still_missing(self, item: ItemKey) -> None:
        """A planned item that does not exist at the end of the run."""
        if not self.sending:
            self.stopped(item)
        else:
            self.report(item, Status.FAILED, detail="still missing after apply")

    def final_report(self, live: LiveState) -> None:
        """Settle every planned item not yet reported: unchanged, orphan, or still missing."""
        diff = diff_account(self.account, live)
        conflicted = {conflict.label for conflict in diff.conflicts}
        for sub in self.account.subaccounts:
            # A conflict was reported; its keys are not this plan's to judge.
            if sub.label not in conflicted:
                self.final_subaccount(sub, diff, live)
        changed = {spec.api_key for spec in diff.broker_changes}
        for spec in self.account.broker_keys:
            item = ItemKey(ItemKind.BROKER_KEY, spec.sub_uid, spec.api_key)
            if item in self.reported:
                continue
            if spec.api_key in changed:
                self.still_missing(item)
            else:
                self.report(item, Status.UNCHANGED, api_key=spec.api_key)

    def final_subaccount(self, sub: SubaccountSpec, diff: AccountDiff, live: LiveState) -> None:
        missing_sub = any(new.label == sub.label for new in diff.new_subaccounts)
        missing_keys = {k.key.label for k in diff.new_keys if k.subaccount.label == sub.label}
        uid = diff.matched.get(sub.label)
        live_keys = {key.label: key for key in live.keys.get(uid, ())} if uid else {}
        sub_item = ItemKey(ItemKind.SUBACCOUNT, sub.label)
        if sub_item not in self.reported:
            if missing_sub:
                self.still_missing(sub_item)
            else:
                self.report(sub_item, Status.UNCHANGED)
        for index, key in enumerate(sub.keys):
            item = ItemKey(ItemKind.KEY, sub.label, key.label)
            found = live_keys.get(key.label) or (live_keys.get(sub.label) if index == 0 else None)
            if found is not None and found.api_key not in self.ledger.vault_keys:
                self.report(
                    item,
                    Status.ORPHAN,
                    api_key=found.api_key,
                    detail="exists on Bitget but its secret never reached the vault",
                )
            elif item in self.reported:
                continue
            elif missing_sub or key.label in missing_keys:
                self.still_missing(item)
            else:
                api_key = found.api_key if found is not None else None
                self.report(item, Status.UNCHANGED, api_key=api_key)


async def apply_plan(
    plan: Plan,
    *,
    clients: Callable[[AccountSpec], Client],
    vault: SecretsVault | None = None,
    journal: Journal | None = None,
    ledger: Ledger | None = None,
    gate: DispatchGate | None = None,
    on_result: OnResult | None = None,
    max_rounds: int = 4,
) -> list[ItemResult]:
    """
    Make every account of ``plan`` match it, concurrently; return one result per item.

    ``clients`` gives the (open) client of an account; clients of one UID should share
    one scheduler, and every client should share ``gate``, through which the run is
    stopped (`DispatchGate.close`): creates not yet sent are reported ``stopped``,
    answers on the wire are awaited and stored. Give the vault and journal, or a
    `Ledger` of both. Errors of one account become its results and never stop the
    others.

    Raises:
        SecretsNotStoredError: the vault could not be written; the secrets are in the
            error (and in ``ledger.unsaved``): save them elsewhere.
        Exception: an error no result can express (a journal write failed, a bug),
            raised once every request on the wire has been answered.
    """
    ledger = Ledger.of(ledger, vault, journal)
    run = _PlanRun(ledger, gate if gate is not None else DispatchGate(), on_result)
    await asyncio.gather(
        *(run.account(account, clients(account), max_rounds) for account in plan.accounts)
    )
    await ledger.flush()
    if run.errors:
        raise run.errors[0]
    return run.results


class _PlanRun:
    """What the accounts of one apply share: results, the gate, the first errors."""

    def __init__(self, ledger: Ledger, gate: DispatchGate, on_result: OnResult | None) -> None:
        self.ledger = ledger
        self.gate = gate
        self.on_result = on_result
        self.results: list[ItemResult] = []
        self.errors: list[BaseException] = []
        also = ledger.on_vault_failure

        def vault_failed(exc: VaultError) -> None:
            gate.close(f"the vault could not be written: {exc.detail}")
            if also is not None:
                also(exc)

        ledger.on_vault_failure = vault_failed

    def collect(self, result: ItemResult) -> None:
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    def fail(self, exc: BaseException) -> None:
        """An error no result expresses: stop sending, raise it once all have ended."""
        self.errors.append(exc)
        _log.error("apply stops sending: %s", describe_error(exc))
        self.gate.close(f"an error: {describe_error(exc)}")

    async def account(self, account: AccountSpec, client: Client, max_rounds: int) -> None:
        run = _AccountRun(account, client, self.ledger, self.gate, self.collect, self.fail)
        item = ItemKey(ItemKind.ACCOUNT, key=account.name)
        try:
            await run.run(max_rounds)
        except DispatchStoppedError:
            # Aborted while reading: nothing more is known about the rest.
            run.report_the_rest()
        except _EXPECTED as exc:
            # Reading live state failed (or the UID could not be learned): the whole
            # account stops here, with its reason; the other accounts go on.
            _stop_on_backend_failure(self.gate, exc)
            detail = describe_error(exc)
            if isinstance(exc, _NOT_SENT):
                detail = f"not sent: {detail}"
            run.report(item, Status.FAILED, detail=detail)
        except Exception as exc:  # noqa: BLE001 - raised by apply_plan once all ended
            self.fail(exc)
