"""``bitget-keys rotate``: replace keys with new ones, under the vault's and state's locks."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from bitget_keys._client import Client, ClientConfig
from bitget_keys._gate import DispatchGate
from bitget_keys._secret import Secret
from bitget_keys._signing import Credentials
from bitget_keys.cli._common import (
    holding_run_locks,
    make_clients,
    read_plan,
    stdin_is_terminal,
    vault_passphrase,
)
from bitget_keys.cli._egress import Egress, assign_egresses, check_planned_egresses, egress_ways
from bitget_keys.cli._run_options import egress_name, rescue_secrets, shard_of
from bitget_keys.cli._signals import GracefulStop
from bitget_keys.cli.apply import egresses_of
from bitget_keys.cli.audit import audit_log_for
from bitget_keys.cli.exits import ExitCode, UsageError
from bitget_keys.errors import VaultMissingError
from bitget_keys.lifecycle.rotation import (
    RotationEvent,
    RotationSettings,
)
from bitget_keys.lifecycle.rotation_journal import RotationJournal
from bitget_keys.lifecycle.rotation_run import (
    Selector,
    Survey,
    held_records,
    master_contexts,
    run_rotations,
    survey,
)
from bitget_keys.limits import Scheduler
from bitget_keys.provision.files import refuse_directory
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.ledger import Ledger, SecretsNotStoredError
from bitget_keys.provision.plan import AccountSpec, Plan
from bitget_keys.provision.vault import SecretsVault

__all__ = ["rotate_status", "run_locked_rotate"]

#: How a run may leave a rotation and still have done what it should.
_FINE = frozenset({"done", "waiting"})


def _selectors(args: argparse.Namespace) -> list[Selector]:
    try:
        selectors = [Selector.parse(text) for text in args.selectors]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.finish and selectors:
        msg = "rotate --finish continues every unfinished rotation: give no SELECTOR"
        raise UsageError(msg)
    if not (selectors or args.due or args.finish):
        msg = (
            "name the keys to rotate (ACCOUNT/SUBACCOUNT-LABEL/KEY-LABEL, globs allowed), "
            "or pass --due (keys past their rotate_after) or --finish"
        )
        raise UsageError(msg)
    return selectors


def _asks(args: argparse.Namespace) -> bool:
    """Whether rotate asks before it starts (``--finish`` only continues what was agreed)."""
    asks = not args.finish and not args.yes
    if asks and (args.json or not stdin_is_terminal()):
        why = "with --json" if args.json else "when stdin is not a terminal"
        msg = (
            f"rotate asks for confirmation, which it cannot do {why}: run it on a terminal "
            "to review the keys it names, or with --yes"
        )
        raise UsageError(msg)
    return asks


async def run_locked_rotate(args: argparse.Namespace) -> int:
    """
    `run_rotate`, holding the vault's and the state file's locks (vault first, as apply
    takes them), so a rotation never runs beside an apply or another rotate of them.
    """
    plan = read_plan(args.plan)
    if args.shard is not None:
        plan = shard_of(plan, args)
    if args.redis_fallback is not None and not args.redis:
        msg = "--redis-fallback paces while --redis is down: give --redis as well"
        raise UsageError(msg)
    ways = egress_ways(args.egress, redis=args.redis or None, default_name=egress_name())
    check_planned_egresses(plan, [name for name, _ in ways])
    selectors = _selectors(args)
    asks = _asks(args)
    for path, what in ((args.vault, "vault"), (args.state, "state file")):
        refuse_directory(path, what)
    if not SecretsVault.exists(args.vault):
        raise VaultMissingError(str(args.vault), "no vault here: rotate replaces keys it holds")
    async with holding_run_locks(args, f"bitget-keys rotate {args.plan}"):
        return await run_rotate(args, plan, selectors, asks=asks)


def _show(args: argparse.Namespace) -> Callable[[RotationEvent], None]:
    def show(event: RotationEvent) -> None:
        if args.json:
            row = {
                "account": event.account,
                "target": event.target,
                "step": event.step,
                "api_key": event.api_key,
                "detail": event.detail,
                "outcome": event.outcome,
            }
            print(json.dumps(row), flush=True)
        else:
            print(event.line(), flush=True)

    return show


def _confirm(found: Survey) -> bool:
    count = sum(item.refusal is None for item in found.items)
    try:
        answer = input(f"Go ahead with these {count} key(s)? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}


class _Clients:
    """The masters' clients and the new keys', each through its master's egress."""

    def __init__(self, args: argparse.Namespace, plan: Plan) -> None:
        self.base_url = args.base_url
        # The egresses, their schedulers and the masters' assignment, as apply makes them.
        self.egresses = egresses_of(args)
        self.assigned = assign_egresses(plan, self.egresses)
        self.gate = DispatchGate()
        self.masters, self.client_for = make_clients(
            args.base_url, None, self.gate, route=self.route
        )
        self.keys: list[Client] = []

    def egress_of(self, account: AccountSpec) -> Egress:
        return self.assigned.get(account.name, self.egresses[0])

    def route(self, account: AccountSpec) -> tuple[Scheduler | None, str | None, Sequence[Any]]:
        egress = self.egress_of(account)
        return egress.scheduler, egress.proxy, ()

    def key_client(self, account: AccountSpec, credentials: Credentials) -> Client:
        """A new key's client: through its master's egress, paced by the same scheduler."""
        egress = self.egress_of(account)
        client = Client(
            credentials,
            base_url=self.base_url,
            config=ClientConfig(proxy=egress.proxy),
            scheduler=egress.scheduler,
            gate=self.gate,
        )
        self.keys.append(client)
        return client

    async def aclose(self) -> None:
        for client in [*self.masters.values(), *self.keys]:
            await client.aclose()
        for egress in self.egresses:
            await egress.aclose()


def _review(found: Survey, show: Callable[[RotationEvent], None], *, asks: bool) -> int | None:
    """List what the run will do and ask; an exit status when it does nothing."""
    for failure in found.failures:
        show(failure)
    if not found.items:
        _say("nothing to rotate")
        return ExitCode.OK if not found.failures else ExitCode.FAILED
    for item in found.items:
        _say(item.describe())
    if asks and not _confirm(found):
        _say("rotate cancelled; nothing was sent")
        return ExitCode.DECLINED
    return None


async def run_rotate(
    args: argparse.Namespace, plan: Plan, selectors: Sequence[Selector], *, asks: bool
) -> int:
    """Survey, list, ask, then rotate every key at once; the exit status."""
    vault_key = vault_passphrase(args.vault, new=False, key_file=args.vault_key_file)
    vault = SecretsVault.open(args.vault, vault_key)
    vault.require_intact()
    clients = _Clients(args, plan)
    gate = clients.gate
    show = _show(args)
    # --finish is for cron: it revokes what is due and leaves the rest for a later run.
    settings = RotationSettings(
        grace=args.grace,
        wait=not (args.no_wait or args.finish),
        verify_timeout=args.verify_timeout,
    )
    # Opened before anything is sent: a damaged log is refused first.
    audit = audit_log_for(args)
    stop = GracefulStop(gate, _say, drain=args.drain_timeout)
    try:
        with (
            Journal(args.state) as journal,
            contextlib.closing(RotationJournal(args.state)) as rotations,
        ):
            ledger = Ledger(vault, journal)
            ledger.on_vault_failure = lambda exc: gate.close(f"the vault failed: {exc.detail}")
            context = master_contexts(
                ledger=ledger,
                journal=rotations,
                settings=settings,
                key_client=clients.key_client,
                on_event=show,
                audit=audit,
                gate=gate,
                records=held_records(vault.records()),
            )
            found = await survey(
                plan,
                context,
                clients.client_for,
                selectors=selectors,
                due=args.due,
                finish=args.finish,
                journal_unfinished=rotations.unfinished,
            )
            if (status := _review(found, show, asks=asks)) is not None:
                return status
            with stop:
                outcomes = await run_rotations(found)
            try:
                await ledger.flush()
            except SecretsNotStoredError as exc:
                return rescue_secrets(exc, Secret(vault_key), None)
    finally:
        await clients.aclose()
    if stop.exit_code is not None:
        _say("stopped: every rotation is journaled; the next rotate continues it")
        return stop.exit_code
    return rotate_status(outcomes)


def rotate_status(outcomes: Sequence[RotationEvent]) -> ExitCode:
    """OK when every rotation is done (or waits out its grace), PARTIAL, else FAILED."""
    fine = sum(event.outcome in _FINE for event in outcomes)
    if fine == len(outcomes):
        return ExitCode.OK
    return ExitCode.PARTIAL if fine else ExitCode.FAILED


def _say(line: str) -> None:
    print(f"bitget-keys: {line}", file=sys.stderr, flush=True)
