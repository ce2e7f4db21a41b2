"""The ``rotate`` command's arguments (`bitget_keys.cli._parser` adds them)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from bitget_keys.cli._common import REDIS_URL_ENV
from bitget_keys.cli._options import add_command, add_state_option, add_vault_option
from bitget_keys.cli._signals import DRAIN_SECONDS
from bitget_keys.cli._vault_key import VAULT_KEY_FILE_ENV
from bitget_keys.lifecycle.rotation import DEFAULT_GRACE
from bitget_keys.provision.durations import format_duration, parse_duration
from bitget_keys.provision.vault import VAULT_KEY_ENV

__all__ = ["ROTATE_HELP", "add_rotate"]

ROTATE_HELP = f"""\
Replace keys with new ones without downtime: for each key, create a new key with the
same label, rights and whitelist (its passphrase stored in the vault before the create
is sent), verify it by signing a request with it, store it in the vault as current
(the old key as previous), and after the grace period revoke the old key (deleted on a
unified master, neutralised on a classic one: no rights left, whitelist 192.0.2.1).

Name keys as ACCOUNT/SUBACCOUNT-LABEL/KEY-LABEL with shell-style globs (main/*/*,
'*/bots/*'), or pass --due for every key older than its plan rotate_after. rotate lists
what it will do and asks first (--yes: don't ask). Every step is journaled in the
state file: a rotation that was stopped (Ctrl-C, a crash, kill -9) is continued by the
next rotate, never started twice, and no secret is lost. A sub-account that would hold
more than 10 keys while old and new overlap is refused before anything is sent.

rotate waits out the grace, saying what it waits for; --no-wait leaves the old keys to
`rotate PLAN --finish` (for cron). Every run first retries old keys whose revocation
failed, and lists classic keys whose passphrase is not held (revoke those in Bitget's
web UI).

The vault passphrase: ${VAULT_KEY_ENV} or ${VAULT_KEY_FILE_ENV}, else asked for.
"""


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (got {text!r})") from None


def _add_pacing(rotate: argparse.ArgumentParser) -> None:
    """Where rotate's requests leave from and how they share limits: as apply's options."""
    # Made when the parser is built, after `bitget_keys.cli._parser` has loaded.
    from bitget_keys.cli._parser import (  # noqa: PLC0415 - _parser imports this module
        add_audit_log_option,
        parse_egress,
        parse_shard,
        parse_share,
    )

    add_audit_log_option(rotate)

    rotate.add_argument(
        "--redis-fallback",
        type=parse_share,
        metavar="FRACTION",
        help="while --redis is unreachable, pace locally at this fraction of the limits "
        "(see apply --redis-fallback)",
    )
    rotate.add_argument(
        "--egress",
        type=parse_egress,
        action="append",
        metavar="NAME[=PROXY_URL]",
        help="leave through these egresses, masters spread over them in plan order, each "
        "with its own IP budget (see apply --egress); a master's new keys leave with it",
    )
    rotate.add_argument(
        "--ip-policy",
        choices=("even", "rolling"),
        help="how each egress's per-IP budget is spent (see apply --ip-policy)",
    )
    rotate.add_argument(
        "--ip-share",
        type=parse_share,
        metavar="FRACTION",
        help="the fraction (0 to 1) of each egress's per-IP budget rotate may use",
    )
    rotate.add_argument(
        "--shard",
        type=parse_shard,
        metavar="I/N",
        help="rotate only the keys of shard I of N of the plan's accounts (as apply --shard)",
    )


def add_rotate(commands: Any) -> None:
    """The ``rotate`` command's arguments."""
    rotate = add_command(
        commands,
        "rotate",
        "replace keys with new ones, revoking the old ones after a grace period",
        ROTATE_HELP,
    )
    rotate.add_argument("plan", type=Path, help="the plan file (TOML)")
    rotate.add_argument(
        "selectors",
        nargs="*",
        metavar="SELECTOR",
        help="keys to rotate: ACCOUNT/SUBACCOUNT-LABEL/KEY-LABEL, shell-style globs allowed",
    )
    rotate.add_argument(
        "--grace",
        type=_duration,
        default=DEFAULT_GRACE,
        metavar="DURATION",
        help="how long the old key stays valid once the new one is current, such as 30m, "
        f"12h or 0s (default {format_duration(DEFAULT_GRACE)})",
    )
    rotate.add_argument(
        "--due", action="store_true", help="rotate the keys older than their plan rotate_after"
    )
    rotate.add_argument(
        "--no-wait",
        action="store_true",
        help="don't wait out the grace: `rotate PLAN --finish` revokes the old keys later",
    )
    rotate.add_argument(
        "--finish",
        action="store_true",
        help="continue unfinished rotations only (revoke old keys whose grace is over); "
        "starts none",
    )
    rotate.add_argument("--yes", action="store_true", help="rotate without asking")
    rotate.add_argument("--json", action="store_true", help="one JSON object per step")
    rotate.add_argument(
        "--verify-timeout",
        type=_duration,
        default=120.0,
        metavar="DURATION",
        help="how long a new key may be unknown to Bitget (not propagated) before its "
        "rotation stops, resumable (default 2m)",
    )
    rotate.add_argument(
        "--base-url", help="Bitget API root (default $BITGET_BASE_URL or production)"
    )
    add_vault_option(rotate)
    add_state_option(rotate)
    rotate.add_argument(
        "--vault-key-file",
        metavar="PATH",
        help=f"read the vault passphrase from this file's first line (before ${VAULT_KEY_ENV})",
    )
    rotate.add_argument(
        "--redis",
        metavar="URL",
        default=os.environ.get(REDIS_URL_ENV) or None,
        help=f"share rate limits through this Redis, as apply does (default ${REDIS_URL_ENV})",
    )
    _add_pacing(rotate)
    rotate.add_argument(
        "--wait-lock",
        action="store_true",
        help="when another run holds the vault's or state file's lock, wait for it",
    )
    rotate.add_argument(
        "--drain-timeout",
        type=float,
        default=DRAIN_SECONDS,
        metavar="SECONDS",
        help="on Ctrl-C or SIGTERM, how long to wait for answers already on their way "
        f"(default {DRAIN_SECONDS:.0f})",
    )
    rotate.set_defaults(run="rotate:run_locked_rotate")
