"""
Applying a plan: make live state match it, account by account, all accounts at once.

Each account runs in rounds. A round reads live state (the list endpoints), diffs it
against the plan, and creates only what is missing: new sub-accounts in batches of at
most five (each with its first key), further keys of sub-accounts that exist, broker key
changes, and the copy key. Bitget masks new sub-accounts' UIDs, so keys of sub-accounts
made in one round are made in the next, after the list shows their UIDs.

Nothing is created twice:

- Every round starts from live state, so a re-run (or a run after a crash) creates only
  what is still missing; re-running a completed plan sends no create.
- A create whose answer never came (timeout, dropped connection, server error) is
  *unknown*: it is not sent again in this round; the next round reads live state first,
  and only what is still absent is created again.
- The copy key can be created once per trader, ever, so an unknown copy-key outcome is
  reported and never retried.

Nothing created is lost: each secret is appended to the vault (fsynced, synchronously, so
no other request of the run starts meanwhile) the moment its answer arrives, before the
item is reported. A key that exists live but whose secret is not in the vault is
reported as an orphan that needs attention (neutralise it, or delete it in the web UI);
it is never silently recreated.

One failing account or item never stops the others: every failure becomes a result.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
import string
from collections.abc import Callable, Sequence
from typing import Final

import attrs

from bitget_keys import models as m
from bitget_keys._client import Client
from bitget_keys._journal import Journal, Outcome
from bitget_keys._plan import AccountSpec, BrokerKeySpec, KeySpec, Plan, SubaccountSpec
from bitget_keys._planner import AccountDiff, LiveState, MissingKey, diff_account
from bitget_keys._secret import Secret
from bitget_keys._vault import SecretsVault, VaultRecord
from bitget_keys.errors import (
    APIError,
    BitgetKeysError,
    CopyAPIKeyExistsError,
    ServerError,
    TransportError,
)

__all__ = ["ItemResult", "Status", "apply_plan", "generate_passphrase", "read_live_state"]

_log: Final = logging.getLogger("bitget_keys.apply")

_PASSPHRASE_ALPHABET: Final = string.ascii_letters + string.digits


def generate_passphrase(length: int = 24) -> Secret:
    """A random passphrase Bitget accepts: letters and digits, with at least one of each."""
    while True:
        text = "".join(secrets.choice(_PASSPHRASE_ALPHABET) for _ in range(length))
        if any(c.isdigit() for c in text) and any(c.isalpha() for c in text):
            return Secret(text)


class Status(enum.StrEnum):
    """What happened to one item."""

    CREATED = "created"
    MODIFIED = "modified"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    #: Sent, but no answer: it may exist. Live state decides on the next round or run.
    UNKNOWN = "unknown"
    #: Exists live, but its secret never reached the vault.
    ORPHAN = "orphan"
    #: The plan and live state disagree in a way only a person can settle.
    CONFLICT = "conflict"


@attrs.frozen(kw_only=True)
class ItemResult:
    """The outcome for one planned item."""

    account: str
    #: ``subaccount``, ``key``, ``broker_key`` or ``copy_key``.
    kind: str
    #: The item's place in the plan, e.g. ``alpha/trade``.
    target: str
    status: Status
    api_key: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, str | None]:
        """A JSON-ready view (no secret is ever part of a result)."""
        return {
            "account": self.account,
            "kind": self.kind,
            "target": self.target,
            "status": self.status.value,
            "api_key": self.api_key,
            "detail": self.detail,
        }


OnResult = Callable[[ItemResult], None]


async def read_live_state(client: Client, account: AccountSpec) -> LiveState:
    """Read what exists for ``account``: sub-accounts, their keys, broker keys."""
    subaccounts = tuple([sub async for sub in client.iter_virtual_subaccounts(page_size=100)])
    planned_labels = {sub.label for sub in account.subaccounts}
    keys: dict[str, tuple[m.VirtualSubaccountAPIKey, ...]] = {}
    for sub in subaccounts:
        if sub.label in planned_labels and sub.status is not m.SubaccountStatus.DELETED:
            keys[sub.subaccount_uid] = await client.list_virtual_subaccount_api_keys(
                sub.subaccount_uid
            )
    broker_keys = {
        sub_uid: await client.list_broker_subaccount_api_keys(sub_uid)
        for sub_uid in sorted({spec.sub_uid for spec in account.broker_keys})
    }
    return LiveState(subaccounts=subaccounts, keys=keys, broker_keys=broker_keys)


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, BitgetKeysError) else type(exc).__name__


def _ambiguous(exc: BaseException) -> bool:
    """Whether a failed create may still have taken effect."""
    if isinstance(exc, TransportError):
        return exc.maybe_sent
    return isinstance(exc, ServerError)


class _AccountRun:
    """Applies one account's plan; every outcome goes to ``on_result``."""

    def __init__(  # noqa: PLR0917 - private; built in one place
        self,
        account: AccountSpec,
        client: Client,
        vault: SecretsVault,
        journal: Journal,
        on_result: OnResult,
        vault_keys: set[str],
    ) -> None:
        self.account = account
        self.client = client
        self.vault = vault
        self.journal = journal
        self.on_result = on_result
        self.vault_keys = vault_keys
        self.master_uid = ""
        self.reported: set[tuple[str, str]] = set()

    def report(
        self,
        kind: str,
        target: str,
        status: Status,
        *,
        api_key: str | None = None,
        detail: str = "",
    ) -> None:
        self.reported.add((kind, target))
        result = ItemResult(
            account=self.account.name,
            kind=kind,
            target=target,
            status=status,
            api_key=api_key,
            detail=detail,
        )
        _log.info("%s %s %s: %s", result.account, kind, target, status.value)
        self.on_result(result)

    def create_failed(self, entry: int, kind: str, target: str, exc: BaseException) -> None:
        """Settle and report a create that failed: unknown if it may have taken effect."""
        unknown = _ambiguous(exc)
        detail = _describe(exc)
        self.journal.settle(entry, Outcome.UNKNOWN if unknown else Outcome.FAILED, detail=detail)
        self.report(kind, target, Status.UNKNOWN if unknown else Status.FAILED, detail=detail)

    def persist_key(  # noqa: PLR0917 - every part of the record
        self,
        sub: SubaccountSpec,
        key: KeySpec,
        api_key: str,
        secret_key: Secret,
        passphrase: Secret,
        subaccount_uid: str,
    ) -> None:
        """Store a new sub-account key (see `persist`)."""
        self.persist(
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
                permissions=[str(p) for p in key.permissions],
                ip_list=key.ip_list,
            )
        )

    def persist(self, record: VaultRecord) -> None:
        # Synchronous on purpose: nothing else in this run sends while a secret is
        # being made durable.
        self.vault.append(record)
        self.vault_keys.add(record.api_key)

    async def run(self, max_rounds: int) -> None:
        self.master_uid = await self.client.uid()
        live = LiveState()
        for _ in range(max_rounds):
            live = await read_live_state(self.client, self.account)
            diff = diff_account(self.account, live)
            for conflict in diff.conflicts:
                if ("subaccount", conflict) not in self.reported:
                    self.report("subaccount", conflict, Status.CONFLICT, detail=conflict)
            if diff.empty:
                break
            await self.round(diff)
        await self.copy_key()
        self.final_report(live)

    async def round(self, diff: AccountDiff) -> None:
        for start in range(0, len(diff.new_subaccounts), m.MAX_BATCH_ITEMS):
            await self.create_subaccounts(diff.new_subaccounts[start : start + m.MAX_BATCH_ITEMS])
        await asyncio.gather(*(self.create_key(missing) for missing in diff.new_keys))
        await asyncio.gather(*(self.modify_broker_key(spec) for spec in diff.broker_changes))

    async def create_subaccounts(self, batch: Sequence[SubaccountSpec]) -> None:
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
        entries = {
            sub.label: self.journal.begin(self.account.name, "subaccount", f"sub:{sub.label}")
            for sub in batch
        }
        try:
            rows = await self.client.batch_create_virtual_subaccounts(request)
        except (APIError, TransportError) as exc:
            for sub in batch:
                self.create_failed(entries[sub.label], "subaccount", sub.label, exc)
            return
        by_label = {row.label: row for row in rows}
        for sub in batch:
            row = by_label.get(sub.label)
            if row is None:
                # Bitget answered but left this item out: treat as unknown until listed.
                detail = "missing from the batch answer"
                self.journal.settle(entries[sub.label], Outcome.UNKNOWN, detail=detail)
                self.report("subaccount", sub.label, Status.UNKNOWN, detail=detail)
                continue
            first = sub.keys[0]
            self.persist_key(
                sub, first, row.api_key, row.secret_key, passphrases[sub.label], row.subaccount_uid
            )
            self.journal.settle(entries[sub.label], Outcome.DONE, api_key=row.api_key)
            self.report("subaccount", sub.label, Status.CREATED, api_key=row.api_key)
            self.report("key", f"{sub.label}/{first.label}", Status.CREATED, api_key=row.api_key)

    async def create_key(self, missing: MissingKey) -> None:
        key: KeySpec = missing.key
        target = f"{missing.subaccount.label}/{key.label}"
        passphrase = key.passphrase or generate_passphrase()
        entry = self.journal.begin(self.account.name, "key", f"key:{target}")
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
        except (APIError, TransportError) as exc:
            self.create_failed(entry, "key", target, exc)
            return
        self.persist_key(
            missing.subaccount,
            key,
            created.api_key,
            created.secret_key,
            passphrase,
            missing.subaccount_uid,
        )
        self.journal.settle(entry, Outcome.DONE, api_key=created.api_key)
        self.report("key", target, Status.CREATED, api_key=created.api_key)

    async def modify_broker_key(self, spec: BrokerKeySpec) -> None:
        target = f"{spec.sub_uid}/{spec.api_key}"
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
        except (APIError, TransportError) as exc:
            # A modify sets absolute values, so whatever its outcome, the next round
            # reads the key again and sends it once more only if it still differs.
            status = Status.UNKNOWN if _ambiguous(exc) else Status.FAILED
            self.report("broker_key", target, status, api_key=spec.api_key, detail=_describe(exc))
            return
        self.report("broker_key", target, Status.MODIFIED, api_key=spec.api_key)

    async def copy_key(self) -> None:
        if not self.account.copy_api_key:
            return
        target = "copy"
        if any(
            record.kind == "copy_key" and record.account == self.account.name
            for record in self.vault.records()
        ):
            self.report("copy_key", target, Status.UNCHANGED)
            return
        previous = [e for e in self.journal.unsettled(self.account.name) if e.target == target]
        if previous:
            # Created at most once per trader, ever: an earlier attempt whose answer was
            # lost may have made it, and then its secret is gone. Never try again.
            self.report(
                "copy_key",
                target,
                Status.UNKNOWN,
                detail="an earlier attempt got no answer; check the trader's copy key on Bitget",
            )
            return
        passphrase = self.account.copy_passphrase or generate_passphrase()
        entry = self.journal.begin(self.account.name, "copy_key", target)
        try:
            created = await self.client.create_copy_api_key(
                m.CreateCopyAPIKeyRequest(passphrase=passphrase)
            )
        except CopyAPIKeyExistsError as exc:
            self.journal.settle(entry, Outcome.FAILED, detail=_describe(exc))
            self.report("copy_key", target, Status.ORPHAN, detail=_describe(exc))
            return
        except (APIError, TransportError) as exc:
            self.create_failed(entry, "copy_key", target, exc)
            return
        self.persist(
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
        self.report("copy_key", target, Status.CREATED, api_key=created.api_key)

    def final_report(self, live: LiveState) -> None:
        """Settle every planned item not yet reported: unchanged, orphan, or still missing."""
        diff = diff_account(self.account, live)
        missing_subs = {sub.label for sub in diff.new_subaccounts}
        missing_keys = {(k.subaccount.label, k.key.label) for k in diff.new_keys}
        for sub in self.account.subaccounts:
            uid = diff.matched.get(sub.label)
            live_keys = {key.label: key for key in live.keys.get(uid, ())} if uid else {}
            if ("subaccount", sub.label) not in self.reported and sub.label not in missing_subs:
                self.report("subaccount", sub.label, Status.UNCHANGED)
            for index, key in enumerate(sub.keys):
                target = f"{sub.label}/{key.label}"
                found = live_keys.get(key.label) or (
                    live_keys.get(sub.label) if index == 0 else None
                )
                if found is not None and found.api_key not in self.vault_keys:
                    self.report(
                        "key",
                        target,
                        Status.ORPHAN,
                        api_key=found.api_key,
                        detail=("exists on Bitget but its secret never reached the vault"),
                    )
                elif ("key", target) in self.reported:
                    continue
                elif sub.label in missing_subs or (sub.label, key.label) in missing_keys:
                    self.report("key", target, Status.FAILED, detail="still missing after apply")
                else:
                    api_key = found.api_key if found is not None else None
                    self.report("key", target, Status.UNCHANGED, api_key=api_key)
        changed = {spec.api_key for spec in diff.broker_changes}
        for spec in self.account.broker_keys:
            target = f"{spec.sub_uid}/{spec.api_key}"
            if ("broker_key", target) in self.reported:
                continue
            status = Status.FAILED if spec.api_key in changed else Status.UNCHANGED
            self.report("broker_key", target, status, api_key=spec.api_key)


async def apply_plan(
    plan: Plan,
    *,
    clients: Callable[[AccountSpec], Client],
    vault: SecretsVault,
    journal: Journal,
    on_result: OnResult | None = None,
    max_rounds: int = 4,
) -> list[ItemResult]:
    """
    Make every account of ``plan`` match it, concurrently; return one result per item.

    ``clients`` gives the (open) client of an account; clients of one UID should share
    one scheduler. Errors of one account become its results and never stop the others.
    """
    results: list[ItemResult] = []

    def collect(result: ItemResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    vault_keys = {record.api_key for record in vault.records()}

    async def one(account: AccountSpec) -> None:
        run = _AccountRun(account, clients(account), vault, journal, collect, vault_keys)
        try:
            await run.run(max_rounds)
        except (APIError, TransportError) as exc:
            # Reading live state failed (or the UID could not be learned): the whole
            # account stops here, with its reason; the other accounts go on.
            run.report("account", account.name, Status.FAILED, detail=_describe(exc))

    await asyncio.gather(*(one(account) for account in plan.accounts))
    return results
