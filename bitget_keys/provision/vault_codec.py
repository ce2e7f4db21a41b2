"""
`RecordCodec`: sealing vault records into lines, and reading lines back into records.

A record line is ``base64(nonce || AES-256-GCM(plaintext))`` with the header's salt as
associated data; a version-2 plaintext carries the record's sequence number, so a
removed, repeated or reordered line is found when the lines are scanned.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from pathlib import Path

import attrs
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bitget_keys._secret import Secret
from bitget_keys.errors import VaultError
from bitget_keys.provision.vault_format import (
    CHECK_PLAINTEXT,
    NONCE_BYTES,
    VERSION,
    Header,
    Line,
    b64,
    split_lines,
)
from bitget_keys.provision.vault_kdf import Kdf, default_kdf
from bitget_keys.provision.vault_records import Damage, StoredRecord, VaultRecord

__all__ = ["RecordCodec"]


@attrs.define
class RecordCodec:
    """The key and header of one vault: seals records and opens (scans) their lines."""

    aead: AESGCM
    header: Header

    @classmethod
    def new(cls, passphrase: Secret, kdf: Kdf | None = None) -> RecordCodec:
        """
        A fresh salt and key for a new (or rekeyed) vault, with its check value.

        ``kdf`` is `default_kdf()` unless given (tests pass a cheap one).
        """
        kdf = default_kdf() if kdf is None else kdf
        salt = secrets.token_bytes(16)
        aead = AESGCM(kdf.derive(passphrase, salt))
        nonce = secrets.token_bytes(NONCE_BYTES)
        check = nonce + aead.encrypt(nonce, CHECK_PLAINTEXT, salt)
        header = Header(version=VERSION, salt=salt, kdf=kdf, check=check)
        return cls(aead, header)

    def line(self, record: VaultRecord, sequence: int, version: int) -> bytes:
        """The sealed line of ``record`` as a vault of ``version`` stores it."""
        if version == 1:
            plaintext = record.to_json()
        else:
            plaintext = orjson.dumps({"seq": sequence, "record": record.to_dict(reveal=True)})
        nonce = secrets.token_bytes(NONCE_BYTES)
        return b64(nonce + self.aead.encrypt(nonce, plaintext, self.header.salt)).encode()

    def unseal(self, version: int, text: bytes) -> tuple[int | None, VaultRecord] | None:
        """The sequence number and record of a line; ``None`` when it does not decrypt."""
        try:
            sealed = base64.b64decode(text, validate=True)
            plaintext = self.aead.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self.header.salt
            )
        except (InvalidTag, ValueError):
            return None
        try:
            if version == 1:
                return None, VaultRecord.from_json(plaintext)
            data = orjson.loads(plaintext)
            sequence = data["seq"]
            if type(sequence) is not int or sequence < 1:
                return None
            return sequence, VaultRecord.from_dict(data["record"])
        except (KeyError, TypeError, ValueError):
            return None

    def scan(
        self, lines: Sequence[Line], start: int, version: int
    ) -> tuple[list[StoredRecord], list[Damage]]:
        """The intact records of ``lines[start:]``, and what is damaged, by line."""
        entries: list[StoredRecord] = []
        damage: list[Damage] = []
        seen: dict[int, int] = {}
        highest = 0
        damaged_since = 0  # lines that did not decrypt since the last intact record
        for line in lines[start:]:
            if not line.text:
                continue
            opened = self.unseal(version, line.text)
            if opened is None:
                reason = (
                    "does not decrypt: altered, or from another vault"
                    if line.terminated
                    else "torn (incomplete write)"
                )
                damage.append(Damage(line.number, reason))
                damaged_since += 1
                continue
            sequence, record = opened
            if sequence is not None:
                if sequence in seen:
                    reason = f"repeats record {sequence} of line {seen[sequence]} (left out)"
                    damage.append(Damage(line.number, reason))
                    continue
                if sequence < highest:
                    reason = f"holds record {sequence} after record {highest} (out of order)"
                    damage.append(Damage(line.number, reason))
                elif sequence - highest - 1 > damaged_since:
                    first, last = highest + 1, sequence - 1
                    which = f"record {first} is" if first == last else f"records {first}-{last} are"
                    why = "a line was removed" if not damaged_since else "lines were removed"
                    damage.append(Damage(line.number, f"{which} missing before it ({why})"))
                seen[sequence] = line.number
                highest = max(highest, sequence)
            damaged_since = 0
            entries.append(StoredRecord(line.number, sequence, record))
        return entries, damage

    def render(self, records: Sequence[VaultRecord], path: Path) -> bytes:
        """A whole version-2 file holding ``records``, checked to read back as them."""
        line = attrs.evolve(self.header, version=VERSION).encode()
        lines = [line, line]
        lines += [self.line(record, number, VERSION) for number, record in enumerate(records, 1)]
        data = b"\n".join(lines) + b"\n"
        entries, damage = self.scan(split_lines(data), 2, VERSION)
        if damage or [entry.record for entry in entries] != list(records):  # pragma: no cover
            raise VaultError(str(path), "the rewritten vault does not read back")
        return data
