"""
Rotating many keys: which keys a command line names, what each master holds, the
10-key check, and every rotation of the run at once.

Keys are named ``ACCOUNT/SUBACCOUNT-LABEL/KEY-LABEL`` with shell-style globs
(``main/*/*``, ``*/bots/*``). Every rotation of a master runs concurrently, paced by
the run's scheduler as apply's requests are (one lane per UID and endpoint), and the
key lists a sub-account's rotations need are read once for all of them
(`SharedList`). Unfinished rotations are continued, never started twice; those whose
old key is left to revoke (outstanding, or only revocable in the web UI) are taken up
first by every run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fnmatch
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import attrs

from bitget_keys import models as m
from bitget_keys._client import Client
from bitget_keys._gate import DispatchGate
from bitget_keys._signing import Credentials
from bitget_keys.lifecycle.rotation import (
    AuditSink,
    MasterContext,
    RotationEvent,
    RotationSettings,
)
from bitget_keys.lifecycle.rotation_journal import Rotation, RotationJournal, Step
from bitget_keys.lifecycle.rotation_steps import KeyRotation
from bitget_keys.provision.family import ClassicAPI, UnifiedAPI, account_api
from bitget_keys.provision.key_ops import is_neutralised
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.live import list_subaccounts
from bitget_keys.provision.outcomes import EXPECTED
from bitget_keys.provision.plan import AccountSpec, KeySpec, Plan, SubaccountSpec
from bitget_keys.provision.retrying import describe_error, read_retrying
from bitget_keys.provision.vault_records import Stage, VaultRecord

__all__ = [
    "Planned",
    "Selector",
    "Survey",
    "held_records",
    "is_due",
    "master_contexts",
    "run_rotations",
    "survey",
]

_log: Final = logging.getLogger("bitget_keys.rotate")

#: Steps after which only the old key's revocation is left.
_REVOKING: Final = frozenset({Step.PROMOTED, Step.REVOKE_MANUAL})


@attrs.frozen
class Selector:
    """``ACCOUNT/SUBACCOUNT-LABEL/KEY-LABEL``, each part a shell-style glob."""

    account: str
    subaccount: str
    key: str

    @classmethod
    def parse(cls, text: str) -> Selector:
        """
        Raises:
            ValueError: not three parts separated by ``/``.
        """
        parts = text.split("/")
        if len(parts) != 3 or not all(parts):
            msg = f"{text!r}: name keys as ACCOUNT/SUBACCOUNT-LABEL/KEY-LABEL (globs allowed)"
            raise ValueError(msg)
        return cls(*parts)

    def matches(self, account: str, subaccount: str, key: str) -> bool:
        return (
            fnmatch.fnmatchcase(account, self.account)
            and fnmatch.fnmatchcase(subaccount, self.subaccount)
            and fnmatch.fnmatchcase(key, self.key)
        )


@attrs.frozen(kw_only=True)
class Planned:
    """One key this run works on: a rotation to continue, to start, or refused."""

    account: str
    sub: SubaccountSpec | None
    key: KeySpec | None
    target: str
    #: The unfinished rotation to continue; ``None``: start one.
    rotation: Rotation | None = None
    subaccount_uid: str = ""
    #: The live key a new rotation replaces.
    old: m.VirtualSubaccountAPIKey | None = None
    #: Why nothing is done for it (nothing is sent).
    refusal: str | None = None
    #: Whether this run was asked for it (named, due, or ``--finish``), and so may wait
    #: out its grace; an earlier rotation only taken up to revoke what is due never waits.
    asked: bool = True

    def describe(self) -> str:
        where = f"{self.account}/{self.target}"
        if self.refusal is not None:
            return f"refuse   {where}: {self.refusal}"
        if self.rotation is not None:
            step = self.rotation.step
            verb = "revoke  " if step in _REVOKING else "continue"
            detail = f" ({self.rotation.detail})" if self.rotation.detail else ""
            return f"{verb} {where}: {self.rotation.old_api_key}, at {step.value}{detail}"
        assert self.old is not None  # noqa: S101 - a new rotation has its old key
        return f"rotate   {where}: {self.old.api_key} -> a new key"


@attrs.define(eq=False)
class Survey:
    """What the run will do, master by master."""

    masters: list[tuple[MasterContext, list[Planned]]] = attrs.field(factory=list)
    #: Accounts that could not be read (their rotations wait for a later run).
    failures: list[RotationEvent] = attrs.field(factory=list)

    @property
    def items(self) -> list[Planned]:
        return [item for _, items in self.masters for item in items]


def _plan_key(account: AccountSpec, target: str) -> tuple[SubaccountSpec, KeySpec] | None:
    sub_label, _, key_label = target.partition("/")
    for sub in account.subaccounts:
        if sub.label == sub_label:
            for key in sub.keys:
                if key.label == key_label:
                    return sub, key
    return None


def _age(record: VaultRecord | None, now: float) -> float | None:
    """Seconds since the held key became what it is; ``None``: not known."""
    if record is None or not record.held:
        return None
    stamp = record.stage_changed_at or record.created_at
    try:
        made = dt.datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None
    return now - made


def is_due(key: KeySpec, record: VaultRecord | None, now: float) -> bool:
    """Whether ``key`` is older than its ``rotate_after`` (a key whose secret is not held is)."""
    if key.rotate_after is None:
        return False
    age = _age(record, now)
    return age is None or age >= key.rotate_after


def _old_key(
    keys: Sequence[m.VirtualSubaccountAPIKey],
    sub: SubaccountSpec,
    key: KeySpec,
    records: dict[str, VaultRecord],
) -> m.VirtualSubaccountAPIKey | None:
    """
    The live key the plan's ``key`` is: labelled as it (a classic first key carries its
    sub-account's label), not revoked; the vault's current one when several are.
    """
    labels = (key.label, sub.label) if key is sub.keys[0] else (key.label,)
    for label in labels:
        found = []
        for live in keys:
            record = records.get(live.api_key)
            if (
                live.label == label
                and not is_neutralised(live)
                and (record is None or record.stage is Stage.CURRENT)
            ):
                found.append(live)
        held = [live for live in found if live.api_key in records]
        if held or found:
            return (held or found)[-1]
    return None


def _capacity_refusal(keys: Sequence[m.VirtualSubaccountAPIKey], adding: int) -> str | None:
    """Why adding ``adding`` keys would break the 10-key quota; ``None``: it doesn't."""
    total = len(keys) + adding
    if total <= m.MAX_SUBACCOUNT_KEYS:
        return None
    neutral = sum(is_neutralised(key) for key in keys)
    still = (
        f" ({neutral} of them neutralised classic keys, which still occupy a slot: "
        "Bitget has no delete for them)"
        if neutral
        else ""
    )
    return (
        f"the sub-account holds {len(keys)} keys{still}; rotating would make {total} "
        f"while old and new overlap, over Bitget's {m.MAX_SUBACCOUNT_KEYS}: nothing was sent"
    )


async def _survey_master(  # noqa: C901 - one pass over one master's keys
    ctx: MasterContext,
    chosen: Sequence[tuple[SubaccountSpec, KeySpec]],
    unfinished: Sequence[Rotation],
    *,
    due: bool,
    now: float,
    asked: Callable[[Rotation], bool] = lambda _: True,
) -> list[Planned]:
    account = ctx.account
    items: list[Planned] = []
    busy = {rotation.target for rotation in unfinished}
    for rotation in sorted(unfinished, key=lambda r: r.step not in _REVOKING):
        found = _plan_key(account, rotation.target)
        if found is None:
            refusal = "no longer in the plan; its rotation stays journaled until it is"
            items.append(
                Planned(
                    account=account.name,
                    sub=None,
                    key=None,
                    target=rotation.target,
                    rotation=rotation,
                    refusal=refusal,
                )
            )
            continue
        sub, key = found
        items.append(
            Planned(
                account=account.name,
                sub=sub,
                key=key,
                target=rotation.target,
                rotation=rotation,
                subaccount_uid=rotation.subaccount_uid,
                asked=asked(rotation),
            )
        )
    if not chosen:
        return items
    listed = await read_retrying(lambda: list_subaccounts(ctx.api))
    uids = {
        sub.label: sub.subaccount_uid
        for sub in listed
        if sub.status is not m.SubaccountStatus.DELETED
    }
    adding: dict[str, int] = {}
    for rotation in unfinished:
        if rotation.step in {Step.PLANNED, Step.PASSPHRASE_STORED, Step.CREATE_SENT}:
            adding[rotation.subaccount_uid] = adding.get(rotation.subaccount_uid, 0) + 1
    wanted = {uids[sub.label] for sub, _ in chosen if sub.label in uids}
    # Every sub-account's list at once: the reads go out as their lanes allow.
    lists = dict(
        zip(wanted, await asyncio.gather(*(ctx.keys_of(uid).read() for uid in wanted)), strict=True)
    )
    for sub, key in chosen:
        target = f"{sub.label}/{key.label}"
        if target in busy:
            continue
        base = Planned(account=account.name, sub=sub, key=key, target=target)
        uid = uids.get(sub.label)
        if uid is None:
            items.append(attrs.evolve(base, refusal="no such sub-account: apply creates it"))
            continue
        keys = lists[uid]
        old = _old_key(keys, sub, key, ctx.records)
        if old is None:
            items.append(attrs.evolve(base, refusal="no live key: apply creates it"))
            continue
        if due and not is_due(key, ctx.records.get(old.api_key), now):
            continue
        full = _capacity_refusal(keys, adding.get(uid, 0) + 1)
        if full is None:
            adding[uid] = adding.get(uid, 0) + 1
        items.append(attrs.evolve(base, subaccount_uid=uid, old=old, refusal=full))
    return items


def _chosen(
    account: AccountSpec, pick: Callable[[str, str, str], bool]
) -> list[tuple[SubaccountSpec, KeySpec]]:
    return [
        (sub, key)
        for sub in account.subaccounts
        for key in sub.keys
        if pick(account.name, sub.label, key.label)
    ]


async def survey(
    plan: Plan,
    context: Callable[[AccountSpec, ClassicAPI | UnifiedAPI, str], MasterContext],
    clients: Callable[[AccountSpec], Client],
    *,
    selectors: Sequence[Selector],
    due: bool,
    finish: bool,
    journal_unfinished: Callable[[str], list[Rotation]],
    now: float | None = None,
) -> Survey:
    """
    Read what each master holds and decide, key by key, what this run does: continue
    unfinished rotations (all of them with ``finish``; else those of the named keys,
    and every one left with an old key to revoke), start one for each named key (only
    those past ``rotate_after`` with ``due``), or refuse it (10 keys, not found).
    """
    moment = time.time() if now is None else now
    result = Survey()

    def pick(account: str, sub: str, key: str) -> bool:
        return not finish and (
            any(selector.matches(account, sub, key) for selector in selectors)
            or (due and not selectors)
        )

    async def one(account: AccountSpec) -> None:
        chosen = _chosen(account, pick)
        targets = {f"{sub.label}/{key.label}" for sub, key in chosen}
        unfinished = [
            rotation
            for rotation in journal_unfinished(account.name)
            if finish or rotation.step in _REVOKING or rotation.target in targets
        ]
        if not chosen and not unfinished:
            return
        client = clients(account)
        try:
            api = await account_api(client, account)
            master_uid = await read_retrying(client.uid)
            ctx = context(account, api, master_uid)
            items = await _survey_master(
                ctx,
                chosen,
                unfinished,
                due=due,
                now=moment,
                asked=lambda rotation: finish or rotation.target in targets,
            )
        except EXPECTED as exc:
            result.failures.append(
                RotationEvent(
                    account=account.name,
                    target="*",
                    step="failed",
                    detail=f"could not be read: {describe_error(exc)}",
                    outcome="failed",
                )
            )
            return
        if items:
            result.masters.append((ctx, items))

    await asyncio.gather(*(one(account) for account in plan.accounts))
    order = {account.name: index for index, account in enumerate(plan.accounts)}
    result.masters.sort(key=lambda pair: order[pair[0].account.name])
    return result


async def run_rotations(survey_: Survey) -> list[RotationEvent]:
    """
    Run every rotation the survey settled on, all at once (old keys left to revoke
    first); return each key's outcome. A refused key sends nothing.

    Raises:
        Exception: an error no outcome expresses (the journal could not be written, a
            bug), once every rotation has ended; the run stopped sending at the first.
    """
    outcomes: list[RotationEvent] = list(survey_.failures)

    async def one(ctx: MasterContext, item: Planned) -> None:
        if item.refusal is not None or item.sub is None or item.key is None:
            event = RotationEvent(
                account=item.account,
                target=item.target,
                step="refused",
                detail=item.refusal or "",
                outcome="refused",
            )
            ctx.on_event(event)
            outcomes.append(event)
            return
        rotation = item.rotation
        if rotation is None:
            assert item.old is not None  # noqa: S101 - surveyed with its old key
            rotation = ctx.journal.start(
                ctx.account.name,
                ctx.master_uid,
                item.subaccount_uid,
                item.target,
                item.old.label,
                ctx.api.family,
                item.old.api_key,
                ctx.settings.grace,
            )
        worker = KeyRotation(ctx, item.sub, item.key, rotation, waits=item.asked)
        try:
            outcome = await worker.run()
        except EXPECTED as exc:
            worker.stop("failed", describe_error(exc))
            outcome = "failed"
        except Exception as exc:  # noqa: BLE001 - raised once every rotation has ended
            # Never cancel the others: their answers on the wire carry secrets. Stop
            # sending, let them end, then raise.
            errors.append(exc)
            ctx.gate.close(f"an error: {describe_error(exc)}")
            _log.error("rotate stops sending: %s", describe_error(exc))
            outcome = "failed"
        outcomes.append(
            RotationEvent(
                account=item.account,
                target=item.target,
                step=outcome,
                api_key=worker.row.new_api_key,
                detail=worker.row.detail,
                outcome=outcome,
            )
        )

    errors: list[Exception] = []
    async with asyncio.TaskGroup() as group:
        for ctx, items in survey_.masters:
            for item in items:
                group.create_task(one(ctx, item))
    if errors:
        raise errors[0]
    return outcomes


def master_contexts(
    *,
    ledger: Ledger,
    journal: RotationJournal,
    settings: RotationSettings,
    key_client: Callable[[AccountSpec, Credentials], Client],
    on_event: Callable[[RotationEvent], None],
    audit: AuditSink | None,
    gate: DispatchGate,
    records: dict[str, VaultRecord],
) -> Callable[[AccountSpec, ClassicAPI | UnifiedAPI, str], MasterContext]:
    """
    What `survey` makes each master's `MasterContext` with: the run's shared parts.
    ``key_client`` makes a client signing with a new key of the account's master (so
    it can leave through that master's egress).
    """

    def context(
        account: AccountSpec, api: ClassicAPI | UnifiedAPI, master_uid: str
    ) -> MasterContext:
        return MasterContext(
            account=account,
            api=api,
            master_uid=master_uid,
            ledger=ledger,
            journal=journal,
            settings=settings,
            key_client=functools.partial(key_client, account),
            on_event=on_event,
            audit=audit,
            gate=gate,
            records=records,
        )

    return context


def held_records(records: Iterable[VaultRecord]) -> dict[str, VaultRecord]:
    """The vault's last record of each key (and of each stored passphrase), by API key."""
    return {record.api_key: record for record in records}
