"""
The ``import`` and ``inventory`` commands' own options and long help texts (their
``--help`` descriptions); `bitget_keys.cli._parser` adds the options they share.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["IMPORT_HELP", "INVENTORY_HELP", "add_import", "add_inventory"]

IMPORT_HELP = """\
Bring the sub-accounts and keys that exist at Bitget but that the plan does not name
(made in Bitget's web UI, or by another tool) into the plan, the vault and the state.

Every master the plan names is read whole, through its mode's API family. Each
sub-account and key the plan lacks becomes a plan entry that reproduces it (labels,
permissions, whitelist, permission type), so that `bitget-keys plan` shows no change
once the entries are in the plan: printed as TOML with a comment saying where each
goes, or with --out FILE added to the plan's own text, each at the end of the table it
belongs to (comments and layout kept; written atomically; the plan itself or a new
file). Bitget masks a unified sub-account's username: its entry holds a stand-in that
begins with the letters Bitget shows, marked to be replaced with the real name.

A key made elsewhere has a secret no one here holds: each is recorded in the vault as
"secret not held" (and in the state file and the audit log); `bitget-keys rotate`
replaces it with a key whose secret the vault holds. What can't be planned (no key, a
label used twice, a permission with no plan name) is named, with why, and left out. A
second import adds nothing twice.
"""

INVENTORY_HELP = """\
List every sub-account and key of the plan's masters, planned or not: permissions,
whitelist, permission type, API family (v2 classic, v3 unified), frozen, revoked or
neutralised, age, whether the vault holds the secret and the vault's stage for it.

A key's age counts from its creation where Bitget tells it (unified keys), else from
the first time this tool listed it (kept in the state file; shown "first seen").
Findings: a withdraw permission, an empty whitelist, older than --max-age, a secret
the vault does not hold, a key a rotation replaced still working after its grace.
Exit 6 when there is any finding, 0 when there is none.

The vault is read when its key is at hand (--vault-key-file, $BITGET_KEYS_VAULT_KEY,
$BITGET_KEYS_VAULT_KEY_FILE, or asked on a terminal); with --no-vault, or no key off a
terminal, whether each secret is held is "unknown" (never a finding).
"""


def _parse_max_age(text: str) -> str:
    """A duration for ``inventory --max-age`` (checked here, read by the command)."""
    from bitget_keys.provision.durations import parse_duration  # noqa: PLC0415

    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (got {text!r})") from None
    return text


def add_import(commands: Any) -> argparse.ArgumentParser:
    """The ``import`` command and its own options; the shared ones are added by the caller."""
    adopt: argparse.ArgumentParser = commands.add_parser(
        "import",
        help="bring sub-accounts and keys made elsewhere into the plan and the vault",
        description=IMPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    adopt.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the plan with the entries added to FILE (the plan itself, or a new "
        "file; written atomically) instead of printing them",
    )
    adopt.add_argument("--json", action="store_true", help="one JSON document of the entries")
    adopt.add_argument(
        "--create-vault", action="store_true", help="create the vault if --vault names none"
    )
    adopt.add_argument(
        "--wait-lock",
        action="store_true",
        help="when another run holds the vault's or state file's lock, wait for it (not fail)",
    )
    adopt.set_defaults(run="import_:run")
    return adopt


def add_inventory(commands: Any) -> argparse.ArgumentParser:
    """The ``inventory`` command and its own options; the shared ones are added by the caller."""
    inventory: argparse.ArgumentParser = commands.add_parser(
        "inventory",
        help="list every key of the plan's masters, its age and rights, and policy findings",
        description=INVENTORY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    form = inventory.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON document")
    form.add_argument("--csv", action="store_true", help="CSV: a header, then one row per key")
    inventory.add_argument(
        "--max-age",
        type=_parse_max_age,
        metavar="DURATION",
        help="keys older than this are a finding, such as 30d or 12h (default "
        "$BITGET_KEYS_MAX_KEY_AGE, else 90d)",
    )
    inventory.add_argument(
        "--no-vault",
        action="store_true",
        help="do not read the vault: whether each secret is held is unknown",
    )
    inventory.add_argument(
        "--plain",
        action="store_true",
        default=argparse.SUPPRESS,
        help="plain lines on a terminal too: no live display, no colour or escape codes",
    )
    inventory.set_defaults(run="inventory:run")
    return inventory
