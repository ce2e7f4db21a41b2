"""
What ``apply`` and ``rotate`` both do with their shared options: the default egress name,
the ``--shard`` of a plan, and saving secrets an unwritable vault could not take.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
from pathlib import Path

from bitget_keys._secret import Secret
from bitget_keys.cli._common import EGRESS_ENV, stdin_is_terminal
from bitget_keys.cli.exits import ExitCode, UsageError
from bitget_keys.errors import VaultError
from bitget_keys.provision.ledger import SecretsNotStoredError, rescue
from bitget_keys.provision.plan import Plan, shard_plan

__all__ = ["egress_name", "rescue_secrets", "shard_of"]


def egress_name() -> str | None:
    """The name of this host's IP budget in Redis when ``--egress`` gives none."""
    return os.environ.get(EGRESS_ENV)


def shard_of(plan: Plan, args: argparse.Namespace) -> Plan:
    """
    ``--shard I/N`` of the plan. A shard that holds no account is a wrong command line
    (exit `ExitCode.USAGE`), not a run that did nothing: with fewer than I accounts it
    can never hold one, so the N processes are not splitting this plan as meant.
    """
    index, count = args.shard
    shard = shard_plan(plan, index, count)
    if not shard.accounts:
        total = len(plan.accounts)
        msg = (
            f"shard {index}/{count} of {args.plan} holds no account (the plan has {total}); "
            f"split it into at most {total} shard(s)"
        )
        raise UsageError(msg)
    return shard


def rescue_secrets(exc: SecretsNotStoredError, passphrase: Secret, rescue_dir: Path | None) -> int:
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
    if stdin_is_terminal():
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
        return ExitCode.FAILED
    keys = ", ".join(record.api_key for record in exc.records)
    print(
        f"bitget-keys: NO COPY of {count} secret(s) could be written anywhere; these keys "
        f"exist on Bitget without a stored secret: {keys}. Disable or delete them in "
        "Bitget's web UI, or free disk space and pass --rescue-dir next time.",
        file=sys.stderr,
    )
    return ExitCode.SECRETS_NOT_STORED
