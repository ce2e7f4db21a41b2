"""
`SecretsVault`: the only place where secrets Bitget shows once touch the disk.

File format, version 2 (one line each, UTF-8)::

    {"format": "bitget-keys-vault", "version": 2, "kdf": {...}, "check": "...", "sha256": "..."}
    <the same header line again>
    <base64(nonce || AES-256-GCM({"seq": 1, "record": {...}}))>
    <base64(nonce || AES-256-GCM({"seq": 2, "record": {...}}))>
    ...

- The key is derived from a passphrase with scrypt and the salt in the header line.
  ``check`` is a known plaintext encrypted with that key, so a wrong passphrase is told
  apart from a damaged file before any record is read.
- ``sha256`` is the digest of the header's other fields (keys sorted): a header altered
  by one bit is reported as damaged, never as a wrong key. The second line is a copy of
  the header, read when the first is damaged.
- Records are sealed with AES-256-GCM under a fresh 96-bit nonce, with the header's salt
  as associated data: a record copied from another vault, or altered by one bit, fails to
  open and is reported by line number. Each record carries its sequence number (1, 2, ...)
  inside the sealed text, so a removed, repeated or reordered line is reported too. (A
  removed *last* line leaves no trace: nothing follows it.)
- The file is created whole (both header lines) under a temporary name and linked into
  place, mode 0600, so no process ever sees a vault without its header or appends to a
  header another process is about to replace. After that it is only appended to: each
  record line is written whole, under an exclusive ``flock`` of the vault file, and
  ``fsync``-ed before `append` returns; a failed write is cut back off (`VaultWriteError`)
  so the file stays as it was. Readers take a shared ``flock`` while they read, so they
  never see half a record. (One *run* at a time is `bitget_keys.provision.lock.FileLock`'s job.)
- A damaged vault still opens: `SecretsVault.scan` returns every intact record with the
  damaged lines, `records` refuses (`VaultDamagedError`), and `SecretsVault.repair`
  writes the intact records into a new file, keeping the damaged one beside it.

Version 1 vaults (one header line without a digest, records without sequence numbers)
are still read; `SecretsVault.upgrade` rewrites one as version 2 with the same
passphrase (``bitget-keys apply`` does so under its lock before it appends).

Exports of the secrets in clear go through `write_private_file`: mode 0600 from the
first byte, written whole and fsynced before it appears under its name.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import attrs

from bitget_keys._secret import Secret, to_secret
from bitget_keys.errors import ConfigurationError, VaultDamagedError, VaultError, VaultWriteError
from bitget_keys.provision.files import loose_permissions
from bitget_keys.provision.vault_codec import RecordCodec
from bitget_keys.provision.vault_files import (
    Writer,
    identity,
    keep_aside,
    read_all,
    read_locked,
    write_private_file,
    write_whole,
)
from bitget_keys.provision.vault_format import VERSION, locate_header, split_lines
from bitget_keys.provision.vault_records import (
    Damage,
    Repair,
    StoredRecord,
    VaultRecord,
    VaultScan,
)

__all__ = [
    "VAULT_KEY_ENV",
    "Damage",
    "Repair",
    "SecretsVault",
    "StoredRecord",
    "VaultRecord",
    "VaultScan",
    "Writer",
    "write_private_file",
]

#: The environment variable holding the vault passphrase.
VAULT_KEY_ENV: Final = "BITGET_KEYS_VAULT_KEY"

#: A file's path, as `open` and its kin take it.
PathArg = str | os.PathLike[str]

_log: Final = logging.getLogger("bitget_keys.vault")
_MIN_PASSPHRASE: Final = 12
_REPAIR_HINT: Final = "`bitget-keys vault repair` recovers them into a repaired vault"


def vault_exists(path: PathArg) -> bool:
    """Whether `open` would find a vault at ``path`` (rather than create one)."""
    try:
        info = Path(path).stat()
    except FileNotFoundError:
        return False
    except OSError:
        return True  # `open` says what is wrong with it
    return not (stat.S_ISREG(info.st_mode) and info.st_size == 0)


def check_new_passphrase(passphrase: str | Secret) -> None:
    """
    Refuse a passphrase too weak for a new vault, before anything is created.

    Raises:
        ConfigurationError: the passphrase is shorter than 12 characters.
    """
    if len(passphrase) < _MIN_PASSPHRASE:
        msg = f"a new vault needs a passphrase of at least {_MIN_PASSPHRASE} characters"
        raise ConfigurationError(msg)


class SecretsVault:
    """
    An encrypted, append-only file of created keys and their secrets.

    Open it with `SecretsVault.open` (created when missing). `append` returns only once
    the record is on disk, and raises `VaultWriteError` (leaving the file as it was)
    when it could not store it. Safe to share between threads of one process; several
    processes may append to one vault, but a run should hold its `FileLock`.

    ``writer`` (``os.write`` by default) is how `append` writes its bytes; tests set it
    to inject a full disk.
    """

    __slots__ = (
        "_codec",
        "_count",
        "_identity",
        "_lock",
        "_next_sequence",
        "_path",
        "_size",
        "writer",
    )

    def __init__(
        self,
        path: Path,
        codec: RecordCodec,
        info: os.stat_result,
        writer: Writer | None = None,
    ) -> None:
        self._path = path
        self._codec = codec
        self._identity = identity(info)
        self._size = info.st_size
        self._count = 0
        self._next_sequence = 1
        self._lock = threading.Lock()
        self.writer: Writer = os.write if writer is None else writer

    def __repr__(self) -> str:
        return f"<SecretsVault {str(self._path)!r} version={self.version} records={self._count}>"

    @property
    def version(self) -> int:
        """The file format's version: 2, or 1 for a vault not yet upgraded."""
        return self._codec.header.version

    @property
    def path(self) -> Path:
        """Where the vault lives."""
        return self._path

    def __len__(self) -> int:
        return self._count

    exists = staticmethod(vault_exists)
    check_new_passphrase = staticmethod(check_new_passphrase)

    @classmethod
    def open(
        cls, path: PathArg, passphrase: str | Secret, *, writer: Writer | None = None
    ) -> SecretsVault:
        """
        Open the vault at ``path`` with ``passphrase``, creating it when missing.

        A vault with damaged records (or a damaged header that its copy replaces) opens;
        `scan` says what is damaged. A vault readable by others is used with a warning.

        Raises:
            ConfigurationError: the passphrase is shorter than 12 characters (new vault).
            VaultDamagedError: the header and its copy are both damaged.
            VaultError: the passphrase is wrong, or the file is not a vault.
        """
        secret = to_secret(passphrase)
        vault_path = Path(path)
        if not cls.exists(vault_path):
            cls.check_new_passphrase(secret)
            return cls._create(vault_path, secret, writer=writer, exclusive=False)
        raw, info = read_locked(vault_path)
        lines = split_lines(raw)
        header, _, start = locate_header(vault_path, lines)
        warning = loose_permissions(vault_path, "vault")
        if warning is not None:
            _log.warning("%s", warning)
        codec = RecordCodec(header.unlock(vault_path, secret), header)
        vault = cls(vault_path, codec, info, writer)
        vault._adopt(vault._codec.scan(lines, start, header.version)[0], info)
        return vault

    @classmethod
    def create_rescue(
        cls, path: PathArg, passphrase: str | Secret, *, writer: Writer | None = None
    ) -> SecretsVault:
        """
        A new, empty vault at ``path`` for records another vault could not store.

        Meant for a full disk: give it a path on another file system and the same
        passphrase as the vault it stands in for; `bitget-keys vault list --vault PATH`
        and the other vault commands read it like any vault.

        Raises:
            VaultError: something exists at ``path``, or it could not be created.
        """
        return cls._create(Path(path), to_secret(passphrase), writer=writer, exclusive=True)

    @classmethod
    def _create(
        cls, path: Path, passphrase: Secret, *, writer: Writer | None, exclusive: bool
    ) -> SecretsVault:
        created = _create_file(path, passphrase, exclusive=exclusive)
        if created is None:
            return cls.open(path, passphrase, writer=writer)
        return cls(path, *created, writer)

    def _adopt(self, entries: Sequence[StoredRecord], info: os.stat_result) -> None:
        """Take the file's current state as known: its size and next sequence number."""
        self._identity = identity(info)
        self._size = info.st_size
        self._count = len(entries)
        self._next_sequence = 1 + max((e.sequence or 0 for e in entries), default=0)

    def append(self, record: VaultRecord) -> None:
        """
        Encrypt ``record`` and append it; return only once it is on disk.

        The line is written whole and fsynced under an exclusive lock of the file. On
        any failure the file is cut back to its size before the write, and the record
        is not stored: keep it.

        Raises:
            VaultWriteError: the record is not stored (whatever went wrong); ``errno``
                says why when the OS said (``ENOSPC`` for a full disk).
        """
        with self._lock:
            descriptor = _open_for_writing(self._path)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                info = os.fstat(descriptor)
                _check_same_file(self._path, self._identity, info)
                if info.st_size != self._size:
                    # Another process appended since: learn its records' numbers.
                    raw = read_all(descriptor, info.st_size)
                    lines = split_lines(raw)
                    _, _, start = locate_header(self._path, lines)
                    self._adopt(self._codec.scan(lines, start, self.version)[0], info)
                line = self._codec.line(record, self._next_sequence, self.version)
                # A line cut short by a crash is closed first, so this record gets a line
                # of its own instead of being glued to the torn one.
                torn = info.st_size > 0 and os.pread(descriptor, 1, info.st_size - 1) != b"\n"
                data = (b"\n" if torn else b"") + line + b"\n"
                write_whole(self._path, descriptor, data, info.st_size, self.writer)
            except OSError as exc:
                detail = f"could not write: {exc.strerror}; the record is not stored"
                raise VaultWriteError(str(self._path), detail, exc.errno) from exc
            except VaultWriteError:
                raise
            except VaultError as exc:
                # The file changed under us into something unreadable: not stored either.
                detail = f"{exc.detail}; the record is not stored"
                raise VaultWriteError(str(self._path), detail) from exc
            finally:
                os.close(descriptor)
            self._size = info.st_size + len(data)
            self._count += 1
            self._next_sequence += 1

    def _scan_bytes(self, raw: bytes) -> VaultScan:
        lines = split_lines(raw)
        header, damage, start = locate_header(self._path, lines)
        if header.salt != self._codec.header.salt:
            detail = "the file now holds another vault than the one opened; open it again"
            raise VaultError(str(self._path), detail)
        entries, more = self._codec.scan(lines, start, header.version)
        return VaultScan(tuple(entries), tuple(damage + more))

    def scan(self) -> VaultScan:
        """
        Read every record that is intact, and say which lines are damaged and how.

        Lines that do not decrypt (torn, altered, from another vault), records missing
        between two others, repeated or out of order, and a damaged header or header
        copy are each reported by line; a repeated record is returned once.

        Raises:
            VaultError: the file can no longer be read, or now holds another vault.
        """
        raw, _ = read_locked(self._path)
        return self._scan_bytes(raw)

    def require_intact(self) -> VaultScan:
        """
        `scan`, refusing a vault with any damage.

        Raises:
            VaultDamagedError: something is damaged; every damaged line is listed.
        """
        scan = self.scan()
        if not scan.clean:
            raise _damaged(self._path, scan)
        return scan

    def records(self) -> Iterator[VaultRecord]:
        """
        Every record, oldest first, all or nothing.

        Raises:
            VaultDamagedError: a line is damaged (torn, altered, from another vault,
                missing, repeated or out of order); `scan` reads the intact ones.
        """
        yield from self.require_intact().records

    def upgrade(self) -> bool:
        """
        Rewrite a version-1 vault as version 2, with the same passphrase; atomically.

        Returns whether it rewrote anything (a version-2 vault is left alone).

        Raises:
            VaultDamagedError: the vault is damaged (repair it instead).
            VaultError: it could not be rewritten; the version-1 file is unchanged.
        """
        if self.version == VERSION:
            return False
        with self._lock:
            self._rewrite(None, require_intact=True)
        return True

    def repair(self, output: str | os.PathLike[str] | None = None) -> Repair:
        """
        Write every intact record into a repaired vault (same passphrase), atomically.

        Without ``output`` the repaired vault takes the vault's name and the damaged
        original is kept beside it as ``<name>.damaged-<UTC time>``; with ``output``
        the repaired vault is written there (a new file) and the original is untouched.
        Records are renumbered in their order; a repeated one is kept once. An intact
        vault is left alone unless ``output`` is given (then it is copied).

        Run it under the vault's `FileLock`, so no apply appends meanwhile.

        Raises:
            VaultError: ``output`` exists, or a file could not be written (nothing was
                replaced then).
        """
        with self._lock:
            return self._rewrite(None if output is None else Path(output), require_intact=False)

    def _rewrite(self, output: Path | None, *, require_intact: bool) -> Repair:
        descriptor = _open_for_writing(self._path)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            info = os.fstat(descriptor)
            _check_same_file(self._path, self._identity, info)
            scan = self._scan_bytes(read_all(descriptor, info.st_size))
            if require_intact and not scan.clean:
                raise _damaged(self._path, scan)
            if scan.clean and output is None and self.version == VERSION:
                return Repair(len(scan.entries), (), None, None)
            entries = sorted(scan.entries, key=lambda entry: entry.sequence or 0)
            data = self._codec.render([entry.record for entry in entries], self._path)
            if output is not None:
                _write_new(self._path, output, data)
                return Repair(len(entries), scan.damage, output, None)
            kept = None if scan.clean else keep_aside(self._path)
            write_private_file(self._path, data, overwrite=True)
            new_info = self._path.stat()
        except OSError as exc:
            detail = f"could not write the repaired vault: {exc.strerror}"
            raise VaultError(str(self._path), detail) from exc
        finally:
            os.close(descriptor)
        self._codec.header = attrs.evolve(self._codec.header, version=VERSION)
        self._adopt(self._scan_bytes(data).entries, new_info)
        return Repair(len(entries), scan.damage, self._path, kept)


def _create_file(
    path: Path, passphrase: Secret, *, exclusive: bool
) -> tuple[RecordCodec, os.stat_result] | None:
    """A new vault file (both header lines at once); ``None`` when another made it first."""
    codec = RecordCodec.new(passphrase)
    line = codec.header.encode()
    data = line + b"\n" + line + b"\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Both header lines appear at once, or the file does not appear: a second
            # process creating the same vault finds it whole and opens it instead.
            write_private_file(path, data)
        except FileExistsError:
            if exclusive:
                raise VaultError(str(path), "exists already; name a new file") from None
            if vault_exists(path):
                return None
            write_private_file(path, data, overwrite=True)  # an empty file in its place
        info = path.stat()
    except OSError as exc:
        detail = f"cannot create: {exc.strerror}"
        raise VaultWriteError(str(path), detail, exc.errno) from exc
    return codec, info


def _open_for_writing(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
    except OSError as exc:
        detail = f"cannot open for writing: {exc.strerror}; the record is not stored"
        raise VaultWriteError(str(path), detail, exc.errno) from exc


def _check_same_file(path: Path, opened: tuple[int, int], info: os.stat_result) -> None:
    if identity(info) != opened:
        detail = (
            "the vault file was replaced since it was opened (by a repair, an upgrade or "
            "another program); the record is not stored: open the vault again"
        )
        raise VaultWriteError(str(path), detail)


def _damaged(path: Path, scan: VaultScan) -> VaultDamagedError:
    lines = "; ".join(str(damage) for damage in scan.damage)
    detail = f"damaged: {lines} ({len(scan.entries)} intact record(s); {_REPAIR_HINT})"
    return VaultDamagedError(str(path), detail)


def _write_new(path: Path, output: Path, data: bytes) -> None:
    """Write a repaired vault to ``output``, a new file beside the untouched one."""
    try:
        write_private_file(output, data)
    except FileExistsError as exc:
        detail = f"{output} exists; name a new file for the repaired vault"
        raise VaultError(str(path), detail) from exc
