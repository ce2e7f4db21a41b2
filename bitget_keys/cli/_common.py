"""What several commands share: the vault passphrase, opening a vault, locks, clients."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import shlex
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from bitget_keys._client import Client, ClientConfig, Scheduler, ServerClock
from bitget_keys._client.call_pacing import pacing
from bitget_keys._client.observe import RequestObserver
from bitget_keys._gate import DispatchGate, GateState
from bitget_keys.cli._vault_key import VAULT_KEY_FILE_ENV, key_from_sources
from bitget_keys.cli.exits import UsageError
from bitget_keys.errors import (
    AccountInTransitionError,
    APIError,
    ConfigurationError,
    DispatchStoppedError,
    TransportError,
    VaultMissingError,
)
from bitget_keys.provision.account_run import DECIDING
from bitget_keys.provision.apply import ItemResult, apply_plan
from bitget_keys.provision.diff import LiveState, diff_account
from bitget_keys.provision.files import refuse_directory
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.lock import FileLock, LockHolder, describe
from bitget_keys.provision.plan import AccountSpec, Plan, load_plan, loads_plan
from bitget_keys.provision.preview import copy_key_accounts, preview_of, read_account_state
from bitget_keys.provision.progress import Mode, Reporter, choose_mode
from bitget_keys.provision.vault import (
    VAULT_KEY_ENV,
    SecretsVault,
    VaultRecord,
    VaultScan,
)

#: Where ``apply --redis`` comes from when it is not given.
REDIS_URL_ENV = "BITGET_KEYS_REDIS_URL"


#: Where ``apply --egress`` comes from when it is not given.
EGRESS_ENV = "BITGET_KEYS_EGRESS"

#: The commands that show a live display on a terminal (``module`` of their ``run``).
LIVE_COMMANDS = frozenset({"apply", "demo"})


#: Where ``--vault`` (apply, vault) comes from when it is not given.
VAULT_PATH_ENV = "BITGET_KEYS_VAULT"


#: Where ``apply --state`` comes from when it is not given.
STATE_PATH_ENV = "BITGET_KEYS_STATE"


#: The PLAN argument that reads the plan from stdin.
STDIN_PLAN = "-"


def plan_from_stdin(path: Path) -> bool:
    return str(path) == STDIN_PLAN


def read_plan(path: Path) -> Plan:
    """The plan at ``path``, or (``-``) the plan read from stdin, named ``<stdin>``."""
    if plan_from_stdin(path):
        text = sys.stdin.read()
        if text.lstrip().startswith("{"):
            # A saved plan (JSON) is applied from its file, where it was written 0600.
            msg = "a saved plan is applied from its file (bitget-keys apply FILE), not from stdin"
            raise UsageError(msg)
        return loads_plan(text)
    return load_plan(path)


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def ask_secret(prompt: str) -> str:
    try:
        return getpass.getpass(prompt)
    except EOFError:
        return ""


def vault_passphrase(path: Path, *, new: bool, key_file: str | None = None) -> str:
    """
    The vault passphrase: from ``key_file`` (``--vault-key-file``; ``-`` is stdin),
    ``$BITGET_KEYS_VAULT_KEY`` or ``$BITGET_KEYS_VAULT_KEY_FILE``, else asked for on
    the terminal (see `key_from_sources`).

    A new vault's passphrase is asked for twice, and the two must match; it is checked
    for length before anything is created.
    """
    key = key_from_sources(key_file)
    if key:
        if new:
            SecretsVault.check_new_passphrase(key)
        return key
    if not stdin_is_terminal():
        msg = (
            f"no vault key: set {VAULT_KEY_ENV} to the vault passphrase (or "
            f"{VAULT_KEY_FILE_ENV} to a file holding it, or pass --vault-key-file), "
            "or run from a terminal to be asked for it"
        )
        raise ConfigurationError(msg)
    if not new:
        key = ask_secret(f"Passphrase of the vault {path}: ")
        if not key:
            msg = f"no vault passphrase given (or set {VAULT_KEY_ENV})"
            raise ConfigurationError(msg)
        return key
    return ask_new_passphrase(
        f"Passphrase for the new vault {path}",
        "The same passphrase again: ",
        "the two passphrases differ; no vault was created",
    )


def ask_new_passphrase(prompt: str, again: str, differ: str) -> str:
    """
    A new passphrase, asked twice on the terminal: at least 12 characters, both the same.

    Raises:
        ConfigurationError: it is too short, or the two answers differ (``differ`` says so).
    """
    key = ask_secret(f"{prompt} (12 characters or more): ")
    SecretsVault.check_new_passphrase(key)
    if key != ask_secret(again):
        raise ConfigurationError(differ)
    return key


def open_vault(path: Path, key_file: str | None = None) -> SecretsVault:
    """Open the existing vault at ``path`` (reading never creates one)."""
    refuse_directory(path, "vault")
    if not SecretsVault.exists(path):
        raise VaultMissingError(str(path), "no vault here (apply --create-vault creates one)")
    return SecretsVault.open(path, vault_passphrase(path, new=False, key_file=key_file))


def repair_hint(path: Path) -> str:
    return f"`bitget-keys vault repair --vault {shlex.quote(str(path))}`"


def intact_records(vault: SecretsVault) -> tuple[VaultRecord, ...]:
    """
    The vault's intact key records (not a rotation's passphrase placeholders); any
    damage is named on stderr, with how to repair it.
    """
    scan = vault.scan()
    warn_damage(vault.path, scan)
    return tuple(record for record in scan.records if record.is_key)


def warn_damage(path: Path, scan: VaultScan) -> None:
    if scan.clean:
        return
    print(
        f"bitget-keys: warning: vault {path} is damaged: {len(scan.damage)} damaged line(s); "
        f"using its {len(scan.entries)} intact record(s)",
        file=sys.stderr,
    )
    for damage in scan.damage:
        print(f"bitget-keys: warning:   {damage}", file=sys.stderr)
    print(
        f"bitget-keys: {repair_hint(path)} recovers every intact record into a repaired vault",
        file=sys.stderr,
    )


async def take_lock(lock: FileLock, *, wait: bool) -> None:
    """Take ``lock`` now, or (``wait``) once its holder lets go, saying so once."""
    if not wait:
        lock.acquire()
        return

    def waiting(holder: LockHolder | None) -> None:
        print(
            f"bitget-keys: waiting for {lock.path}, in use by {describe(holder)}",
            file=sys.stderr,
            flush=True,
        )

    await lock.acquire_waiting(on_wait=waiting)


@contextlib.asynccontextmanager
async def holding_run_locks(args: argparse.Namespace, command: str) -> AsyncIterator[None]:
    """
    The vault's and then the state file's lock, held for the block (``--wait-lock``
    waits for a holder to let go): one run per vault and state file, whichever command.
    """
    with contextlib.ExitStack() as held:
        for path in (args.vault, args.state):
            lock = FileLock(path, command=command)
            await take_lock(lock, wait=args.wait_lock)
            held.callback(lock.release)
        yield


#: Where a master's requests go: the scheduler that paces them, the proxy (if any), and
#: the observers of that way out (beside those every client has).
Route = Callable[[AccountSpec], tuple[Scheduler | None, str | None, Sequence[RequestObserver]]]


def make_clients(
    base_url: str | None,
    scheduler: Scheduler | None = None,
    gate: DispatchGate | None = None,
    observers: Sequence[RequestObserver] = (),
    *,
    route: Route | None = None,
) -> tuple[dict[str, Client], Any]:
    """
    One client per plan account, made on first use: paced by ``scheduler`` directly, or
    by the scheduler, through the proxy and watched by the observers ``route`` gives the
    account (and by ``observers``).
    """
    clients: dict[str, Client] = {}
    # Measured once for every master: Bitget's time endpoint allows 20/s per IP.
    server_clock = ServerClock()

    def client_for(account: AccountSpec) -> Client:
        if account.name not in clients:
            pacing, proxy, watching = route(account) if route else (scheduler, None, ())
            clients[account.name] = Client(
                account.credentials,
                base_url=base_url,
                config=ClientConfig(proxy=proxy),
                scheduler=pacing,
                server_clock=server_clock,
                gate=gate,
                observers=(*observers, *watching),
            )
        return clients[account.name]

    return clients, client_for


def output_mode(args: argparse.Namespace) -> Mode:
    """How a command shows its items: ``--json``, ``--plain`` (or ``NO_COLOR``), a terminal."""
    return choose_mode(
        json_lines=bool(getattr(args, "json", False)),
        plain=bool(getattr(args, "plain", False)),
        stream=sys.stdout,
    )


def live_console(args: argparse.Namespace) -> Console | None:
    """
    The console of the live display, when this command draws one: `bitget_keys.cli.main`
    sends log records through it (above the display) and the command's reporter draws on
    it, so the two never tear each other's lines.
    """
    if args.run.partition(":")[0] not in LIVE_COMMANDS or output_mode(args) is not Mode.LIVE:
        return None
    return Console(file=sys.stdout)


def reporter_for(args: argparse.Namespace, *, quiet: bool = False) -> Reporter:
    """The reporter a command shows its items with, on the console `main` made for it."""
    return Reporter(output_mode(args), quiet=quiet, console=getattr(args, "console", None))


async def read_first(
    plan: Plan,
    clients: Callable[[AccountSpec], Client],
    vault: SecretsVault | None,
    reporter: Reporter,
    already: Mapping[str, LiveState] | None = None,
) -> dict[str, LiveState]:
    """
    Read each account's live state once, concurrently, and tell ``reporter`` its planned
    work as it comes; apply then starts from these reads (``first_live``) instead of
    reading again. State ``already`` read is used as it is. An account that cannot be
    read is left out: apply reads it itself and reports why it failed.
    """
    copy_keys = copy_key_accounts(vault)
    read: dict[str, LiveState] = {}

    async def one(account: AccountSpec) -> None:
        live = (already or {}).get(account.name)
        if live is None:
            with pacing(priority=DECIDING):
                state = await read_account_state(clients(account), account)
            if isinstance(
                state.error,
                (APIError, TransportError, AccountInTransitionError, DispatchStoppedError),
            ):
                return
            if state.error is not None:
                raise state.error
            live = state.live
        read[account.name] = live
        copy_key = bool(account.copy_api_key) and account.name not in copy_keys
        reporter.expect_account(
            account.name, preview_of(diff_account(account, live), copy_key=copy_key).work
        )

    await asyncio.gather(*(one(account) for account in plan.accounts))
    return read


async def apply_with_progress(
    plan: Plan,
    *,
    clients: Callable[[AccountSpec], Client],
    reporter: Reporter,
    vault: SecretsVault | None = None,
    journal: Journal | None = None,
    ledger: Ledger | None = None,
    gate: DispatchGate | None = None,
    first_live: Mapping[str, LiveState] | None = None,
    prune: bool = False,
    audit_log: Path | None = None,
) -> list[ItemResult]:
    """
    Apply ``plan`` (see `apply_plan`), showing each result through ``reporter``.
    ``first_live`` is live state the caller read already (for apply's question).

    The live display shows planned totals: each account's live state is read first
    (`read_first`) and apply starts from that read, so the display costs no request.
    The other modes need no totals and leave the reading to apply. A run whose gate
    was closed (a signal, a failure that stops sending) ends shown as interrupted.
    """
    ledger = Ledger.of(ledger, vault, journal)
    with reporter:
        if reporter.mode is Mode.LIVE:
            reporter.expect(dict.fromkeys((account.name for account in plan.accounts), None))
            first_live = await read_first(plan, clients, ledger.vault, reporter, first_live)
        results = await apply_plan(
            plan,
            clients=clients,
            ledger=ledger,
            gate=gate,
            on_result=reporter.on_result,
            first_live=first_live,
            prune=prune,
            audit_log=audit_log,
        )
        if gate is not None and gate.state is not GateState.OPEN:
            reporter.interrupt(gate.reason or "stopped")
        return results
