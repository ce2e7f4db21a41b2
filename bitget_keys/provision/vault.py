"""
`SecretsVault`: the only place where secrets Bitget shows once touch the disk.

File format, version 3 (one line each, UTF-8)::

    {"format": "bitget-keys-vault", "version": 3, "kdf": {...}, "check": "...", "sha256": "..."}
    <the same header line again>
    <base64(nonce || AES-256-GCM({"seq": 1, "record": {...}}))>
    <base64(nonce || AES-256-GCM({"seq": 2, "record": {...}}))>
    ...

- The key is derived from a passphrase and the salt in the header line, with the
  derivation and parameters the header names (`bitget_keys.provision.vault_kdf`:
  Argon2id for new vaults, scrypt for old ones and where OpenSSL lacks Argon2id).
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
- A key may be stored again, with more known about it (the sub-account UID of a first
  key, which Bitget masks in the answer that created it): the later record counts, in
  the place of the first. The first is written the moment the secret arrives; the
  second only adds to it.
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
and version 2 vaults (scrypt only) are still read; `SecretsVault.upgrade` rewrites one
as version 3 with the same passphrase and key (``bitget-keys apply`` does so under its
lock before it appends), and `SecretsVault.rekey` rewrites a vault under a new
passphrase with today's key derivation, keeping the old file beside it.

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
from typing import Final, Literal, overload

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
from bitget_keys.provision.vault_kdf import Kdf
from bitget_keys.provision.vault_records import (
    Damage,
    Rekey,
    Repair,
    StoredRecord,
    VaultRecord,
    VaultScan,
)

__all__ = [
    "VAULT_KEY_ENV",
    "Damage",
    "Rekey",
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

    __slots__ = ("_codec", "_identity", "_keys", "_lock", "_next_seq", "_path", "_size", "writer")

    def __init__(
        self,
        path: Path,
        codec: RecordCodec,
        info: os.stat_result,
        writer: Writer | None = None,
        entries: Sequence[StoredRecord] = (),
    ) -> None:
        self._path = path
        self._codec = codec
        self._adopt(entries, info)
        self._lock = threading.Lock()
        self.writer: Writer = os.write if writer is None else writer

    def __repr__(self) -> str:
        return f"<SecretsVault {str(self._path)!r} version={self.version} records={len(self)}>"

    @property
    def version(self) -> int:
        """The file format's version: 3, or 1 or 2 for a vault not yet upgraded."""
        return self._codec.header.version

    @property
    def path(self) -> Path:
        """Where the vault lives."""
        return self._path

    @property
    def kdf(self) -> Kdf:
        """How the key is derived from the passphrase, as the header says."""
        return self._codec.header.kdf

    def __len__(self) -> int:
        """How many keys the vault holds (a key stored again counts once)."""
        return len(self._keys)

    exists = staticmethod(vault_exists)
    check_new_passphrase = staticmethod(check_new_passphrase)

    @classmethod
    def open(
        cls,
        path: PathArg,
        passphrase: str | Secret,
        *,
        writer: Writer | None = None,
        kdf: Kdf | None = None,
    ) -> SecretsVault:
        """
        Open the vault at ``path`` with ``passphrase``, creating it when missing.

        A vault with damaged records (or a damaged header that its copy replaces) opens;
        `scan` says what is damaged. A vault readable by others is used with a warning.
        ``kdf`` is how a vault created here derives its key (`default_kdf` unless
        given; test suites pass `vault_kdf.FAST_INSECURE`); an existing vault is opened
        with what its header names.

        Raises:
            ConfigurationError: the passphrase is shorter than 12 characters (new vault).
            VaultDamagedError: the header and its copy are both damaged.
            VaultError: the passphrase is wrong, or the file is not a vault.
        """
        secret = to_secret(passphrase)
        vault_path = Path(path)
        if not cls.exists(vault_path):
            cls.check_new_passphrase(secret)
            created = _create_file(vault_path, RecordCodec.new(secret, kdf), exclusive=False)
            if created is not None:
                return cls(vault_path, *created, writer)
        raw, info = read_locked(vault_path)
        lines = split_lines(raw)
        header, _, start = locate_header(vault_path, lines)
        warning = loose_permissions(vault_path, "vault")
        if warning is not None:
            _log.warning("%s", warning)
        codec = RecordCodec(header.unlock(vault_path, secret), header)
        return cls(vault_path, codec, info, writer, codec.scan(lines, start, header.version)[0])

    @classmethod
    def create_rescue(
        cls,
        path: PathArg,
        passphrase: str | Secret,
        *,
        writer: Writer | None = None,
        kdf: Kdf | None = None,
    ) -> SecretsVault:
        """
        A new, empty vault at ``path`` for records another vault could not store.

        Meant for a full disk: give it a path on another file system and the same
        passphrase as the vault it stands in for; `bitget-keys vault list --vault PATH`
        and the other vault commands read it like any vault.

        Raises:
            VaultError: something exists at ``path``, or it could not be created.
        """
        codec = RecordCodec.new(to_secret(passphrase), kdf)
        return cls(Path(path), *_create_file(Path(path), codec, exclusive=True), writer)

    def _adopt(self, entries: Sequence[StoredRecord], info: os.stat_result) -> None:
        """Take the file's current state as known: its size and next sequence number."""
        self._identity = identity(info)
        self._size = info.st_size
        self._keys = {entry.record.api_key for entry in entries}
        self._next_seq = 1 + max((e.sequence or 0 for e in entries), default=0)

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
                line = self._codec.line(record, self._next_seq, self.version)
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
            self._keys.add(record.api_key)
            self._next_seq += 1

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
        Rewrite a version-1 or -2 vault as version 3, with the same key; atomically.

        The key derivation stays (the passphrase is not needed again); `rekey` changes
        it. Returns whether it rewrote anything (a version-3 vault is left alone).

        Raises:
            VaultDamagedError: the vault is damaged (repair it instead).
            VaultError: it could not be rewritten; the version-1 file is unchanged.
        """
        if self.version == VERSION:
            return False
        with self._lock:
            self._rewrite(None, require_intact=True)
        return True

    def rekey(self, passphrase: str | Secret, *, kdf: Kdf | None = None) -> Rekey:
        """
        Rewrite the vault under ``passphrase`` and today's key derivation (or ``kdf``).

        Every record is sealed under a new salt and key, in a file written whole, fsynced
        and read back with ``passphrase`` before it takes the vault's name; the old file
        stays beside it as ``<name>.pre-rekey-<UTC time>``. Run it under the `FileLock`.

        Raises:
            ConfigurationError: ``passphrase`` is shorter than 12 characters.
            VaultDamagedError: the vault is damaged (repair it first); nothing changed.
            VaultError: it could not be rewritten; the vault is unchanged.
        """
        secret = to_secret(passphrase)
        check_new_passphrase(secret)
        codec = RecordCodec.new(secret, kdf)
        with self._lock:
            repair = self._rewrite(None, require_intact=True, rekey=(codec, secret))
        if repair.kept is None:  # pragma: no cover - a rekey always keeps the old file
            raise VaultError(str(self._path), "the old vault was not kept")
        return Rekey(repair.recovered, repair.kept, codec.header.kdf)

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

    def _rewrite(
        self,
        output: Path | None,
        *,
        require_intact: bool,
        rekey: tuple[RecordCodec, Secret] | None = None,
    ) -> Repair:
        descriptor = _open_for_writing(self._path)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            info = os.fstat(descriptor)
            _check_same_file(self._path, self._identity, info)
            scan = self._scan_bytes(read_all(descriptor, info.st_size))
            if require_intact and not scan.clean:
                raise _damaged(self._path, scan)
            if scan.clean and output is None and self.version == VERSION and rekey is None:
                return Repair(len(scan.records), (), None, None)
            codec, repair, data = _write_rewritten(self._path, scan, output, rekey or self._codec)
            if output is not None:
                return repair
            new_info = self._path.stat()
        except OSError as exc:
            detail = f"could not write the rewritten vault: {exc.strerror}"
            raise VaultError(str(self._path), detail) from exc
        finally:
            os.close(descriptor)
        codec.header = attrs.evolve(codec.header, version=VERSION)
        self._codec = codec
        self._adopt(self._scan_bytes(data).entries, new_info)
        return repair


@overload
def _create_file(
    path: Path, codec: RecordCodec, *, exclusive: Literal[True]
) -> tuple[RecordCodec, os.stat_result]: ...
@overload
def _create_file(
    path: Path, codec: RecordCodec, *, exclusive: bool
) -> tuple[RecordCodec, os.stat_result] | None: ...
def _create_file(
    path: Path, codec: RecordCodec, *, exclusive: bool
) -> tuple[RecordCodec, os.stat_result] | None:
    """A new vault file (both header lines at once); ``None`` when another made it first."""
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


def _write_rewritten(
    path: Path,
    scan: VaultScan,
    output: Path | None,
    codec: RecordCodec | tuple[RecordCodec, Secret],
) -> tuple[RecordCodec, Repair, bytes]:
    """
    Write the intact records of ``scan`` whole: to ``output`` (a new file), or in the
    vault's place, the old file kept aside when damaged or (a rekey, ``codec`` with its
    new passphrase) always, the new one read back first.
    """
    codec, passphrase = codec if isinstance(codec, tuple) else (codec, None)
    entries = sorted(scan.entries, key=lambda entry: entry.sequence or 0)
    records = VaultScan(tuple(entries), ()).records
    data = codec.render(records, path)
    if output is not None:
        _write_new(path, output, data)
        return codec, Repair(len(records), scan.damage, output, None), data
    kept = None
    if passphrase is not None:
        _read_back(path, data, passphrase, records)
        kept = keep_aside(path, "pre-rekey")
    elif not scan.clean:
        kept = keep_aside(path)
    write_private_file(path, data, overwrite=True)
    return codec, Repair(len(records), scan.damage, path, kept), data


def _read_back(path: Path, data: bytes, passphrase: Secret, records: Sequence[VaultRecord]) -> None:
    """Open ``data`` as a vault from scratch, with ``passphrase``: it must hold ``records``."""
    lines = split_lines(data)
    header, damage, start = locate_header(path, lines)
    codec = RecordCodec(header.unlock(path, passphrase), header)
    entries, more = codec.scan(lines, start, header.version)
    if damage or more or VaultScan(tuple(entries), ()).records != tuple(records):
        raise VaultError(str(path), "the rewritten vault does not read back; nothing changed")


def _write_new(path: Path, output: Path, data: bytes) -> None:
    """Write a repaired vault to ``output``, a new file beside the untouched one."""
    try:
        write_private_file(output, data)
    except FileExistsError as exc:
        detail = f"{output} exists; name a new file for the repaired vault"
        raise VaultError(str(path), detail) from exc
