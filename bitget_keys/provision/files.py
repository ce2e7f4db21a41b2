"""
Checks shared by the files a provisioning run keeps: the vault, the state file, locks.

Both the vault and the state file belong to one operator: the vault holds every created
secret (encrypted, but open to offline guessing of its passphrase by anyone who can read
it) and the state file names every key. `loose_permissions` says when someone else can
read or write one of them; the library warns, and ``apply --strict`` refuses.
"""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

from bitget_keys.errors import ConfigurationError

__all__ = ["loose_permissions", "refuse_directory"]


def loose_permissions(path: Path, what: str) -> str | None:
    """
    A sentence naming ``path``, its mode and the ``chmod`` to run when its group or others
    may read or write it; ``None`` when only its owner can (or it does not exist).
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if not mode & 0o066:
        return None
    who = [name for name, bits in (("its group", 0o060), ("others", 0o006)) if mode & bits]
    access = [name for name, bits in (("read", 0o044), ("written", 0o022)) if mode & bits]
    return (
        f"the {what} {path} can be {' and '.join(access)} by {' and '.join(who)} "
        f"(mode {mode:04o}); run: chmod 600 {shlex.quote(str(path))}"
    )


def refuse_directory(path: Path, what: str) -> None:
    """
    Refuse a directory where a file is expected, before anything is read or created.

    Raises:
        ConfigurationError: ``path`` is a directory.
    """
    if path.is_dir():
        msg = f"the {what} {path} is a directory, not a file"
        raise ConfigurationError(msg)
