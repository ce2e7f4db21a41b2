"""
``bitget-keys inventory``: every key the plan's masters hold, with its rights, age,
whether the vault holds its secret, and the findings of the key policy.

Every master is read at once (each paced by its UID's lanes), whole: the sub-accounts
the plan names and the others. The vault is read for what it holds (``--no-vault``, or
no vault key at hand off a terminal: every secret is ``unknown``); keys are first seen
into the state file, so a key whose creation time Bitget does not tell still has an
age. A table on a terminal (plain with ``--plain`` or ``NO_COLOR``), ``--json`` one
document, ``--csv`` one row per key. Exit `ExitCode.FINDINGS` (6) when any key breaks
the policy, 0 when none does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import orjson

from bitget_keys._escape import escape
from bitget_keys.cli._common import (
    intact_records,
    read_plan,
    stdin_is_terminal,
    vault_passphrase,
)
from bitget_keys.cli._vault_key import key_from_sources
from bitget_keys.cli.exits import ExitCode
from bitget_keys.cli.import_ import read_holdings
from bitget_keys.errors import ConfigurationError, VaultMissingError
from bitget_keys.lifecycle.first_seen import FirstSeen
from bitget_keys.lifecycle.inventory import (
    DEFAULT_MAX_AGE,
    FINDINGS,
    MAX_AGE_ENV,
    Inventory,
    KeyRow,
    build_inventory,
    inventory_csv,
)
from bitget_keys.lifecycle.survey import MasterHoldings
from bitget_keys.provision.durations import parse_duration
from bitget_keys.provision.files import refuse_directory
from bitget_keys.provision.vault import VAULT_KEY_ENV, SecretsVault, VaultRecord

_SECRET_TEXT: Final = {
    "held": "held",
    "imported": "not held (imported)",
    "absent": "not held (not in vault)",
    "unknown": "unknown",
}


def _records(args: argparse.Namespace) -> tuple[VaultRecord, ...] | None:
    """The vault's records, or ``None`` when it is not to be read (or can't be: no key)."""
    if args.no_vault:
        return None
    # Read once: a key file may be stdin, which gives its line only once.
    key = key_from_sources(args.vault_key_file)
    if key is None and not stdin_is_terminal():
        print(
            escape(
                f"bitget-keys: the vault {args.vault} was not read ({VAULT_KEY_ENV} is unset): "
                "whether its secrets are held is unknown"
            ),
            file=sys.stderr,
        )
        return None
    refuse_directory(args.vault, "vault")
    if not SecretsVault.exists(args.vault):
        detail = "no vault here (--no-vault lists the keys without it)"
        raise VaultMissingError(str(args.vault), detail)
    if key is None:
        key = vault_passphrase(args.vault, new=False)
    # A damaged vault's intact records are used, the damage named on stderr.
    return intact_records(SecretsVault.open(args.vault, key))


def _sightings(
    state: Path, holdings: Sequence[MasterHoldings]
) -> tuple[dict[str, float], dict[str, float]]:
    """
    Record every listed key in the state file: when each was first seen, and when the
    grace of each key a rotation replaced ends.
    """
    seen: dict[str, float] = {}
    with FirstSeen(state) as table:
        for master in holdings:
            keys = [key.api_key for keys in master.keys.values() for key in keys]
            seen |= table.sighted(master.account.name, keys)
        return seen, table.grace_deadlines()


def _age(row: KeyRow) -> str:
    if row.age_days is None:
        return "-"
    return f"{row.age_days}d" + (" (first seen)" if row.age_source == "first_seen" else "")


def _cells(row: KeyRow) -> list[str]:
    sub = row.subaccount_label or row.subaccount_uid
    state = "frozen" if row.frozen and row.state == "active" else (row.state or "-")
    cells = [
        row.account,
        sub + (" (frozen)" if row.frozen else ""),
        row.label if row.label is not None else "(no keys)",
        row.api_key or "-",
        row.family,
        ", ".join(row.permissions) or "-",
        ", ".join(row.ip_list) or "-",
        row.perm_type or "-",
        state,
        _age(row),
        _SECRET_TEXT.get(row.secret or "", "-"),
        row.vault_stage or "-",
        ", ".join(FINDINGS[f] for f in row.findings) or "-",
    ]
    return [escape(cell) for cell in cells]


_HEADINGS: Final = (
    "Account",
    "Sub-account",
    "Key",
    "API key",
    "API",
    "Permissions",
    "Whitelist",
    "Type",
    "State",
    "Age",
    "Secret",
    "Stage",
    "Findings",
)


def print_table(inventory: Inventory) -> None:
    """The inventory as a table: coloured on a terminal, plain text elsewhere."""
    from rich import box  # noqa: PLC0415 - only the table needs rich
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    console = Console(
        file=sys.stdout,
        highlight=False,
        color_system="auto" if colour else None,
        force_terminal=colour,
        width=None if colour else 100_000,
    )
    table = Table(box=box.SIMPLE if colour else box.ASCII, show_edge=colour)
    for heading in _HEADINGS:
        table.add_column(heading, overflow="fold")
    for row in inventory.rows:
        style = "red" if row.findings else None
        table.add_row(*_cells(row), style=style if colour else None)
    console.print(table)
    findings = inventory.findings
    max_age = int(inventory.max_age_seconds // 86_400)
    console.print(
        f"{sum(r.api_key is not None for r in inventory.rows)} key(s), "
        f"{len(findings)} finding(s) (maximum age {max_age}d)",
        markup=False,
    )


def _max_age(given: str | None) -> float:
    """``--max-age`` (checked by the parser), else ``$BITGET_KEYS_MAX_KEY_AGE``, else 90d."""
    text = given or os.environ.get(MAX_AGE_ENV) or DEFAULT_MAX_AGE
    try:
        return parse_duration(text)
    except ValueError as exc:
        msg = f"${MAX_AGE_ENV}: {exc} (got {text!r})"
        raise ConfigurationError(msg) from None


async def run(args: argparse.Namespace) -> int:
    """Show every key of the plan's masters; exit 6 when the policy finds something."""
    refuse_directory(args.state, "state file")
    max_age = _max_age(args.max_age)
    plan = read_plan(args.plan)
    records = _records(args)
    holdings = await read_holdings(plan, args.base_url)
    seen, grace_until = _sightings(args.state, holdings)
    inventory = build_inventory(
        holdings,
        records=records,
        first_seen=seen,
        now=dt.datetime.now(dt.UTC),
        max_age_seconds=max_age,
        grace_until=grace_until,
    )
    if args.json:
        document = orjson.dumps(inventory.to_json(), option=orjson.OPT_INDENT_2)
        sys.stdout.write(document.decode() + "\n")
    elif args.csv:
        sys.stdout.write(inventory_csv(inventory))
    else:
        print_table(inventory)
    return ExitCode.FINDINGS if inventory.findings else ExitCode.OK
