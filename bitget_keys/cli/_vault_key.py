"""
Where the vault passphrase comes from: a file, stdin, the environment or the terminal.

In this order: ``--vault-key-file PATH`` (``-``: one line of stdin), then
``$BITGET_KEYS_VAULT_KEY``, then ``$BITGET_KEYS_VAULT_KEY_FILE``, then a prompt on the
terminal. A file keeps the passphrase out of the environment (which child processes
inherit and ``/proc/PID/environ`` shows to the same user); ``-`` lets a secrets
manager pipe it in. The passphrase is never printed, and no message quotes a file's
content.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Final

from bitget_keys.errors import ConfigurationError, VaultMissingError
from bitget_keys.provision.files import loose_permissions
from bitget_keys.provision.vault import VAULT_KEY_ENV, SecretsVault

__all__ = [
    "VAULT_KEY_FILE_ENV",
    "is_new_vault",
    "key_file_in_use",
    "key_from_sources",
    "read_key_file",
]

#: The environment variable naming a file that holds the vault passphrase.
VAULT_KEY_FILE_ENV: Final = "BITGET_KEYS_VAULT_KEY_FILE"

_log: Final = logging.getLogger("bitget_keys.vault")


def read_key_file(name: str, what: str = "vault key file") -> str:
    """
    The passphrase in the file ``name`` (``-``: stdin): its first line, without the
    line break. A file its group or others can read is used with a warning.

    Raises:
        ConfigurationError: the file cannot be read, or its first line is empty.
    """
    if name == "-":
        line = sys.stdin.readline() if sys.stdin is not None else ""
        where = f"the {what} (stdin)"
    else:
        path = Path(name)
        warning = loose_permissions(path, what)
        if warning is not None:
            _log.warning("%s", warning)
        try:
            with path.open(encoding="utf-8") as file:
                line = file.readline()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            msg = f"cannot read the {what} {name}: {reason}"
            raise ConfigurationError(msg) from None
        where = f"the {what} {name}"
    key = line.removesuffix("\n").removesuffix("\r")
    if not key:
        msg = f"{where} holds no passphrase (its first line is empty)"
        raise ConfigurationError(msg)
    return key


def key_file_in_use(key_file: str | None) -> str | None:
    """
    The file the passphrase is read from (``-``: stdin) by `key_from_sources`'s order:
    ``--vault-key-file``, unless given ``$BITGET_KEYS_VAULT_KEY`` before
    ``$BITGET_KEYS_VAULT_KEY_FILE``; ``None`` when no file is read.
    """
    if key_file is not None:
        return key_file
    if os.environ.get(VAULT_KEY_ENV):
        return None
    return os.environ.get(VAULT_KEY_FILE_ENV) or None


def key_from_sources(key_file: str | None) -> str | None:
    """
    The passphrase from ``--vault-key-file``, ``$BITGET_KEYS_VAULT_KEY`` or
    ``$BITGET_KEYS_VAULT_KEY_FILE``, first found; ``None`` when none is given.
    """
    named = key_file_in_use(key_file)
    if named is None:
        return os.environ.get(VAULT_KEY_ENV) or None
    if key_file is not None:
        return read_key_file(named)
    return read_key_file(named, f"vault key file (${VAULT_KEY_FILE_ENV})")


def is_new_vault(path: Path, *, create: bool, ask: bool) -> bool:
    """
    Whether apply is to create the vault at ``path``: only when none is there, and then
    only with ``create`` (``--create-vault``) or a yes to the question on the terminal
    (``ask``). An existing vault is never silently stood in for by a new one at a
    mistyped path.

    Raises:
        VaultMissingError: no vault at ``path``, and none is to be created.
    """
    if SecretsVault.exists(path) or create:
        return not SecretsVault.exists(path)
    if ask and sys.stdin is not None and sys.stdin.isatty():
        print(f"Create a new vault {path}? [y/N] ", end="", file=sys.stderr, flush=True)
        if _read_answer().strip().lower() in {"y", "yes"}:
            return True
    detail = "no vault here; check the path (--vault), or pass --create-vault to create a new one"
    raise VaultMissingError(str(path), detail)


def _read_answer() -> str:
    # asyncio's SIGINT handler only cancels the main task, which a blocking read of the
    # terminal never notices: while asking, Ctrl-C interrupts the read.
    if threading.current_thread() is not threading.main_thread():
        return sys.stdin.readline()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return sys.stdin.readline()
    finally:
        signal.signal(signal.SIGINT, previous)
