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

Besides creating, each round restores planned keys that drifted (a modify sending the
plan's permissions and whole whitelist), freezes or unfreezes sub-accounts whose plan
sets ``frozen``, and revokes what the plan marks absent and, with ``prune``, what it no
longer names (`bitget_keys.provision.drift`): deleted where Bitget can, neutralised
where it cannot (classic keys), each revoked key staged ``REVOKED`` in the vault. A
revocation that fails is tried again in the next round and reported if it never
succeeds.

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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

from bitget_keys._client import Client
from bitget_keys._gate import DispatchGate
from bitget_keys.errors import DispatchStoppedError, VaultError
from bitget_keys.provision.account_report import AccountReport
from bitget_keys.provision.account_run import AccountRun
from bitget_keys.provision.diff import DriftContext, LiveState
from bitget_keys.provision.family import (
    ClassicAPI,
    UnifiedAPI,
    account_api,
    check_modes,
    pinned_mode_detail,
)
from bitget_keys.provision.flows import generate_passphrase
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.live import describe_error, read_live_state
from bitget_keys.provision.outcomes import EXPECTED, not_sent_detail, stop_on_backend_failure
from bitget_keys.provision.plan import AccountSpec, Plan
from bitget_keys.provision.results import ItemKey, ItemKind, ItemResult, OnResult, Status
from bitget_keys.provision.revoke_flows import Audit, HeldKeys
from bitget_keys.provision.vault import SecretsVault

__all__ = [
    "ItemKey",
    "ItemKind",
    "ItemResult",
    "Status",
    "apply_plan",
    "drift_context",
    "generate_passphrase",
    "read_live_state",
]

_log: Final = logging.getLogger("bitget_keys.apply")


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
    first_live: Mapping[str, LiveState] | None = None,
    prune: bool = False,
    audit_log: Path | None = None,
) -> list[ItemResult]:
    """
    Make every account of ``plan`` match it, concurrently; return one result per item.

    ``clients`` gives the (open) client of an account; clients of one UID should share
    one scheduler, and every client should share ``gate``, through which the run is
    stopped (`DispatchGate.close`): creates not yet sent are reported ``stopped``,
    answers on the wire are awaited and stored. Give the vault and journal, or a
    `Ledger` of both. Errors of one account become its results and never stop the
    others.

    ``first_live`` holds live state already read for some accounts (by plan account
    name, through the family apply would use, moments ago): those accounts start from
    it instead of reading again, so a caller that read live state to count the work
    ahead (the live display's totals) costs no second read. An account missing from it
    reads its own.

    ``prune``: also revoke what the plan no longer names under the masters it names
    (``plan`` must be the whole plan: a master's sub-accounts that no account of it
    names are pruned). ``audit_log``: where each modify, freeze and revoke is recorded
    (`bitget_keys.provision.audit_log`; opened at its first entry).

    Raises:
        SecretsNotStoredError: the vault could not be written; the secrets are in the
            error (and in ``ledger.unsaved``): save them elsewhere.
        Exception: an error no result can express (a journal write failed, a bug),
            raised once every request on the wire has been answered.
    """
    ledger = Ledger.of(ledger, vault, journal)
    run = _PlanRun(ledger, gate if gate is not None else DispatchGate(), on_result)
    run.first_live = first_live or {}
    run.held = HeldKeys(ledger.vault.records())
    run.prune = prune
    run.plan = plan
    run.audit = Audit(audit_log, run.gate)
    apis = await asyncio.gather(
        *(run.family(account, clients(account)) for account in plan.accounts)
    )
    # Every master's mode is known before any create is sent, so every rule of its
    # mode is checked for the whole plan first.
    check_modes(plan, [None if api is None else api.family for api in apis])
    await asyncio.gather(
        *(
            run.account(account, api, max_rounds)
            for account, api in zip(plan.accounts, apis, strict=True)
            if api is not None
        )
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
        #: Live state read before the run, by account name (see `apply_plan`).
        self.first_live: Mapping[str, LiveState] = {}
        #: The vault's keys as the run began.
        self.held = HeldKeys()
        self.prune = False
        self.plan = Plan(accounts=())
        self.audit = Audit()
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

    async def family(self, account: AccountSpec, client: Client) -> ClassicAPI | UnifiedAPI | None:
        """The API family serving ``account``; ``None`` (reported) when it can't be told."""
        try:
            return await account_api(client, account)
        except DispatchStoppedError:
            AccountReport(account, self.ledger, self.gate, self.collect).the_rest()
        except EXPECTED as exc:
            stop_on_backend_failure(self.gate, exc)
            item = ItemKey(ItemKind.ACCOUNT, key=account.name)
            detail = f"its mode could not be told: {not_sent_detail(exc)}"
            AccountReport(account, self.ledger, self.gate, self.collect).report(
                item, Status.FAILED, detail=detail, error=exc
            )
        return None

    async def account(
        self, account: AccountSpec, api: ClassicAPI | UnifiedAPI, max_rounds: int
    ) -> None:
        run = AccountRun(account, api, self.ledger, self.gate, self.collect, self.fail)
        run.first_live = self.first_live.get(account.name)
        run.held = self.held
        run.audit = self.audit
        run.drift = drift_context(
            self.plan, account, self.held, family=api.family, prune=self.prune
        )
        item = ItemKey(ItemKind.ACCOUNT, key=account.name)
        try:
            await run.run(max_rounds)
        except DispatchStoppedError:
            # Aborted while reading: nothing more is known about the rest.
            run.out.the_rest()
        except EXPECTED as exc:
            # Reading live state failed (or the UID could not be learned): the whole
            # account stops here, with its reason; the other accounts go on.
            stop_on_backend_failure(self.gate, exc)
            detail = pinned_mode_detail(account, exc) or not_sent_detail(exc)
            run.out.report(item, Status.FAILED, detail=detail, error=exc)
        except Exception as exc:  # noqa: BLE001 - raised by apply_plan once all ended
            self.fail(exc)


def drift_context(
    plan: Plan, account: AccountSpec, held: HeldKeys, *, family: str, prune: bool
) -> DriftContext:
    """
    How ``account``'s drift and revokes are found: the vault's stages, and with
    ``prune`` the sub-accounts other accounts of the same master name (never pruned).
    """
    elsewhere = frozenset(
        sub.label
        for other in plan.accounts
        if other is not account and other.master == account.master
        for sub in other.subaccounts
    )
    return DriftContext(
        family=family,
        stages=held.stages(),
        prune=prune,
        planned_elsewhere=elsewhere,
        protected=held.copy_keys(),
        passphrases=held.with_passphrase(),
    )
