"""
The ``bitget-keys`` command line.

``main(argv)`` parses arguments and runs the chosen command with `asyncio.run`; it is
the only place this package starts an event loop or configures logging.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import getpass
import io
import json
import logging
import os
import shlex
import signal
import sys
import threading
import tomllib
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import attrs
from rich.text import Text

from bitget_keys._applier import ItemResult, Status, read_live_state
from bitget_keys._client import Client, ClientConfig, Scheduler, ServerClock
from bitget_keys._demo import DemoSize, run_demo
from bitget_keys._escape import escape
from bitget_keys._files import loose_permissions, refuse_directory
from bitget_keys._gate import DispatchGate, GateState
from bitget_keys._interrupt import DRAIN_SECONDS, GracefulStop
from bitget_keys._journal import Journal
from bitget_keys._ledger import Ledger, SecretsNotStoredError, rescue
from bitget_keys._lock import FileLock, LockHolder, describe
from bitget_keys._plan import MAX_KEYS, MAX_SUBACCOUNTS, AccountSpec, Plan, load_plan
from bitget_keys._planner import diff_account
from bitget_keys._progress import Mode, Reporter, apply_with_progress, choose_mode, format_line
from bitget_keys._secret import Secret
from bitget_keys._vault import (
    VAULT_KEY_ENV,
    SecretsVault,
    VaultRecord,
    VaultScan,
    write_private_file,
)
from bitget_keys.errors import (
    BitgetKeysError,
    ConfigurationError,
    PlanError,
    VaultDamagedError,
    VaultError,
)
from bitget_keys.redis_limits import RedisRateLimitScheduler
from bitget_keys.testing import Emulator, EmulatorAccount, Limits

__all__ = ["main"]

#: Where ``apply --redis`` comes from when it is not given.
REDIS_URL_ENV = "BITGET_KEYS_REDIS_URL"
#: Where ``apply --egress`` comes from when it is not given.
EGRESS_ENV = "BITGET_KEYS_EGRESS"

EMULATOR_HELP = """\
Serve the bundled Bitget emulator on loopback until interrupted.

The accounts file (TOML) lists master accounts:

    [[accounts]]
    uid = "1000000001"
    api_key = "bg_example"
    secret_key = "example-secret"
    passphrase = "ExamplePass1"
    broker = false          # ND broker: may use the broker endpoints
    copy_trader = "new"     # "new", "old", or leave out for a non-trader
    unified = false         # unified-account masters get 40085
    ip_list = []            # the key's whitelist; callers from elsewhere get 40038

    [[accounts.broker_subaccounts]]   # optional, for broker accounts
    sub_uid = "5550001"
    api_key = "bg_sub_key"
    passphrase = "SubKeyPass1"
    permissions = ["spot_trade"]
    perm_type = "readonly"

Without a file, --generate accounts are made up; --print-credentials shows them.
"""


_ACCOUNT_KEYS = frozenset(
    {
        "uid",
        "api_key",
        "secret_key",
        "passphrase",
        "broker",
        "copy_trader",
        "unified",
        "ip_list",
        "broker_subaccounts",
    }
)
_BROKER_SUBACCOUNT_KEYS = frozenset(
    {
        "sub_uid",
        "api_key",
        "secret_key",
        "passphrase",
        "label",
        "permissions",
        "ip_list",
        "perm_type",
    }
)
# What each setting of the accounts file must be; the rest of a row is checked by
# `EmulatorAccount` itself. A UID may be written as a TOML integer too.
_ACCOUNT_TYPES: dict[str, tuple[type, ...]] = {
    "uid": (str, int),
    "api_key": (str,),
    "secret_key": (str,),
    "passphrase": (str,),
    "broker": (bool,),
    "copy_trader": (str,),
    "unified": (bool,),
    "ip_list": (list,),
    "broker_subaccounts": (list,),
    "sub_uid": (str, int),
    "label": (str,),
    "permissions": (list,),
    "perm_type": (str,),
}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}
_REQUIRED_ACCOUNT_KEYS = ("uid", "api_key", "secret_key", "passphrase")
_REQUIRED_BROKER_KEYS = ("sub_uid", "api_key", "passphrase")


def _check_row(
    path: Path, where: str, row: object, known: frozenset[str], required: tuple[str, ...]
) -> dict[str, Any]:
    """One table of the accounts file, with known keys of the right types."""
    if not isinstance(row, dict):
        msg = f"{path}: {where} must be a table"
        raise ConfigurationError(msg)
    unknown = sorted(set(row) - known)
    if unknown:
        msg = f"{path}: {where} has unknown keys: {', '.join(unknown)}"
        raise ConfigurationError(msg)
    missing = [key for key in required if key not in row]
    if missing:
        msg = f"{path}: {where} lacks {', '.join(missing)}"
        raise ConfigurationError(msg)
    for key, value in row.items():
        types = _ACCOUNT_TYPES[key]
        # bool is an int to Python, never a UID.
        wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        if wrong:
            allowed = " or ".join(_TYPE_NAMES[kind] for kind in types)
            msg = f"{path}: {where}.{key} must be {allowed}, not {type(value).__name__}"
            raise ConfigurationError(msg)
        if key in {"ip_list", "permissions"} and not all(isinstance(v, str) for v in value):
            msg = f"{path}: {where}.{key} must be a list of strings"
            raise ConfigurationError(msg)
    return row


def _load_accounts(path: Path) -> tuple[list[EmulatorAccount], dict[str, list[dict[str, Any]]]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        msg = f"{path}: cannot read the accounts file ({exc})"
        raise ConfigurationError(msg) from exc
    except UnicodeDecodeError as exc:
        msg = f"{path}: cannot read the accounts file (not UTF-8 text: byte {exc.start})"
        raise ConfigurationError(msg) from exc
    rows = data.get("accounts", [])
    if not isinstance(rows, list):
        msg = f"{path}: accounts must be an array of tables ([[accounts]])"
        raise ConfigurationError(msg)
    accounts, seeds = [], {}
    for index, entry in enumerate(rows):
        where = f"accounts[{index}]"
        row = _check_row(path, where, entry, _ACCOUNT_KEYS, _REQUIRED_ACCOUNT_KEYS)
        subs = row.get("broker_subaccounts", [])
        seeds[str(row["uid"])] = [
            _check_row(
                path,
                f"{where}.broker_subaccounts[{sub_index}]",
                sub,
                _BROKER_SUBACCOUNT_KEYS,
                _REQUIRED_BROKER_KEYS,
            )
            for sub_index, sub in enumerate(subs)
        ]
        try:
            accounts.append(
                EmulatorAccount(
                    uid=str(row["uid"]),
                    api_key=row["api_key"],
                    secret_key=row["secret_key"],
                    passphrase=row["passphrase"],
                    broker=row.get("broker", False),
                    copy_trader=row.get("copy_trader"),
                    unified=row.get("unified", False),
                    ip_list=row.get("ip_list", ()),
                )
            )
        except (TypeError, ValueError) as exc:
            msg = f"{path}: {where}: {exc}"
            raise ConfigurationError(msg) from exc
    if not accounts:
        msg = f"{path}: no [[accounts]]"
        raise ConfigurationError(msg)
    return accounts, seeds


async def run_emulator(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM."""
    accounts, seeds = _load_accounts(args.accounts) if args.accounts else (None, {})
    limits = Limits(ip_limit=None if args.no_ip_limit else 6000)
    emulator = Emulator(
        accounts,
        generate=args.generate,
        host=args.host,
        port=args.port,
        seed=args.seed,
        limits=limits,
    )
    for uid, rows in seeds.items():
        for row in rows:
            emulator.exchange.add_broker_subaccount(uid, str(row["sub_uid"]), row)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with emulator:
        print(emulator.base_url, flush=True)
        if args.print_credentials:
            for account in emulator.accounts:
                # From the accounts file: escaped, one line per account whatever it holds.
                line = (
                    f"uid={account.uid} api_key={account.api_key} "
                    f"secret_key={account.secret_key.reveal()} "
                    f"passphrase={account.passphrase.reveal()}"
                )
                print(escape(line), flush=True)
        await stop.wait()
    return 0


VAULT_KEY_HELP = f"""\
The vault passphrase comes from ${VAULT_KEY_ENV}; when that is unset and
stdin is a terminal, it is asked for (twice for a new vault); otherwise the command
stops. A new vault's passphrase needs 12 characters or more.
"""

APPLY_HELP = f"""\
Create what the plan says is missing, and store every new key's secret and passphrase
in the encrypted vault (--vault) the moment Bitget answers.

Without --yes, apply first shows what it would create or change (as `plan` does) and
asks before creating or changing anything; answer y to go on. When stdin is not a terminal, or with
--json, there is no one to ask: apply then refuses to start unless --yes is given
(review with `bitget-keys plan` first).

Several apply processes, on one host or many, can split a plan: run it with
--shard 1/N, ..., --shard N/N (each with its own --vault and --state), and give
them all the same --redis URL so that they share Bitget's per-UID limits. Without
--redis each process keeps its own limits, which is exact only while no two processes
use the same master account. When Redis is unreachable, nothing is sent. Processes
behind one public IP share its budget (6,000 requests a minute); on hosts behind
different public IPs, give each IP its own --egress name, so that each host gets its
own budget instead of sharing one.

{VAULT_KEY_HELP}
Apply holds a lock on the vault and on the state file (VAULT.lock, STATE.lock) for the
whole run: a second apply on either fails at once naming the run that holds it, or
waits for it with --wait-lock. A damaged vault is refused (repair it first with
`bitget-keys vault repair`); a version-1 vault is upgraded to version 2 first. A vault
or state file that others can read or write is used with a warning, or refused with
--strict.

Exit status: 0 all items done, 1 some failed (or apply was declined), 2 bad input.
"""

VAULT_HELP = f"""\
Read, check and repair the encrypted secrets vault that apply writes.

A damaged vault (a torn last line after a crash, an altered byte, a removed or repeated
line) still opens: list, show and export --skip-damaged read its intact records and say
which lines are damaged; `vault check` reports them, and `vault repair` recovers every
intact record into a repaired vault, keeping the damaged file beside it.

{VAULT_KEY_HELP}"""

VAULT_CHECK_HELP = f"""\
Read every line of the vault and report each damaged one with what is wrong with it:
torn, altered or from another vault, missing, repeated or out of order, or a damaged
header (read from its copy). Prints nothing secret.

Exit status: 0 intact, 1 damaged (repair with `bitget-keys vault repair`), 2 the vault
cannot be opened (no vault, wrong key).

{VAULT_KEY_HELP}"""

VAULT_REPAIR_HELP = f"""\
Recover every intact record of a damaged vault into a repaired vault, with the same
passphrase. The repaired vault is written whole and then takes the vault's name; the
damaged original is kept beside it as VAULT.damaged-<UTC time>, never deleted. With
--output PATH the repaired vault is written there instead (a new file) and the vault
is left as it is. An intact vault is left alone.

Repair takes the vault's lock, so it fails at once (or waits, with --wait-lock) while
an apply is using the vault.

{VAULT_KEY_HELP}"""

VAULT_SHOW_HELP = f"""\
Show the vault record of one key. Secrets are printed as ******** unless --reveal.

LABEL is what `bitget-keys vault list` shows in its third column: SUBACCOUNT/KEY (the
Bitget sub-account name and the key's label) for a sub-account key, or just the label
for other keys (a copy key is "copy"). The plan's names work too: SUB-LABEL/KEY, as
apply's output shows the key (e.g. alpha/trade). So does an API key. Exactly one record must
match: exit status 1 when none does, 2 when several do (narrow with --account, the
plan's account name, or give the API key).

{VAULT_KEY_HELP}"""

VAULT_EXPORT_HELP = f"""\
Write every record of the vault, with its secret key and passphrase in clear.

With --output FILE the export goes to a new file created with mode 0600, written whole
and fsynced before it appears; an existing FILE is kept unless --force (the replacement
is 0600 too). Without --output, the secrets go to stdout, and only with --reveal.

A damaged vault is refused unless --skip-damaged, which exports its intact records and
names the damaged lines on stderr (or repair it first: `bitget-keys vault repair`).

--format json (the default) is one array of objects; csv has a header row, and
permissions and IP whitelists as space-separated lists.

{VAULT_KEY_HELP}"""


def _stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _ask_secret(prompt: str) -> str:
    try:
        return getpass.getpass(prompt)
    except EOFError:
        return ""


def _vault_key(path: Path, *, new: bool) -> str:
    """
    The vault passphrase: ``$BITGET_KEYS_VAULT_KEY``, else asked for on the terminal.

    A new vault's passphrase is asked for twice, and the two must match; it is checked
    for length before anything is created.
    """
    key = os.environ.get(VAULT_KEY_ENV)
    if key:
        if new:
            SecretsVault.check_new_passphrase(key)
        return key
    if not _stdin_is_terminal():
        msg = (
            f"no vault key: set {VAULT_KEY_ENV} to the vault passphrase, "
            "or run from a terminal to be asked for it"
        )
        raise ConfigurationError(msg)
    if not new:
        key = _ask_secret(f"Passphrase of the vault {path}: ")
        if not key:
            msg = f"no vault passphrase given (or set {VAULT_KEY_ENV})"
            raise ConfigurationError(msg)
        return key
    key = _ask_secret(f"Passphrase for the new vault {path} (12 characters or more): ")
    SecretsVault.check_new_passphrase(key)
    if key != _ask_secret("The same passphrase again: "):
        msg = "the two passphrases differ; no vault was created"
        raise ConfigurationError(msg)
    return key


def _open_vault(path: Path) -> SecretsVault:
    """Open the existing vault at ``path`` (reading never creates one)."""
    refuse_directory(path, "vault")
    if not SecretsVault.exists(path):
        raise VaultError(str(path), "no vault here (apply creates one)")
    return SecretsVault.open(path, _vault_key(path, new=False))


def _repair_hint(path: Path) -> str:
    return f"`bitget-keys vault repair --vault {shlex.quote(str(path))}`"


def _intact_records(vault: SecretsVault) -> tuple[VaultRecord, ...]:
    """The vault's intact records; any damage is named on stderr, with how to repair it."""
    scan = vault.scan()
    _warn_damage(vault.path, scan)
    return scan.records


def _warn_damage(path: Path, scan: VaultScan) -> None:
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
        f"bitget-keys: {_repair_hint(path)} recovers every intact record into a repaired vault",
        file=sys.stderr,
    )


def _open_vault_for_apply(path: Path, key: str) -> SecretsVault:
    """The existing vault apply appends to: never a damaged one; version 1 is upgraded."""
    vault = SecretsVault.open(path, key)
    try:
        vault.require_intact()
    except VaultDamagedError as exc:
        detail = (
            f"{exc.detail}; apply never appends to a damaged vault: run {_repair_hint(path)} first"
        )
        raise VaultDamagedError(str(path), detail) from exc
    if vault.upgrade():
        print(f"bitget-keys: upgraded the vault {path} to format version 2", file=sys.stderr)
    return vault


def _refuse_loose(path: Path, what: str) -> None:
    """``--strict``: refuse a vault or state file that others may read or write."""
    problem = loose_permissions(path, what)
    if problem is not None:
        msg = f"--strict: refusing to use it: {problem}"
        raise ConfigurationError(msg)


async def _take_lock(lock: FileLock, *, wait: bool) -> None:
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


def _clients(
    base_url: str | None, scheduler: Scheduler | None = None, gate: DispatchGate | None = None
) -> tuple[dict[str, Client], Any]:
    clients: dict[str, Client] = {}
    # Measured once for every master: Bitget's time endpoint allows 20/s per IP.
    server_clock = ServerClock()

    def client_for(account: AccountSpec) -> Client:
        if account.name not in clients:
            clients[account.name] = Client(
                account.credentials,
                base_url=base_url,
                config=ClientConfig(),
                scheduler=scheduler,
                server_clock=server_clock,
                gate=gate,
            )
        return clients[account.name]

    return clients, client_for


def _shard(text: str) -> tuple[int, int]:
    """``I/N`` with 1 <= I <= N, for ``apply --shard``."""
    index, slash, count = text.partition("/")
    if not slash or not index.isdigit() or not count.isdigit():
        msg = f"expected I/N such as 1/4 (got {text!r})"
        raise argparse.ArgumentTypeError(msg)
    i, n = int(index), int(count)
    if not 1 <= i <= n:
        msg = f"I must be between 1 and N in I/N (got {text!r})"
        raise argparse.ArgumentTypeError(msg)
    return i, n


def shard_plan(plan: Plan, index: int, count: int) -> Plan:
    """The accounts of shard ``index`` of ``count`` (1-based): position % count == index - 1."""
    return attrs.evolve(
        plan, accounts=tuple(a for k, a in enumerate(plan.accounts) if k % count == index - 1)
    )


def _redis_scheduler(args: argparse.Namespace) -> RedisRateLimitScheduler | None:
    """One scheduler sharing limits through Redis for every client of this apply, if asked."""
    if not args.redis:
        if args.egress is not None:
            msg = "--egress names an IP budget shared through Redis: give --redis as well"
            raise ConfigurationError(msg)
        return None
    egress = args.egress or os.environ.get(EGRESS_ENV) or "default"
    return RedisRateLimitScheduler(args.redis, egress=egress)


async def _show_changes(
    plan: Plan, client_for: Any, vaulted_copy_keys: Collection[str] | None = None
) -> bool:
    """
    Print what apply would create or change; return whether there is anything.

    Given the accounts whose copy keys are in the vault, a planned copy key not among
    them is shown too (apply would create it).
    """
    changes = False
    for account in plan.accounts:
        live = await read_live_state(client_for(account), account)
        diff = diff_account(account, live)
        lines = [
            f"create sub-account {sub.label} ({sub.name}), {len(sub.keys)} key(s)"
            for sub in diff.new_subaccounts
        ]
        lines += [
            f"create key {missing.subaccount.label}/{missing.key.label}"
            for missing in diff.new_keys
        ]
        lines += [
            f"modify broker key {spec.sub_uid}/{spec.api_key}" for spec in diff.broker_changes
        ]
        copy_key = (
            vaulted_copy_keys is not None
            and account.copy_api_key
            and account.name not in vaulted_copy_keys
        )
        if copy_key:
            lines.append("create copy key")
        lines += [f"conflict: {conflict}" for conflict in diff.conflicts]
        if diff.empty and not diff.conflicts and not copy_key:
            lines.append("up to date")
        for line in lines:
            # Names and labels come from the plan, conflicts quote Bitget: escaped, so
            # that none can forge a line of this preview.
            print(escape(f"{account.name}: {line}"))
        changes = changes or not diff.empty or copy_key
    return changes


async def run_plan(args: argparse.Namespace) -> int:
    """Print what apply would create or change; send nothing that changes anything."""
    plan = load_plan(args.plan)
    clients, client_for = _clients(args.base_url)
    try:
        await _show_changes(plan, client_for)
    finally:
        for client in clients.values():
            await client.aclose()
    return 0


async def _confirm_changes(plan: Plan, client_for: Any, vault: SecretsVault | None) -> bool:
    """Show what apply would do and ask for a yes; nothing to do needs no yes."""
    copy_keys = (
        set() if vault is None else {r.account for r in vault.records() if r.kind == "copy_key"}
    )
    if not await _show_changes(plan, client_for, copy_keys):
        return True
    print("Create and change the above? [y/N] ", end="", file=sys.stderr, flush=True)
    # The event loop's own SIGINT handling only cancels its main task, which a blocking
    # read of the terminal never notices: while asking, Ctrl-C interrupts the read.
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread handles signals (a program running the command line in
        # a thread keeps its own).
        return sys.stdin.readline().strip().lower() in {"y", "yes"}
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        answer = sys.stdin.readline()
    finally:
        signal.signal(signal.SIGINT, previous)
    return answer.strip().lower() in {"y", "yes"}


async def run_locked_apply(args: argparse.Namespace) -> int:
    """
    `run_apply`, holding the vault's and the state file's locks for the whole run.

    Both are taken (vault first, in every process) before anything is read, sent or
    created, so a second apply on the same vault or state fails at once naming the run
    that holds it, or waits for it with ``--wait-lock``; a new vault is created under
    its lock.
    """
    for path, what in ((args.vault, "vault"), (args.state, "state file")):
        refuse_directory(path, what)
        if args.strict:
            _refuse_loose(path, what)
    command = f"bitget-keys apply {args.plan}"
    with contextlib.ExitStack() as held:
        for path in (args.vault, args.state):
            lock = FileLock(path, command=command)
            await _take_lock(lock, wait=args.wait_lock)
            held.callback(lock.release)
        return await run_apply(args)


def _plan_to_apply(args: argparse.Namespace) -> Plan:
    """The plan (or shard) apply runs, once it is known that apply may run unattended."""
    plan = load_plan(args.plan)
    if args.shard is not None:
        plan = shard_plan(plan, *args.shard)
    if not args.yes and (args.json or not _stdin_is_terminal()):
        why = "with --json" if args.json else "when stdin is not a terminal"
        msg = (
            f"apply asks for confirmation, which it cannot do {why}: review the changes "
            "with `bitget-keys plan`, then run apply with --yes"
        )
        raise ConfigurationError(msg)
    return plan


async def run_apply(args: argparse.Namespace) -> int:
    """
    Make live state match the plan: a live display on a terminal, else one line (or JSON
    object) per item.
    """
    plan = _plan_to_apply(args)
    new_vault = not SecretsVault.exists(args.vault)
    vault_key = _vault_key(args.vault, new=new_vault)
    # An existing vault is opened now, so a wrong key stops apply before anything is
    # sent; a new one is made only once the changes are confirmed.
    vault = None if new_vault else _open_vault_for_apply(args.vault, vault_key)
    scheduler = _redis_scheduler(args)
    gate = DispatchGate()
    clients, client_for = _clients(args.base_url, scheduler, gate)
    reporter = Reporter(choose_mode(json_lines=args.json, stream=sys.stdout))
    stop = GracefulStop(gate, _operator_line(reporter), drain=args.drain_timeout)
    try:
        try:
            if not args.yes and not await _confirm_changes(plan, client_for, vault):
                print(
                    "bitget-keys: apply cancelled; nothing was created or changed",
                    file=sys.stderr,
                )
                return 1
        except KeyboardInterrupt:
            print("\nbitget-keys: apply cancelled; nothing was created or changed", file=sys.stderr)
            return 130
        if vault is None:
            vault = SecretsVault.open(args.vault, vault_key)
        with Journal(args.state) as journal, stop:
            ledger = Ledger(vault, journal)
            try:
                results = await apply_with_progress(
                    plan, clients=client_for, ledger=ledger, gate=gate, reporter=reporter
                )
            except SecretsNotStoredError as exc:
                if reporter.mode is Mode.LIVE:
                    reporter.console.print(Text(reporter.summary()))
                return _rescue(exc, Secret(vault_key), args.rescue_dir)
    finally:
        for client in clients.values():
            await client.aclose()
        if scheduler is not None:
            await scheduler.aclose()
    if reporter.mode is Mode.LIVE:
        reporter.console.print(Text(reporter.summary()))
    return _apply_exit(gate, stop, results)


def _apply_exit(gate: DispatchGate, stop: GracefulStop, results: Sequence[ItemResult]) -> int:
    """Explain a stopped run; the exit status (128 + signal after a signal)."""
    if gate.state is not GateState.OPEN:
        _explain_stop(gate, results)
    if stop.exit_code is not None:
        return stop.exit_code
    good = {Status.CREATED, Status.MODIFIED, Status.UNCHANGED}
    return 0 if all(result.status in good for result in results) else 1


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
            f"bitget-keys:   {result.status.value}: {format_line(result)}",
            file=sys.stderr,
        )


def _rescue(exc: SecretsNotStoredError, passphrase: Secret, rescue_dir: Path | None) -> int:
    """
    Save secrets the vault could not take into an emergency vault elsewhere.

    Tried in order: ``--rescue-dir``, a path asked for on a terminal, the home
    directory. Each is a new vault file under the same passphrase.
    """
    count = len(exc.records)
    print(
        f"bitget-keys: the vault could not be written ({exc.cause}); {count} created key(s) "
        "have their secrets only in memory. Saving them to an emergency vault (encrypted "
        "with the vault passphrase).",
        file=sys.stderr,
    )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"bitget-keys-rescue-{stamp}.vault"
    places: list[Path] = []
    if rescue_dir is not None:
        places.append(rescue_dir / name)
    if _stdin_is_terminal():
        with contextlib.suppress(EOFError, KeyboardInterrupt):
            answer = input(f"Directory for the emergency vault [{Path.home()}]: ").strip()
            places.append(Path(answer or Path.home()).expanduser() / name)
    places.append(Path.home() / name)
    for place in places:
        try:
            rescue(exc.records, place, passphrase)
        except (VaultError, OSError) as error:
            print(f"bitget-keys: could not write {place}: {error}", file=sys.stderr)
            continue
        print(
            f"bitget-keys: saved {count} secret(s) to {place}; read them with "
            f"`bitget-keys vault export --vault {place} --output FILE`. Free space for "
            "the vault before the next apply: it reports these keys as orphans until "
            "their records are in it.",
            file=sys.stderr,
        )
        return 1
    keys = ", ".join(record.api_key for record in exc.records)
    print(
        f"bitget-keys: NO COPY of {count} secret(s) could be written anywhere; these keys "
        f"exist on Bitget without a stored secret: {keys}. Disable or delete them in "
        "Bitget's web UI, or free disk space and pass --rescue-dir next time.",
        file=sys.stderr,
    )
    return 3


async def run_vault_list(args: argparse.Namespace) -> int:
    """List the vault's keys, without their secrets."""
    vault = _open_vault(args.vault)
    for record in _intact_records(vault):
        fields = (record.account, record.kind, record.qualified_label, record.api_key)
        print("\t".join(escape(field) for field in fields))
    return 0


async def run_vault_show(args: argparse.Namespace) -> int:
    """Show one key's record; its secrets only with ``--reveal``."""
    vault = _open_vault(args.vault)
    found = [
        record
        for record in _intact_records(vault)
        if args.label in {record.qualified_label, record.plan_label, record.api_key}
        and args.account in {None, record.account}
    ]
    where = f"in account {args.account!r} of" if args.account else "in"
    if not found:
        print(
            f"bitget-keys: no key {args.label!r} {where} vault {args.vault} (LABEL is "
            "SUBACCOUNT/KEY, or the label of a key without a sub-account, as `vault list` "
            "shows it, or an API key)",
            file=sys.stderr,
        )
        return 1
    if len(found) > 1:
        matches = escape(", ".join(f"{r.account} {r.qualified_label} {r.api_key}" for r in found))
        print(
            f"bitget-keys: {args.label!r} matches {len(found)} keys {where} vault "
            f"{args.vault} ({matches}); give the API key, or --account",
            file=sys.stderr,
        )
        return 2
    data = found[0].to_dict(reveal=args.reveal)
    if args.json:
        print(json.dumps(data))
    else:
        width = max(len(name) for name in data) + 2
        for name, value in data.items():
            text = ", ".join(value) if isinstance(value, list) else value
            print(f"{name + ':':<{width}}{'-' if text in {None, ''} else escape(str(text))}")
    return 0


_EXPORT_FIELDS = tuple(field.name for field in attrs.fields(VaultRecord))


def _export_text(records: list[VaultRecord], form: str) -> str:
    rows = [record.to_dict(reveal=True) for record in records]
    if form == "json":
        return json.dumps(rows, indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: " ".join(v) if isinstance(v, list) else v for k, v in row.items()})
    return out.getvalue()


async def run_vault_export(args: argparse.Namespace) -> int:
    """Write every record, secrets in clear, to a new 0600 file (or stdout with --reveal)."""
    output = None if args.output in {None, Path("-")} else args.output
    if output is None and not args.reveal:
        msg = (
            "export writes every secret in clear: give --output FILE (created with mode "
            "0600), or --reveal to print them to stdout"
        )
        raise ConfigurationError(msg)
    if output is not None:
        # Checked before any secret is decrypted.
        if output.is_dir():
            msg = f"--output {output} is a directory; name the file to write"
            raise ConfigurationError(msg)
        if not output.parent.is_dir():
            msg = f"--output {output}: the directory {output.parent} does not exist"
            raise ConfigurationError(msg)
    if output is not None and not args.force and output.exists():
        msg = f"{output} exists; pass --force to replace it"
        raise ConfigurationError(msg)
    vault = _open_vault(args.vault)
    scan = vault.scan()
    if not scan.clean and not args.skip_damaged:
        lines = "; ".join(str(damage) for damage in scan.damage)
        detail = (
            f"damaged: {lines}; export leaves nothing out unless asked: pass --skip-damaged "
            f"to export its {len(scan.entries)} intact record(s), or run {_repair_hint(args.vault)}"
        )
        raise VaultDamagedError(str(args.vault), detail)
    _warn_damage(args.vault, scan)
    records = list(scan.records)
    text = _export_text(records, args.format)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        write_private_file(output, text.encode(), overwrite=args.force)
    except FileExistsError as exc:
        msg = f"{output} exists; pass --force to replace it"
        raise ConfigurationError(msg) from exc
    except OSError as exc:
        msg = f"{output}: cannot write ({exc.strerror})"
        raise ConfigurationError(msg) from exc
    print(f"exported {len(records)} key(s), secrets in clear, to {output}", file=sys.stderr)
    return 0


async def run_vault_check(args: argparse.Namespace) -> int:
    """Report each damaged line of the vault; exit 1 when there is any."""
    try:
        vault = _open_vault(args.vault)
    except VaultDamagedError as exc:
        print(f"{args.vault}: {exc.detail}")
        print(f"{args.vault}: damaged; no record can be recovered without its header")
        return 1
    scan = vault.scan()
    for damage in scan.damage:
        print(f"{args.vault}: {damage}")
    version = "" if vault.version == 2 else " (format version 1: apply or repair upgrades it)"
    if scan.clean:
        print(f"{args.vault}: intact, {len(scan.entries)} record(s){version}")
        return 0
    print(
        f"{args.vault}: damaged: {len(scan.damage)} damaged line(s), {len(scan.entries)} "
        f"intact record(s){version}; {_repair_hint(args.vault)} recovers every intact record"
    )
    return 1


async def run_vault_repair(args: argparse.Namespace) -> int:
    """Recover every intact record into a repaired vault, keeping the damaged original."""
    refuse_directory(args.vault, "vault")
    if not SecretsVault.exists(args.vault):
        raise VaultError(str(args.vault), "no vault here")
    if args.output is not None and (args.output.exists() or args.output.is_symlink()):
        msg = f"--output {args.output} exists; name a new file for the repaired vault"
        raise ConfigurationError(msg)
    lock = FileLock(args.vault, command="bitget-keys vault repair")
    await _take_lock(lock, wait=args.wait_lock)
    try:
        vault = _open_vault(args.vault)
        repair = vault.repair(args.output)
    finally:
        lock.release()
    for damage in repair.damage:
        print(f"{args.vault}: {damage}", file=sys.stderr)
    if repair.written is None:
        print(f"{args.vault}: intact, {repair.recovered} record(s); nothing to repair")
    elif repair.kept is not None:
        print(
            f"{args.vault}: repaired: {repair.recovered} intact record(s) kept; the damaged "
            f"original is kept as {repair.kept}"
        )
    else:
        print(f"{args.vault}: {repair.recovered} intact record(s) written to {repair.written}")
    return 0


async def run_demo_command(args: argparse.Namespace) -> int:
    """Provision against the bundled emulator and summarise; see `bitget_keys._demo`."""
    size = DemoSize(accounts=args.accounts, subaccounts=args.subaccounts, keys=args.keys)
    mode = choose_mode(json_lines=args.json, stream=sys.stdout)
    return await run_demo(size, mode=mode, workdir=args.workdir)


def _at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f"{low} or more"
            msg = f"must be {bounds} (got {value})"
            raise argparse.ArgumentTypeError(msg)
        return value

    return parse


def _add_demo(commands: Any) -> None:
    """The ``demo`` command's arguments."""
    demo = commands.add_parser(
        "demo",
        help="provision sub-accounts and keys at scale against the bundled emulator",
        description=(
            "Serve the bundled emulator (Bitget's rate limits and quotas) in process, write "
            "an example plan, apply it with the progress display, apply it again to show "
            "that nothing is left to do, and summarise what the emulator saw. Needs no "
            "Bitget account; everything is written to --workdir."
        ),
    )
    demo.add_argument("--accounts", type=_at_least(1), default=5, help="master accounts (5)")
    demo.add_argument(
        "--subaccounts", type=_at_least(1, MAX_SUBACCOUNTS), default=20, help="per master (20)"
    )
    demo.add_argument("--keys", type=_at_least(1, MAX_KEYS), default=2, help="per sub-account (2)")
    demo.add_argument("--workdir", type=Path, help="where to write (default: a new temp dir)")
    demo.add_argument("--json", action="store_true", help="JSON lines: items, then a summary")
    demo.set_defaults(run=run_demo_command)


def _add_vault(commands: Any) -> None:
    """The ``vault`` commands and their arguments."""
    vault = commands.add_parser(
        "vault",
        help="read the secrets vault",
        description=VAULT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    vault_commands = vault.add_subparsers(dest="vault_command", required=True)
    vault_list = vault_commands.add_parser("list", help="list stored keys (no secrets)")
    vault_list.add_argument("--vault", type=Path, default=Path("bitget-keys.vault"))
    vault_list.set_defaults(run=run_vault_list)
    show = vault_commands.add_parser(
        "show",
        help="show one key (secrets masked unless --reveal)",
        description=VAULT_SHOW_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("label", metavar="LABEL", help="SUBACCOUNT/KEY, a key's label, or API key")
    show.add_argument("--vault", type=Path, default=Path("bitget-keys.vault"))
    show.add_argument("--account", help="only keys of this plan account")
    show.add_argument("--reveal", action="store_true", help="print the secret and passphrase")
    show.add_argument("--json", action="store_true", help="one JSON object (masked alike)")
    show.set_defaults(run=run_vault_show)
    export = vault_commands.add_parser(
        "export",
        help="write every key with its secrets, to a new 0600 file",
        description=VAULT_EXPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--vault", type=Path, default=Path("bitget-keys.vault"))
    export.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="new file to write (mode 0600)"
    )
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("--force", action="store_true", help="replace an existing --output")
    export.add_argument(
        "--reveal", action="store_true", help="without --output: print the secrets to stdout"
    )
    export.add_argument(
        "--skip-damaged",
        action="store_true",
        help="export the intact records of a damaged vault (the damaged lines are named)",
    )
    export.set_defaults(run=run_vault_export)
    check = vault_commands.add_parser(
        "check",
        help="report damaged records by line (exit 1 when any)",
        description=VAULT_CHECK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--vault", type=Path, default=Path("bitget-keys.vault"))
    check.set_defaults(run=run_vault_check)
    repair = vault_commands.add_parser(
        "repair",
        help="recover every intact record into a repaired vault",
        description=VAULT_REPAIR_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    repair.add_argument("--vault", type=Path, default=Path("bitget-keys.vault"))
    repair.add_argument(
        "--output", "-o", type=Path, metavar="PATH", help="write the repaired vault here instead"
    )
    repair.add_argument(
        "--wait-lock", action="store_true", help="wait while another run holds the vault's lock"
    )
    repair.set_defaults(run=run_vault_repair)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="bitget-keys", description="Create and manage Bitget API keys at scale."
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    commands = parser.add_subparsers(dest="command", required=True)
    emulator = commands.add_parser(
        "emulator",
        help="serve the bundled Bitget emulator",
        description=EMULATOR_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=0, help="0 picks a free port")
    emulator.add_argument("--accounts", type=Path, help="TOML file of accounts")
    emulator.add_argument("--generate", type=int, default=3, help="accounts to make up")
    emulator.add_argument("--seed", type=int, default=0)
    emulator.add_argument("--no-ip-limit", action="store_true", help="no per-IP limit")
    emulator.add_argument(
        "--print-credentials", action="store_true", help="print each account's secrets"
    )
    emulator.set_defaults(run=run_emulator)
    plan = commands.add_parser("plan", help="show what apply would create or change")
    plan.add_argument("plan", type=Path)
    plan.add_argument("--base-url", help="Bitget API root (default $BITGET_BASE_URL or production)")
    plan.set_defaults(run=run_plan)
    apply = commands.add_parser(
        "apply",
        help="create what the plan says is missing",
        description=APPLY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apply.add_argument("plan", type=Path)
    apply.add_argument(
        "--base-url", help="Bitget API root (default $BITGET_BASE_URL or production)"
    )
    apply.add_argument("--vault", type=Path, default=Path("bitget-keys.vault"))
    apply.add_argument("--state", type=Path, default=Path("bitget-keys.state"))
    apply.add_argument("--json", action="store_true", help="one JSON object per item")
    apply.add_argument(
        "--yes",
        action="store_true",
        help="apply without asking (required when stdin is not a terminal, and with --json)",
    )
    apply.add_argument(
        "--redis",
        metavar="URL",
        default=os.environ.get(REDIS_URL_ENV) or None,
        help=(
            "share rate limits with every other process using this Redis, such as "
            f"redis://:PASSWORD@host:6379/0 (default ${REDIS_URL_ENV}, which keeps the "
            "password out of the process list); needs bitget-keys[redis]"
        ),
    )
    apply.add_argument(
        "--egress",
        metavar="NAME",
        help=(
            "with --redis: the name of this host's public IP, whose per-IP budget every "
            "process with the same name shares (default $"
            f"{EGRESS_ENV}, else 'default'); up to 64 letters, digits and . _ : -"
        ),
    )
    apply.add_argument(
        "--drain-timeout",
        type=float,
        default=DRAIN_SECONDS,
        metavar="SECONDS",
        help=(
            "on Ctrl-C or SIGTERM, how long to wait for answers to requests already sent, "
            f"so their secrets are stored (default {DRAIN_SECONDS:.0f})"
        ),
    )
    apply.add_argument(
        "--rescue-dir",
        type=Path,
        metavar="DIR",
        help=(
            "if the vault cannot be written (a full disk), save the secrets that arrived "
            "to a new emergency vault in DIR (default: ask on a terminal, else $HOME)"
        ),
    )
    apply.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help=(
            "apply only shard I of N (1-based): the accounts whose position in the plan, "
            "counted from 0, leaves I-1 when divided by N"
        ),
    )
    apply.add_argument(
        "--wait-lock",
        action="store_true",
        help="when another run holds the vault's or state file's lock, wait for it (not fail)",
    )
    apply.add_argument(
        "--strict",
        action="store_true",
        help="refuse a vault or state file that its group or others can read or write",
    )
    apply.set_defaults(run=run_locked_apply)
    _add_demo(commands)
    _add_vault(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(asyncio.run(args.run(args)))
    except PlanError as exc:
        # One line per problem, each escaped by the error itself.
        print(exc, file=sys.stderr)
        return 2
    except BitgetKeysError as exc:
        # Messages quote paths, plan values and Bitget's answers: one line, escaped.
        print(escape(f"bitget-keys: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`bitget-keys vault list | head`): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
