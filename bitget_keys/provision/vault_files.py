"""
The vault's file operations: locked reads, whole fsynced writes, private files.

Readers take a shared ``flock`` while they read, so they never see half a record; an
append writes its line whole and fsyncs it, and a failed write is cut back off.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import logging
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Final

from bitget_keys.errors import VaultError

__all__ = [
    "Writer",
    "fsync_directory",
    "identity",
    "keep_aside",
    "read_all",
    "read_locked",
    "write_private_file",
    "write_whole",
]

#: How `SecretsVault.append` writes bytes: ``os.write``'s signature (tests inject failures).
Writer = Callable[[int, memoryview], int]

_log: Final = logging.getLogger("bitget_keys.vault")


def read_locked(path: Path) -> tuple[bytes, os.stat_result]:
    """The whole file and its status, read under a shared lock (no append is half done)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise VaultError(str(path), f"cannot read: {exc.strerror}") from exc
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise VaultError(str(path), "is a directory, not a vault file")
        fcntl.flock(descriptor, fcntl.LOCK_SH)
        info = os.fstat(descriptor)
        return read_all(descriptor, info.st_size), info
    except OSError as exc:
        raise VaultError(str(path), f"cannot read: {exc.strerror}") from exc
    finally:
        os.close(descriptor)


def read_all(descriptor: int, size: int) -> bytes:
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(descriptor, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def identity(info: os.stat_result) -> tuple[int, int]:
    """What tells one file from another that replaced it under the same name."""
    return info.st_dev, info.st_ino


def write_whole(path: Path, descriptor: int, data: bytes, size_before: int, writer: Writer) -> None:
    """Write and fsync ``data``; on failure cut the file back to ``size_before``."""
    try:
        _write_all(descriptor, data, writer)
    except OSError:
        # Best effort: leave no part of this record behind, so the file ends with
        # the last record that was reported stored.
        try:
            os.ftruncate(descriptor, size_before)
            os.fsync(descriptor)
        except OSError as exc:
            _log.warning("could not cut %s back after a failed write: %s", path, exc)
        raise


def _write_all(descriptor: int, data: bytes, writer: Writer) -> None:
    view = memoryview(data)
    while view:
        written = writer(descriptor, view)
        if written <= 0:
            raise OSError(errno.EIO, "the write made no progress")
        view = view[written:]
    os.fsync(descriptor)


def keep_aside(path: Path, why: str = "damaged") -> Path:
    """Give the file at ``path`` a second name, ``<name>.<why>-<UTC time>``; return it."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1, 1000):
        suffix = "" if attempt == 1 else f"-{attempt}"
        kept = path.with_name(f"{path.name}.{why}-{stamp}{suffix}")
        try:
            os.link(path, kept)
        except FileExistsError:
            continue
        fsync_directory(path.parent)
        return kept
    raise FileExistsError(errno.EEXIST, f"no free name to keep the {why} vault", str(path))


def write_private_file(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False
) -> None:
    """
    Write ``data`` to a file only its owner can read (mode 0600), atomically.

    The bytes go to a temporary file beside ``path``, are fsynced, and the file is then
    moved into place, so ``path`` either does not change or holds all of ``data`` (never
    a part, never a moment with looser permissions). Without ``overwrite`` the move
    refuses an existing ``path``, even one that appears meanwhile.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        OSError: the file could not be written; nothing was left behind.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        if overwrite:
            temporary.replace(target)
        else:
            # A hard link is an atomic "create unless it exists".
            os.link(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(target.parent)


def fsync_directory(directory: Path) -> None:
    """Make a file's creation, rename or growth in ``directory`` survive a power loss."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
