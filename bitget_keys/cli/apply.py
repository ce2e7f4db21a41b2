"""``bitget-keys apply``: make live state match the plan, under the vault's and state's locks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.text import Text

from bitget_keys._client import Client
from bitget_keys._client.observe import RequestObserver
from bitget_keys._gate import DispatchGate, GateState
from bitget_keys._secret import Secret
from bitget_keys.cli._common import (
    apply_with_progress,
    holding_run_locks,
    make_clients,
    plan_from_stdin,
    read_plan,
    repair_hint,
    reporter_for,
    stdin_is_terminal,
    vault_passphrase,
)
from bitget_keys.cli._egress import (
    Egress,
    assign_egresses,
    build_egresses,
    check_planned_egresses,
    egress_ways,
    ip_budget,
)
from bitget_keys.cli._metrics import apply_metrics
from bitget_keys.cli._run_options import egress_name as _egress_name
from bitget_keys.cli._run_options import rescue_secrets as _rescue
from bitget_keys.cli._run_options import shard_of as _shard
from bitget_keys.cli._signals import GracefulStop
from bitget_keys.cli._vault_key import is_new_vault, key_file_in_use
from bitget_keys.cli.audit import audit_log_for
from bitget_keys.cli.exits import ExitCode, UsageError, exit_code_for
from bitget_keys.cli.plan import Approval, confirm_changes, saved_plan_holds
from bitget_keys.errors import (
    ConfigurationError,
    VaultDamagedError,
)
from bitget_keys.limits import Scheduler
from bitget_keys.provision.apply import ItemResult, Status
from bitget_keys.provision.drift import RevokeReason
from bitget_keys.provision.files import loose_permissions, refuse_directory
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.ledger import Ledger, SecretsNotStoredError
from bitget_keys.provision.plan import AccountSpec, Plan
from bitget_keys.provision.progress import (
    Mode,
    Reporter,
    format_line,
)
from bitget_keys.provision.saved_plan import SavedPlan, is_saved_plan, read_saved_plan
from bitget_keys.provision.vault import SecretsVault


def _open_vault_for_apply(path: Path, key: str) -> SecretsVault:
    """The existing vault apply appends to: never a damaged one; version 1 is upgraded."""
    vault = SecretsVault.open(path, key)
    try:
        vault.require_intact()
    except VaultDamagedError as exc:
        detail = (
            f"{exc.detail}; apply never appends to a damaged vault: run {repair_hint(path)} first"
        )
        raise VaultDamagedError(str(path), detail) from exc
    if vault.upgrade():
        print(
            f"bitget-keys: upgraded the vault {path} to format version {vault.version}",
            file=sys.stderr,
        )
    return vault


def _refuse_loose(path: Path, what: str) -> None:
    """``--strict``: refuse a vault or state file that others may read or write."""
    problem = loose_permissions(path, what)
    if problem is not None:
        msg = f"--strict: refusing to use it: {problem}"
        raise ConfigurationError(msg)


def egresses_of(args: argparse.Namespace) -> list[Egress]:
    """
    Where this apply's requests leave from, each way with its scheduler: ``--egress``,
    ``--redis``, ``--ip-policy`` and ``--ip-share`` (`build_egresses`).
    """
    return build_egresses(
        args.egress,
        redis=args.redis or None,
        budget=ip_budget(args.ip_policy, args.ip_share),
        default_name=_egress_name(),
        fallback=args.redis_fallback,
    )


async def run_locked_apply(args: argparse.Namespace) -> int:
    """
    `run_apply`, holding the vault's and the state file's locks for the whole run.

    Both are taken (vault first, in every process) before anything is read, sent or
    created, so a second apply on the same vault or state fails at once naming the run
    that holds it, or waits for it with ``--wait-lock``; a new vault is created under
    its lock. The plan is read and checked first: a plan that can't run leaves no lock
    files behind.
    """
    plan, saved = _plan_to_apply(args)
    if not args.create_vault and (args.yes or not stdin_is_terminal()):
        # No one to ask: a missing vault stops apply here, before any lock file exists.
        is_new_vault(args.vault, create=False, ask=False)
    for path, what in ((args.vault, "vault"), (args.state, "state file")):
        refuse_directory(path, what)
        if args.strict:
            _refuse_loose(path, what)
    async with holding_run_locks(args, f"bitget-keys apply {args.plan}"):
        return await run_apply(args, plan, saved=saved)


def _plan_to_apply(args: argparse.Namespace) -> tuple[Plan, SavedPlan | None]:
    """
    The plan (or shard) apply runs, once it is known that apply may run unattended; and
    the saved plan it came from, when ``args.plan`` is one (told by its content).
    """
    if plan_from_stdin(args.plan) and not args.yes:
        msg = (
            "apply - reads the plan from stdin, so it cannot ask for confirmation there: "
            "review the changes with `bitget-keys plan`, then run apply - with --yes"
        )
        raise UsageError(msg)
    if plan_from_stdin(args.plan) and key_file_in_use(args.vault_key_file) == "-":
        msg = (
            "apply - reads the plan from stdin, so the vault key cannot come from there "
            "too: give --vault-key-file a file (or set $BITGET_KEYS_VAULT_KEY)"
        )
        raise UsageError(msg)
    if args.prune and args.shard is not None:
        msg = (
            "--prune revokes what the whole plan no longer names, which a shard cannot "
            "tell (the other shards name other sub-accounts of the same masters): prune "
            "without --shard"
        )
        raise UsageError(msg)
    if args.redis_fallback is not None and not args.redis:
        msg = "--redis-fallback paces while --redis is down: give --redis as well"
        raise UsageError(msg)
    if plan_from_stdin(args.plan):
        saved = None
        plan = read_plan(args.plan)
    else:
        saved = read_saved_plan(args.plan) if is_saved_plan(args.plan) else None
        plan = read_plan(args.plan) if saved is None else saved.plan()
    if args.shard is not None:
        plan = _shard(plan, args)
    # Before the locks are taken: a plan naming an egress this run lacks cannot run.
    ways = egress_ways(args.egress, redis=args.redis or None, default_name=_egress_name())
    check_planned_egresses(plan, [name for name, _ in ways])
    # A saved plan was reviewed when it was saved: it needs no confirmation.
    if saved is None and not args.yes and (args.json or not stdin_is_terminal()):
        why = "with --json" if args.json else "when stdin is not a terminal"
        msg = (
            f"apply asks for confirmation, which it cannot do {why}: review the changes "
            "with `bitget-keys plan`, then run apply with --yes"
        )
        raise UsageError(msg)
    return plan, saved


async def run_apply(args: argparse.Namespace, plan: Plan, *, saved: SavedPlan | None = None) -> int:
    """
    Make live state match the plan: a live display on a terminal, else one line (or JSON
    object) per item.
    """
    # A mistyped --vault must not start a new, empty vault beside the real one.
    new_vault = is_new_vault(args.vault, create=args.create_vault, ask=not args.yes)
    vault_key = vault_passphrase(args.vault, new=new_vault, key_file=args.vault_key_file)
    # An existing vault is opened now, so a wrong key stops apply before anything is
    # sent; a new one is made only once the changes are confirmed.
    vault = None if new_vault else _open_vault_for_apply(args.vault, vault_key)
    egresses = egresses_of(args)
    assigned = assign_egresses(plan, egresses)
    metrics = apply_metrics(args, egresses)

    def route(
        account: AccountSpec,
    ) -> tuple[Scheduler | None, str | None, Sequence[RequestObserver]]:
        egress = assigned.get(account.name, egresses[0])
        return egress.scheduler, egress.proxy, metrics.observers_for(egress.name)

    # Opened (and its last entry checked) before anything is sent: a damaged log is
    # refused first, as rotate and import refuse it, rather than stopping a run midway.
    audit_log = audit_log_for(args).path
    gate = DispatchGate()
    clients, client_for = make_clients(args.base_url, None, gate, route=route)
    reporter = reporter_for(args)
    stop = GracefulStop(gate, _operator_line(reporter), drain=args.drain_timeout)
    try:
        await metrics.start()
        try:
            approval = await _approved(args, plan, client_for, vault, saved)
            if not approval.approved:
                print(
                    "bitget-keys: apply cancelled; nothing was created or changed",
                    file=sys.stderr,
                )
                # A saved plan refused because live state moved is a failure, not a no.
                return ExitCode.DECLINED if saved is None else ExitCode.FAILED
        except KeyboardInterrupt:
            print("\nbitget-keys: apply cancelled; nothing was created or changed", file=sys.stderr)
            return ExitCode.INTERRUPTED
        if vault is None:
            vault = SecretsVault.open(args.vault, vault_key)
        with Journal(args.state) as journal, stop:
            ledger = Ledger(vault, journal)
            try:
                results = await apply_with_progress(
                    plan,
                    clients=client_for,
                    ledger=ledger,
                    gate=gate,
                    reporter=reporter,
                    first_live=approval.live,
                    prune=_prunes(args, saved),
                    audit_log=audit_log,
                )
            except SecretsNotStoredError as exc:
                if reporter.mode is Mode.LIVE:
                    reporter.console.print(Text(reporter.summary()))
                return _rescue(exc, Secret(vault_key), args.rescue_dir)
    finally:
        for client in clients.values():
            await client.aclose()
        for egress in egresses:
            await egress.aclose()
        await metrics.aclose()
    if reporter.mode is Mode.LIVE:
        reporter.console.print(Text(reporter.summary()))
    return _apply_exit(gate, stop, results)


async def _approved(
    args: argparse.Namespace,
    plan: Plan,
    client_for: Callable[[AccountSpec], Client],
    vault: SecretsVault | None,
    saved: SavedPlan | None,
) -> Approval:
    """A saved plan whose live state is as saved, ``--yes``, or a yes at the prompt."""
    prune = _prunes(args, saved)
    if saved is not None:
        return await saved_plan_holds(saved, plan, client_for, vault, args.base_url, prune=prune)
    if args.yes:
        return Approval(approved=True)
    return await confirm_changes(plan, client_for, vault, prune=prune)


def _prunes(args: argparse.Namespace, saved: SavedPlan | None) -> bool:
    """
    ``--prune``, or a saved plan reviewed with it (its revokes say so): the saved plan
    is applied as reviewed, and its check of live state refuses it if that moved.
    """
    if args.prune or saved is None:
        return bool(args.prune)
    return any(
        change.get("action") == "revoke"
        and change.get("attributes", {}).get("reason") == str(RevokeReason.PRUNE)
        for change in saved.changes
    )


def _apply_exit(gate: DispatchGate, stop: GracefulStop, results: Sequence[ItemResult]) -> int:
    """Explain a stopped run; the exit status (128 + signal after a signal)."""
    if gate.state is not GateState.OPEN:
        _explain_stop(gate, results)
    if stop.exit_code is not None:
        return stop.exit_code
    return apply_status(results)


def apply_status(results: Sequence[ItemResult]) -> ExitCode:
    """
    The exit status of a finished apply: `ExitCode.OK` when every item is as planned;
    `ExitCode.PARTIAL` when some are and others failed (or are unknown, orphaned, in
    conflict, not sent); when none is, the status of the errors that failed them if
    they all tell one (`ExitCode.UNAVAILABLE`: Bitget unreachable; `ExitCode.CONFIG`:
    credentials refused), else `ExitCode.FAILED`.
    """
    good = {
        Status.CREATED,
        Status.MODIFIED,
        Status.UNCHANGED,
        Status.REVOKED,
        Status.NEUTRALISED,
        Status.FROZEN,
        Status.UNFROZEN,
    }
    done = sum(result.status in good for result in results)
    if done == len(results):
        return ExitCode.OK
    if done:
        return ExitCode.PARTIAL
    failed = [result for result in results if result.status is Status.FAILED]
    codes = {exit_code_for(result.error) for result in failed if result.error is not None}
    if len(codes) == 1 and all(result.error is not None for result in failed):
        (code,) = codes
        if code in {ExitCode.UNAVAILABLE, ExitCode.CONFIG}:
            return code
    return ExitCode.FAILED


def _operator_line(reporter: Reporter) -> Callable[[str], None]:
    """Where apply tells the operator what it is doing: above the live display, or stderr."""

    def say(line: str) -> None:
        if reporter.mode is Mode.LIVE:
            reporter.console.print(Text(f"bitget-keys: {line}", style="yellow"))
        else:
            print(f"bitget-keys: {line}", file=sys.stderr, flush=True)

    return say


def _explain_stop(gate: DispatchGate, results: Sequence[ItemResult]) -> None:
    """After a stopped run: why, and which items need a look before anything else."""
    stopped = sum(result.status is Status.STOPPED for result in results)
    created = sum(result.status is Status.CREATED for result in results)
    print(
        f"bitget-keys: apply stopped ({gate.reason}): {created} item(s) created with their "
        f"secrets stored, {stopped} not sent; a re-run reads live state and creates only "
        "what is missing",
        file=sys.stderr,
    )
    attention = [r for r in results if r.status in {Status.UNKNOWN, Status.ORPHAN}]
    for result in attention:
        print(
            f"bitget-keys:   {format_line(result)}",
            file=sys.stderr,
        )
