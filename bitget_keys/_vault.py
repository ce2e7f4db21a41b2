"""
`SecretsVault`: the only place where secrets Bitget shows once touch the disk.

File format (one line each, UTF-8)::

    {"format": "bitget-keys-vault", "version": 1, "kdf": {...}, "check": "..."}
    <base64(nonce || AES-256-GCM(record JSON))>
    <base64(nonce || AES-256-GCM(record JSON))>
    ...

- The key is derived from a passphrase with scrypt and the salt in the header line.
  ``check`` is a known plaintext encrypted with that key, so a wrong passphrase is told
  apart from a damaged file before any record is read.
- Records are sealed with AES-256-GCM under a fresh 96-bit nonce, with the header's salt
  as associated data: a record copied from another vault, or altered by one bit, fails to
  open and is reported by line number.
- The file is created with mode 0600 and only ever appended to. Each record is written
  with one ``write`` and ``fsync``-ed before `append` returns, so a record that was
  reported stored survives a crash. A crash in the middle of a write can leave a torn
  last line, which readers report (`VaultError`) instead of silently skipping.

Exports of the secrets in clear go through `write_private_file`: mode 0600 from the
first byte, written whole and fsynced before it appears under its name.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bitget_keys._secret import REDACTED, Secret, to_secret
from bitget_keys.errors import ConfigurationError, VaultError

__all__ = ["VAULT_KEY_ENV", "SecretsVault", "VaultRecord", "write_private_file"]

#: The environment variable holding the vault passphrase.
VAULT_KEY_ENV: Final = "BITGET_KEYS_VAULT_KEY"

_FORMAT: Final = "bitget-keys-vault"
_VERSION: Final = 1
_CHECK_PLAINTEXT: Final = b"bitget-keys vault key check"
_NONCE_BYTES: Final = 12
# scrypt cost: about 60 ms on a small VM, paid once per open.
_SCRYPT_N: Final = 2**15
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_MIN_PASSPHRASE: Final = 12


def _optional_secret(value: str | Secret | None) -> Secret | None:
    return None if value is None else to_secret(value)


def _strings(values: Any) -> tuple[str, ...]:
    return tuple(str(value) for value in values)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@attrs.frozen(kw_only=True)
class VaultRecord:
    """One key as created: where it lives, its secret and its passphrase."""

    #: What made the key: ``virtual_subaccount_key``, ``copy_key``, ``broker_key``, ...
    kind: str
    #: The plan's name for the master account.
    account: str
    #: The master UID that owns the sub-account.
    master_uid: str
    api_key: str
    secret_key: Secret = attrs.field(converter=to_secret, repr=False)
    passphrase: Secret | None = attrs.field(default=None, converter=_optional_secret, repr=False)
    label: str = ""
    subaccount_uid: str | None = None
    subaccount_name: str | None = None
    #: The plan's label for the sub-account (records written before it existed: ``None``).
    subaccount_label: str | None = None
    permissions: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    ip_list: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    created_at: str = attrs.field(factory=_now)

    @property
    def qualified_label(self) -> str:
        """``SUBACCOUNT/LABEL`` for a sub-account key (its Bitget name), else the label."""
        if self.subaccount_name is None:
            return self.label
        return f"{self.subaccount_name}/{self.label}"

    @property
    def plan_label(self) -> str | None:
        """``SUBACCOUNT-LABEL/LABEL`` as the plan and apply's output name the key, if known."""
        if self.subaccount_label is None:
            return None
        return f"{self.subaccount_label}/{self.label}"

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """
        A JSON-ready view, fields in declaration order.

        The secret key and passphrase are ``********`` unless ``reveal`` is true; a key
        without a passphrase has ``None`` either way.
        """
        data = attrs.asdict(self, recurse=False)
        data["secret_key"] = self.secret_key.reveal() if reveal else REDACTED
        if self.passphrase is not None:
            data["passphrase"] = self.passphrase.reveal() if reveal else REDACTED
        data["permissions"] = list(self.permissions)
        data["ip_list"] = list(self.ip_list)
        return data

    def to_json(self) -> bytes:
        """The record's plaintext, secrets included: only ever encrypted."""
        return orjson.dumps(self.to_dict(reveal=True))

    @classmethod
    def from_json(cls, raw: bytes) -> VaultRecord:
        """Rebuild a record from its plaintext; fields added later are ignored."""
        data = orjson.loads(raw)
        names = {field.name for field in attrs.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


def _derive_key(passphrase: Secret, salt: bytes, n: int, r: int, p: int) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=n, r=r, p=p)
    return kdf.derive(passphrase.reveal().encode())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class SecretsVault:
    """
    An encrypted, append-only file of created keys and their secrets.

    Open it with `SecretsVault.open` (created when missing). `append` returns only once
    the record is on disk. Safe to share between threads of one process.
    """

    __slots__ = ("_aead", "_count", "_lock", "_path", "_salt")

    def __init__(self, path: Path, aead: AESGCM, salt: bytes, count: int) -> None:
        self._path = path
        self._aead = aead
        self._salt = salt
        self._count = count
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<SecretsVault {str(self._path)!r} records={self._count}>"

    @property
    def path(self) -> Path:
        """Where the vault lives."""
        return self._path

    def __len__(self) -> int:
        return self._count

    @staticmethod
    def exists(path: str | os.PathLike[str]) -> bool:
        """Whether `open` would find a vault at ``path`` (rather than create one)."""
        vault_path = Path(path)
        return vault_path.exists() and vault_path.stat().st_size > 0

    @classmethod
    def open(cls, path: str | os.PathLike[str], passphrase: str | Secret) -> SecretsVault:
        """
        Open the vault at ``path`` with ``passphrase``, creating it when missing.

        Raises:
            ConfigurationError: the passphrase is shorter than 12 characters (new vault).
            VaultError: the passphrase is wrong, or the file is not a vault.
        """
        secret = to_secret(passphrase)
        vault_path = Path(path)
        if not cls.exists(vault_path):
            return cls._create(vault_path, secret)
        with vault_path.open("rb") as file:
            header_line = file.readline()
            count = sum(1 for line in file if line.strip())
        header = cls._read_header(vault_path, header_line)
        kdf = header["kdf"]
        salt = base64.b64decode(kdf["salt"])
        aead = AESGCM(_derive_key(secret, salt, kdf["n"], kdf["r"], kdf["p"]))
        try:
            check = base64.b64decode(header["check"])
            plaintext = aead.decrypt(check[:_NONCE_BYTES], check[_NONCE_BYTES:], salt)
        except (InvalidTag, ValueError) as exc:
            msg = "the vault key is wrong (the key check does not decrypt)"
            raise VaultError(str(vault_path), msg) from exc
        if plaintext != _CHECK_PLAINTEXT:
            raise VaultError(str(vault_path), "the vault key check holds the wrong text")
        return cls(vault_path, aead, salt, count)

    @staticmethod
    def _read_header(path: Path, line: bytes) -> dict[str, Any]:
        try:
            header = orjson.loads(line)
        except orjson.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise VaultError(str(path), "not a bitget-keys vault")
        if header.get("version") != _VERSION:
            raise VaultError(str(path), f"unknown vault version {header.get('version')!r}")
        return header

    @staticmethod
    def check_new_passphrase(passphrase: str | Secret) -> None:
        """
        Refuse a passphrase too weak for a new vault, before anything is created.

        Raises:
            ConfigurationError: the passphrase is shorter than 12 characters.
        """
        if len(passphrase) < _MIN_PASSPHRASE:
            msg = f"a new vault needs a passphrase of at least {_MIN_PASSPHRASE} characters"
            raise ConfigurationError(msg)

    @classmethod
    def _create(cls, path: Path, passphrase: Secret) -> SecretsVault:
        cls.check_new_passphrase(passphrase)
        salt = secrets.token_bytes(16)
        aead = AESGCM(_derive_key(passphrase, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P))
        nonce = secrets.token_bytes(_NONCE_BYTES)
        header = {
            "format": _FORMAT,
            "version": _VERSION,
            "kdf": {
                "name": "scrypt",
                "salt": _b64(salt),
                "n": _SCRYPT_N,
                "r": _SCRYPT_R,
                "p": _SCRYPT_P,
            },
            "check": _b64(nonce + aead.encrypt(nonce, _CHECK_PLAINTEXT, salt)),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole and renamed into place, so a vault file always has its header. An
        # empty file left where the vault belongs is replaced.
        write_private_file(path, orjson.dumps(header) + b"\n", overwrite=True)
        return cls(path, aead, salt, 0)

    def append(self, record: VaultRecord) -> None:
        """
        Encrypt ``record`` and append it; return only once it is on disk.

        Raises:
            VaultError: the write failed; the record is not stored.
        """
        nonce = secrets.token_bytes(_NONCE_BYTES)
        line = _b64(nonce + self._aead.encrypt(nonce, record.to_json(), self._salt)).encode()
        with self._lock:
            try:
                descriptor = os.open(self._path, os.O_WRONLY | os.O_APPEND)
            except OSError as exc:
                raise VaultError(str(self._path), f"could not write: {exc.strerror}") from exc
            try:
                size = os.fstat(descriptor).st_size
                try:
                    view = memoryview(line + b"\n")
                    while view:
                        view = view[os.write(descriptor, view) :]
                    os.fsync(descriptor)
                except OSError as exc:
                    # Never leave a torn record behind: cut back to the last whole one.
                    with contextlib.suppress(OSError):
                        os.ftruncate(descriptor, size)
                        os.fsync(descriptor)
                    raise VaultError(str(self._path), f"could not write: {exc.strerror}") from exc
            finally:
                os.close(descriptor)
            self._count += 1

    def records(self) -> Iterator[VaultRecord]:
        """
        Every record, oldest first.

        Raises:
            VaultError: a record does not decrypt (tampered, torn, or from another vault).
        """
        with self._path.open("rb") as file:
            file.readline()
            for number, line in enumerate(file, start=2):
                text = line.strip()
                if not text:
                    continue
                try:
                    sealed = base64.b64decode(text, validate=True)
                    plaintext = self._aead.decrypt(
                        sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], self._salt
                    )
                except (InvalidTag, ValueError) as exc:
                    reason = (
                        "torn or tampered" if line.endswith(b"\n") else "torn (incomplete write)"
                    )
                    raise VaultError(str(self._path), f"line {number} is {reason}") from exc
                yield VaultRecord.from_json(plaintext)


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
    _fsync_directory(target.parent)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
