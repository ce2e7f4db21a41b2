"""
The ``bitget-keys`` command line.

``main(argv)`` parses arguments and runs the chosen command with `asyncio.run`; it is
the only place this package starts an event loop or configures logging.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.text import Text

from bitget_keys._applier import Status, read_live_state
from bitget_keys._client import Client, ClientConfig
from bitget_keys._demo import DemoSize, run_demo
from bitget_keys._journal import Journal
from bitget_keys._plan import MAX_KEYS, MAX_SUBACCOUNTS, AccountSpec, load_plan
from bitget_keys._planner import diff_account
from bitget_keys._progress import Mode, Reporter, apply_with_progress, choose_mode
from bitget_keys._vault import VAULT_KEY_ENV, SecretsVault
from bitget_keys.errors import BitgetKeysError, ConfigurationError, PlanError
from bitget_keys.testing import Emulator, EmulatorAccount, Limits

__all__ = ["main"]

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


def _load_accounts(path: Path) -> tuple[list[EmulatorAccount], dict[str, list[dict[str, Any]]]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        msg = f"{path}: cannot read the accounts file ({exc})"
        raise ConfigurationError(msg) from exc
    accounts, seeds = [], {}
    for index, row in enumerate(data.get("accounts", [])):
        if not isinstance(row, dict):
            msg = f"{path}: accounts[{index}] must be a table"
            raise ConfigurationError(msg)
        unknown = sorted(set(row) - _ACCOUNT_KEYS)
        if unknown:
            msg = f"{path}: accounts[{index}] has unknown keys: {', '.join(unknown)}"
            raise ConfigurationError(msg)
        for flag in ("broker", "unified"):
            if not isinstance(row.get(flag, False), bool):
                msg = f"{path}: accounts[{index}].{flag} must be true or false"
                raise ConfigurationError(msg)
        try:
            seeds[str(row["uid"])] = list(row.get("broker_subaccounts", []))
            accounts.append(
                EmulatorAccount(
                    uid=str(row["uid"]),
                    api_key=row["api_key"],
                    secret_key=row["secret_key"],
                    passphrase=row["passphrase"],
                    broker=bool(row.get("broker", False)),
                    copy_trader=row.get("copy_trader"),
                    unified=bool(row.get("unified", False)),
                    ip_list=row.get("ip_list", ()),
                )
            )
        except KeyError as exc:
            msg = f"{path}: accounts[{index}] lacks {exc}"
            raise ConfigurationError(msg) from exc
        except (TypeError, ValueError) as exc:
            msg = f"{path}: accounts[{index}]: {exc}"
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
                print(
                    f"uid={account.uid} api_key={account.api_key} "
                    f"secret_key={account.secret_key.reveal()} "
                    f"passphrase={account.passphrase.reveal()}",
                    flush=True,
                )
        await stop.wait()
    return 0


def _vault_key() -> str:
    key = os.environ.get(VAULT_KEY_ENV)
    if not key:
        msg = f"set {VAULT_KEY_ENV} to the vault passphrase (12 characters or more)"
        raise ConfigurationError(msg)
    return key


def _clients(base_url: str | None) -> tuple[dict[str, Client], Any]:
    clients: dict[str, Client] = {}

    def client_for(account: AccountSpec) -> Client:
        if account.name not in clients:
            clients[account.name] = Client(
                account.credentials, base_url=base_url, config=ClientConfig()
            )
        return clients[account.name]

    return clients, client_for


async def run_plan(args: argparse.Namespace) -> int:
    """Print what apply would create or change; send nothing that changes anything."""
    plan = load_plan(args.plan)
    clients, client_for = _clients(args.base_url)
    try:
        for account in plan.accounts:
            live = await read_live_state(client_for(account), account)
            diff = diff_account(account, live)
            for sub in diff.new_subaccounts:
                keys = len(sub.keys)
                print(f"{account.name}: create sub-account {sub.label} ({sub.name}), {keys} key(s)")
            for missing in diff.new_keys:
                print(f"{account.name}: create key {missing.subaccount.label}/{missing.key.label}")
            for spec in diff.broker_changes:
                print(f"{account.name}: modify broker key {spec.sub_uid}/{spec.api_key}")
            for conflict in diff.conflicts:
                print(f"{account.name}: conflict: {conflict}")
            if diff.empty and not diff.conflicts:
                print(f"{account.name}: up to date")
    finally:
        for client in clients.values():
            await client.aclose()
    return 0


async def run_apply(args: argparse.Namespace) -> int:
    """
    Make live state match the plan: a live display on a terminal, else one line (or JSON
    object) per item.
    """
    plan = load_plan(args.plan)
    vault = SecretsVault.open(args.vault, _vault_key())
    clients, client_for = _clients(args.base_url)
    reporter = Reporter(choose_mode(json_lines=args.json, stream=sys.stdout))
    try:
        with Journal(args.state) as journal:
            results = await apply_with_progress(
                plan, clients=client_for, vault=vault, journal=journal, reporter=reporter
            )
    finally:
        for client in clients.values():
            await client.aclose()
    if reporter.mode is Mode.LIVE:
        reporter.console.print(Text(reporter.summary()))
    good = {Status.CREATED, Status.MODIFIED, Status.UNCHANGED}
    return 0 if all(result.status in good for result in results) else 1


async def run_vault_list(args: argparse.Namespace) -> int:
    """List the vault's keys, without their secrets."""
    vault = SecretsVault.open(args.vault, _vault_key())
    for record in vault.records():
        where = (
            f"{record.label}"
            if record.subaccount_name is None
            else f"{record.subaccount_name}/{record.label}"
        )
        print(f"{record.account}\t{record.kind}\t{where}\t{record.api_key}")
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
    apply = commands.add_parser("apply", help="create what the plan says is missing")
    apply.add_argument("plan", type=Path)
    apply.add_argument(
        "--base-url", help="Bitget API root (default $BITGET_BASE_URL or production)"
    )
    apply.add_argument("--vault", type=Path, default=Path("bitget-keys.vault"))
    apply.add_argument("--state", type=Path, default=Path("bitget-keys.state"))
    apply.add_argument("--json", action="store_true", help="one JSON object per item")
    apply.set_defaults(run=run_apply)
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
    vault = commands.add_parser("vault", help="read the secrets vault")
    vault_commands = vault.add_subparsers(dest="vault_command", required=True)
    vault_list = vault_commands.add_parser("list", help="list stored keys (no secrets)")
    vault_list.add_argument("--vault", type=Path, default=Path("bitget-keys.vault"))
    vault_list.set_defaults(run=run_vault_list)
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
        print(exc, file=sys.stderr)
        return 2
    except BitgetKeysError as exc:
        print(f"bitget-keys: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
