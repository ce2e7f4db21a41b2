"""
Every environment variable ``bitget-keys`` reads, with what it sets.

The command line and the library read them where they are used; this table is what
the documentation shows, and the test suite checks that every variable the package
reads is in it.
"""

from __future__ import annotations

from typing import Final

import attrs

from bitget_keys._client.config import BASE_URL_ENV
from bitget_keys.cli._common import EGRESS_ENV, REDIS_URL_ENV, STATE_PATH_ENV, VAULT_PATH_ENV
from bitget_keys.cli._vault_key import VAULT_KEY_FILE_ENV
from bitget_keys.provision.audit_log import AUDIT_LOG_ENV
from bitget_keys.provision.progress import NO_COLOR_ENV
from bitget_keys.provision.vault import VAULT_KEY_ENV

__all__ = ["VARIABLES", "Variable"]


@attrs.frozen
class Variable:
    """One environment variable: its name, what reads it, and what it sets."""

    name: str
    used_by: str
    meaning: str
    secret: bool = False


VARIABLES: Final[tuple[Variable, ...]] = (
    Variable(
        VAULT_KEY_ENV,
        "apply, rotate, vault",
        "The vault passphrase. Unset: asked for on a terminal, else the command stops.",
        secret=True,
    ),
    Variable(
        VAULT_KEY_FILE_ENV,
        "apply, rotate, vault",
        "A file whose first line is the vault passphrase, read when --vault-key-file and "
        f"{VAULT_KEY_ENV} are not given; a file others can read is used with a warning.",
        secret=True,
    ),
    Variable(
        VAULT_PATH_ENV,
        "plan, apply, rotate, vault",
        "The vault file when --vault is not given; default bitget-keys.vault.",
    ),
    Variable(
        STATE_PATH_ENV,
        "apply, rotate",
        "The state file when --state is not given; default bitget-keys.state.",
    ),
    Variable(
        AUDIT_LOG_ENV,
        "audit and the lifecycle commands",
        "The audit log when --audit-log is not given; default beside the state file, "
        "as STATE.audit.jsonl.",
    ),
    Variable(
        BASE_URL_ENV,
        "plan, apply, rotate, Client",
        "Bitget's API root when --base-url (or base_url=) is not given; default production.",
    ),
    Variable(
        REDIS_URL_ENV,
        "apply, rotate",
        "The Redis that shares rate limits between processes (--redis); keeps its "
        "password out of the process list.",
        secret=True,
    ),
    Variable(
        EGRESS_ENV,
        "apply, rotate",
        "With --redis: the name of this host's public IP, whose per-IP budget every "
        "process with the same name shares (--egress NAME).",
    ),
    Variable(
        NO_COLOR_ENV,
        "apply, demo",
        "Set to anything but empty: plain lines on a terminal too, with no colour and no "
        "escape codes (as --plain).",
    ),
)
