"""
The vault file's format: its header (key derivation, key check, checksum) and lines.

The header names the format and version, the key derivation with its parameters and
salt (`bitget_keys.provision.vault_kdf`), and a known plaintext sealed under the derived
key (so a wrong passphrase is told apart from a damaged file), and carries its own
SHA-256; it is written twice, so a damaged first copy is read from the second. See
`bitget_keys.provision.vault` for the records.

Versions: 1 (no digest, no copy, unnumbered records), 2 (scrypt only), 3 (the header
names scrypt or Argon2id; a record may be stored again with more known about its key,
and the later one counts). Version 3 is written; all three are read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bitget_keys._secret import Secret
from bitget_keys.errors import VaultDamagedError, VaultError, VaultKeyError
from bitget_keys.provision.vault_kdf import (
    KDF_MAX_MEMORY,
    LEGACY_SCRYPT,
    Kdf,
    ScryptKdf,
    UnknownKdfError,
    kdf_from_header,
)
from bitget_keys.provision.vault_records import Damage

__all__ = [
    "CHECK_PLAINTEXT",
    "FORMAT",
    "NONCE_BYTES",
    "SCRYPT_MAX_MEMORY",
    "SCRYPT_N",
    "SCRYPT_P",
    "SCRYPT_R",
    "VERSION",
    "Header",
    "Line",
    "b64",
    "derive_key",
    "digest",
    "locate_header",
    "looks_like_header",
    "parse_header",
    "split_lines",
]

#: What the header's ``format`` says, and the version this module writes.
FORMAT: Final = "bitget-keys-vault"
VERSION: Final = 3
#: Sealed in the header under the derived key: a wrong passphrase fails to open it.
CHECK_PLAINTEXT: Final = b"bitget-keys vault key check"
NONCE_BYTES: Final = 12
# The scrypt cost of format versions 1 and 2 (what `LEGACY_SCRYPT` holds).
SCRYPT_N: Final = LEGACY_SCRYPT.n
SCRYPT_R: Final = LEGACY_SCRYPT.r
SCRYPT_P: Final = LEGACY_SCRYPT.p
#: What a header may ask of memory (`vault_kdf.KDF_MAX_MEMORY`; the name predates Argon2id).
SCRYPT_MAX_MEMORY: Final = KDF_MAX_MEMORY


def derive_key(passphrase: Secret, salt: bytes, n: int, r: int, p: int) -> bytes:
    """The scrypt key of format versions 1 and 2 (`ScryptKdf.derive` is the general way)."""
    return ScryptKdf(n=n, r=r, p=p).derive(passphrase, salt)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def digest(fields: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


@attrs.frozen(kw_only=True)
class Header:
    version: int
    salt: bytes = attrs.field(repr=False)
    kdf: Kdf
    check: bytes = attrs.field(repr=False)

    def encode(self) -> bytes:
        """The header line of the version this module writes (without its newline)."""
        fields: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "kdf": {"name": self.kdf.name, "salt": b64(self.salt), **self.kdf.fields()},
            "check": b64(self.check),
        }
        return orjson.dumps({**fields, "sha256": digest(fields)})

    def unlock(self, path: Path, passphrase: Secret) -> AESGCM:
        """The record cipher, once the key check shows ``passphrase`` is this vault's."""
        aead = AESGCM(self.kdf.derive(passphrase, self.salt))
        try:
            plaintext = aead.decrypt(self.check[:NONCE_BYTES], self.check[NONCE_BYTES:], self.salt)
        except InvalidTag as exc:
            msg = "the vault key is wrong (the key check does not decrypt)"
            if self.version == 1:
                msg += "; a version-1 vault cannot tell this from a damaged header"
            raise VaultKeyError(str(path), msg) from exc
        if plaintext != CHECK_PLAINTEXT:
            raise VaultKeyError(str(path), "the vault key check holds the wrong text")
        return aead


def parse_header(path: Path, line: bytes) -> Header | None:
    """The header in ``line``; ``None`` when it is not an intact one."""
    data = _intact_object(path, line)
    if data is None:
        return None
    try:
        return _header_of(data)
    except UnknownKdfError as exc:
        if "sha256" not in data:
            return None  # version 1 has no digest: this is damage
        raise VaultError(str(path), str(exc)) from None


def _intact_object(path: Path, line: bytes) -> dict[str, Any] | None:
    """The header object in ``line`` if its digest (or, version 1, its shape) holds."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    version = data.get("version")
    if "sha256" in data:
        stated = data.pop("sha256")
        if not isinstance(stated, str) or not hmac.compare_digest(stated, digest(data)):
            return None
        if version not in (2, VERSION):
            msg = f"unknown vault version {version!r} (written by a newer bitget-keys?)"
            raise VaultError(str(path), msg)
        data["sha256"] = stated
    elif version != 1:
        return None
    return data


def _header_of(data: dict[str, Any]) -> Header | None:
    version = data["version"]
    try:
        fields = data["kdf"]
        kdf = kdf_from_header(fields)
        # Versions 1 and 2 knew only scrypt.
        if kdf is None or (version != VERSION and not isinstance(kdf, ScryptKdf)):
            return None
        header = Header(
            version=int(version),
            salt=base64.b64decode(fields["salt"], validate=True),
            kdf=kdf,
            check=base64.b64decode(data["check"], validate=True),
        )
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error):
        return None
    sane = len(header.salt) >= 8 and len(header.check) > NONCE_BYTES
    return header if sane else None


def looks_like_header(line: bytes) -> bool:
    return FORMAT.encode() in line or b'"kdf"' in line


@attrs.frozen
class Line:
    number: int
    text: bytes
    #: Whether a newline ends it (a last line without one was cut short).
    terminated: bool


def split_lines(raw: bytes) -> list[Line]:
    pieces = raw.split(b"\n")
    last = len(pieces) - 1
    return [
        Line(index + 1, piece.strip(), index < last)
        for index, piece in enumerate(pieces)
        if index < last or piece
    ]


def locate_header(path: Path, lines: Sequence[Line]) -> tuple[Header, list[Damage], int]:
    """The header, damage to it or its copy, and the index of the first record line."""
    if not lines:
        raise VaultDamagedError(str(path), "the file is empty")
    first = parse_header(path, lines[0].text)
    copy_line = lines[1] if len(lines) > 1 and lines[1].text.startswith(b"{") else None
    if first is not None and first.version == 1:
        return first, [], 1
    if first is not None:
        if copy_line is None:
            return first, [Damage(2, "the copy of the header is missing")], 1
        if copy_line.text != lines[0].text:
            return first, [Damage(2, "the copy of the header is damaged (line 1 is intact)")], 2
        return first, [], 2
    copy = None if copy_line is None else parse_header(path, copy_line.text)
    if copy is not None and copy.version >= 2:
        return copy, [Damage(1, "the header is damaged; it was read from its copy on line 2")], 2
    candidates = [lines[0].text] + ([] if copy_line is None else [copy_line.text])
    if any(looks_like_header(text) for text in candidates):
        which = (
            "the header (line 1) is"
            if copy_line is None
            else "the header (line 1) and its copy (line 2) are"
        )
        msg = (
            f"{which} damaged, so no record can be decrypted (this is damage to the file, "
            "not a wrong vault key)"
        )
        raise VaultDamagedError(str(path), msg)
    raise VaultError(str(path), "not a bitget-keys vault")
