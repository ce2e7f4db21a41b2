"""
The argument parser of every command.

It imports no command: each parser names its command as ``module:function``, and
`bitget_keys.cli.main` imports that module only when the command runs, so ``--help`` and
``vault list`` do not load the emulator's web server, Redis or the demo.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bitget_keys
from bitget_keys._transport import parse_proxy
from bitget_keys.cli._common import EGRESS_ENV, REDIS_URL_ENV
from bitget_keys.cli._help import (
    APPLY_HELP,
    EMULATOR_HELP,
    PLAN_HELP,
    VAULT_CHECK_HELP,
    VAULT_EXPORT_HELP,
    VAULT_HELP,
    VAULT_REKEY_HELP,
    VAULT_REPAIR_HELP,
    VAULT_SHOW_HELP,
)
from bitget_keys.cli._lifecycle_parser import add_import, add_inventory
from bitget_keys.cli._options import (
    EXIT_STATUS_HELP,
    PROGRAM,
    CommandParser,
    add_completion,
    add_state_option,
    add_vault_option,
    vault_from_environment,
)
from bitget_keys.cli._rotate_options import add_rotate
from bitget_keys.cli._signals import DRAIN_SECONDS
from bitget_keys.cli._vault_key import VAULT_KEY_FILE_ENV
from bitget_keys.errors import ConfigurationError
from bitget_keys.provision.audit_log import AUDIT_LOG_ENV, AUDIT_SUFFIX
from bitget_keys.provision.plan import MAX_KEYS, MAX_SUBACCOUNTS
from bitget_keys.provision.vault import (
    VAULT_KEY_ENV,
)


def parse_shard(text: str) -> tuple[int, int]:
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


def parse_egress(text: str) -> tuple[str, str | None]:
    """
    ``NAME`` or ``NAME=PROXY_URL``, for ``apply --egress``: the proxy URL is checked here
    (errors never show its password), the name where the egresses are made.
    ``NAME=env:VARIABLE`` reads the URL from the environment, keeping a proxy password
    out of the process list.
    """
    name, equals, url = text.partition("=")
    if not equals:
        return name, None
    if url.startswith("env:"):
        variable = url.removeprefix("env:")
        url = os.environ.get(variable, "")
        if not url:
            msg = f"egress {name}: the environment variable {variable!r} holding its proxy is unset"
            raise argparse.ArgumentTypeError(msg)
    try:
        parse_proxy(url, what=f"the proxy of egress {name}")
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name, url


def parse_share(text: str) -> float:
    """A fraction in (0, 1], for ``apply --ip-share``."""
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        msg = f"expected a fraction more than 0 and at most 1, such as 0.5 (got {text!r})"
        raise argparse.ArgumentTypeError(msg)
    return share


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
    demo.set_defaults(run="demo:run")


def _add_plan(commands: Any) -> None:
    """The ``plan`` command's arguments."""
    plan = commands.add_parser(
        "plan",
        help="show what apply would create, change or revoke",
        description=PLAN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument("plan", type=Path, help="the plan file (TOML), or - to read it from stdin")
    plan.add_argument("--base-url", help="Bitget API root (default $BITGET_BASE_URL or production)")
    plan.add_argument(
        "--vault",
        type=Path,
        default=vault_from_environment(),
        help="the vault apply will use, to foresee copy keys and orphans (default: "
        "$BITGET_KEYS_VAULT, else bitget-keys.vault when it exists)",
    )
    plan.add_argument("--json", action="store_true", help="one JSON document of the changes")
    plan.add_argument(
        "--out", type=Path, metavar="FILE", help="save the reviewed plan for `apply FILE`"
    )
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when nothing would change, 2 when something would, 1 on an error",
    )
    _add_prune(plan, "also show what apply --prune would revoke: what the plan no longer names")
    plan.set_defaults(run="plan:run")


def _add_prune(command: argparse.ArgumentParser, help_text: str) -> None:
    """``--prune``, on plan and apply."""
    command.add_argument("--prune", action="store_true", help=help_text)


def _vault_command(
    commands: Any, name: str, run: str, help_text: str, description: str | None = None
) -> argparse.ArgumentParser:
    """One ``vault`` subcommand, with the ``--vault`` option they all take."""
    command: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help_text,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_vault_option(command)
    _add_vault_key_file(command)
    command.set_defaults(run=f"vault:{run}")
    return command


def _add_vault_key_file(command: argparse.ArgumentParser) -> None:
    """``--vault-key-file``, on every command that opens a vault."""
    command.add_argument(
        "--vault-key-file",
        metavar="PATH",
        help=f"read the vault passphrase from this file's first line (- for stdin; "
        f"before ${VAULT_KEY_ENV} and ${VAULT_KEY_FILE_ENV})",
    )


def _add_apply_vault(apply: argparse.ArgumentParser) -> None:
    """apply's vault options besides --vault."""
    _add_vault_key_file(apply)
    apply.add_argument(
        "--create-vault",
        action="store_true",
        help="create the vault if --vault names none (else apply stops, or asks on a terminal)",
    )


def _add_vault(commands: Any) -> None:
    """The ``vault`` commands and their arguments."""
    vault = commands.add_parser(
        "vault",
        help="read the secrets vault",
        description=VAULT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    vault_commands = vault.add_subparsers(dest="vault_command", required=True)
    _vault_command(
        vault_commands,
        "list",
        "run_list",
        "list stored keys (no secrets): account, kind, SUB-LABEL/KEY, API key, sub-account, "
        "stage, secret held or not held (imported)",
    )
    show = _vault_command(
        vault_commands,
        "show",
        "run_show",
        "show one key (secrets masked unless --reveal)",
        VAULT_SHOW_HELP,
    )
    show.add_argument("label", metavar="LABEL", help="SUBACCOUNT/KEY, a key's label, or API key")
    show.add_argument("--account", help="only keys of this plan account")
    show.add_argument("--reveal", action="store_true", help="print the secret and passphrase")
    show.add_argument("--json", action="store_true", help="one JSON object (masked alike)")
    export = _vault_command(
        vault_commands,
        "export",
        "run_export",
        "write every key with its secrets, to a new 0600 file",
        VAULT_EXPORT_HELP,
    )
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
    _vault_command(
        vault_commands,
        "check",
        "run_check",
        "report damaged records by line (exit 1 when any)",
        VAULT_CHECK_HELP,
    )
    repair = _vault_command(
        vault_commands,
        "repair",
        "run_repair",
        "recover every intact record into a repaired vault",
        VAULT_REPAIR_HELP,
    )
    repair.add_argument(
        "--output", "-o", type=Path, metavar="PATH", help="write the repaired vault here instead"
    )
    repair.add_argument(
        "--wait-lock", action="store_true", help="wait while another run holds the vault's lock"
    )
    rekey = _vault_command(
        vault_commands,
        "rekey",
        "run_rekey",
        "change the vault passphrase, and upgrade its key derivation",
        VAULT_REKEY_HELP,
    )
    rekey.add_argument(
        "--new-key-file",
        metavar="PATH",
        help="read the new passphrase from this file's first line (- for stdin, after "
        "the current one when --vault-key-file is - too)",
    )
    rekey.add_argument(
        "--wait-lock", action="store_true", help="wait while another run holds the vault's lock"
    )


def _add_lifecycle(commands: Any) -> None:
    """
    ``import`` and ``inventory`` (their own options in
    `bitget_keys.cli._lifecycle_parser`), with the plan, vault and state options.
    """
    adopt = add_import(commands)
    for command in (adopt, add_inventory(commands)):
        command.add_argument("plan", type=Path, help="the plan file (TOML)")
        command.add_argument(
            "--base-url", help="Bitget API root (default $BITGET_BASE_URL or production)"
        )
        add_vault_option(command)
        _add_vault_key_file(command)
        add_state_option(command)
    add_audit_log_option(adopt)


AUDIT_HELP = """\
The audit log holds one line per lifecycle operation (a rotation's steps, a revoke, a
freeze, an import): when, who (user@host and pid), what, on which account and target,
and how it ended; never a secret. Each line carries the SHA-256 of the line before, so
an edited, removed or reordered line breaks the chain where it happened.

Removing lines from the end leaves an intact, shorter chain: keep the last hash that
`audit verify` prints somewhere else, and pass it back with --expect-hash.
"""


def parse_hash(text: str) -> str:
    """A SHA-256 in hex, for ``audit verify --expect-hash``."""
    value = text.strip().lower()
    if len(value) != 64 or any(char not in "0123456789abcdef" for char in value):
        msg = f"expected 64 hex digits, as `audit verify` prints (got {text!r})"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_audit_log_option(parser: argparse.ArgumentParser) -> None:
    """``--audit-log PATH``, on every command that writes or reads the audit log."""
    parser.add_argument(
        "--audit-log",
        type=Path,
        metavar="PATH",
        help=f"the audit log of lifecycle operations (default ${AUDIT_LOG_ENV}, else "
        f"beside the --state file, as STATE{AUDIT_SUFFIX})",
    )


def _audit_command(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """One ``audit`` subcommand, with the options that find the log and ``--json``."""
    command: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help_text,
        description=AUDIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_audit_log_option(command)
    add_state_option(command)
    command.set_defaults(run=f"audit:run_{name}")
    return command


def _add_audit(commands: Any) -> None:
    """The ``audit`` commands and their arguments."""
    audit = commands.add_parser(
        "audit",
        help="check and show the audit log of lifecycle operations",
        description=AUDIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = _audit_command(
        audit_commands,
        "verify",
        "check the hash chain line by line; print the last hash (exit 65 when damaged, "
        "66 when there is no log)",
    )
    verify.add_argument(
        "--expect-hash",
        type=parse_hash,
        metavar="HASH",
        help="a last hash printed earlier: the log must still hold the entry that has it",
    )
    verify.add_argument("--json", action="store_true", help="one JSON document of the check")
    show = _audit_command(audit_commands, "show", "print the entries, oldest first")
    show.add_argument("--account", help="only entries of this plan account")
    show.add_argument("--json", action="store_true", help="one JSON object per entry")


def _add_plain(parser: argparse.ArgumentParser, commands: Any) -> None:
    """
    ``--plain``: one line per item on a terminal too, no live display and no escape
    codes (as ``NO_COLOR`` asks). Accepted before the command and after it: neither
    place's default (suppressed) overrides the other.
    """
    for where in (parser, *(commands.choices[name] for name in ("plan", "apply", "demo"))):
        where.add_argument(
            "--plain",
            action="store_true",
            default=argparse.SUPPRESS,
            help="plain lines on a terminal too: no live display, no colour or escape codes",
        )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = CommandParser(
        prog=PROGRAM,
        description="Create and manage Bitget API keys at scale.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(verbose=0)
    parser.add_argument(
        "--version", action="version", version=f"{PROGRAM} {bitget_keys.__version__}"
    )
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
    emulator.set_defaults(run="emulator:run")
    _add_plan(commands)
    apply = commands.add_parser(
        "apply",
        help="create what the plan says is missing",
        description=APPLY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apply.add_argument(
        "plan",
        type=Path,
        help="a plan file (TOML), - to read one from stdin (with --yes), or a plan saved by "
        "`plan --out`: applied exactly as reviewed, without asking, or refused when live "
        "state moved since",
    )
    apply.add_argument(
        "--base-url", help="Bitget API root (default $BITGET_BASE_URL or production)"
    )
    add_vault_option(apply)
    add_state_option(apply)
    add_audit_log_option(apply)
    _add_apply_vault(apply)
    apply.add_argument("--json", action="store_true", help="one JSON object per item")
    apply.add_argument(
        "--yes",
        action="store_true",
        help="apply without asking (required when stdin is not a terminal, and with --json)",
    )
    _add_prune(
        apply,
        "also revoke what the plan no longer names under its masters: keys of planned "
        "sub-accounts with no planned label, and every key of sub-accounts it does not "
        "name (listed and asked for first; never a rotation's key or a copy key)",
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
        "--redis-fallback",
        type=parse_share,
        metavar="FRACTION",
        help=(
            "while --redis is unreachable, pace each process locally at this fraction "
            "(more than 0, at most 1) of Bitget's limits instead of sending nothing; give "
            "1/N when N processes share the limits (default: send nothing until it is back)"
        ),
    )
    apply.add_argument(
        "--egress",
        type=parse_egress,
        action="append",
        metavar="NAME[=PROXY_URL]",
        help=(
            "NAME=PROXY_URL, once per proxy (http:// or https://, such as "
            "eu-1=http://user:password@10.0.0.5:3128, or NAME=env:VARIABLE to read it from "
            "the environment): spread the masters over these "
            "egresses, round-robin in plan order, each with its own per-IP budget (through "
            "--redis under NAME when given). NAME alone, with --redis: the name of this "
            "host's public IP, whose budget every process with the same name shares "
            f"(default ${EGRESS_ENV}, else 'default'). NAME: up to 64 letters, digits and "
            ". _ : -"
        ),
    )
    apply.add_argument(
        "--ip-policy",
        choices=("even", "rolling"),
        help=(
            "how each egress's per-IP budget spends Bitget's 6,000 requests a minute: "
            "'even' paces them at 95/s, 'rolling' allows 5,700 in any 60 s with no pacing "
            "(default: the library's default policy)"
        ),
    )
    apply.add_argument(
        "--ip-share",
        type=parse_share,
        metavar="FRACTION",
        help=(
            "the fraction (0 to 1) of each egress's per-IP budget this apply may use, "
            "leaving the rest to other programs behind the same IP (default 1)"
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
        type=parse_shard,
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
    apply.add_argument(
        "--metrics-port",
        type=_at_least(0, 65535),
        metavar="PORT",
        help=(
            "serve Prometheus metrics (lane queues, waits, round trips, 429s, pauses, the "
            "IP's last minute) at http://HOST:PORT/metrics while apply runs; 0 picks a "
            "free port, printed on stderr; needs bitget-keys[metrics]"
        ),
    )
    apply.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the address --metrics-port listens on (default 127.0.0.1: this host only)",
    )
    apply.set_defaults(run="apply:run_locked_apply")
    _add_demo(commands)
    _add_vault(commands)
    _add_lifecycle(commands)
    _add_audit(commands)
    add_rotate(commands)
    add_completion(commands)
    _add_plain(parser, commands)
    return parser
