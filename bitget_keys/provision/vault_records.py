"""
What a vault holds and what reading one finds: records, damage, scans and repairs.

A `VaultRecord` is one created key as stored, secrets included (masked in every view
unless revealed); the others describe a vault as read (`VaultScan`: its intact
records and the damaged lines) and what a repair did.
"""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path
from typing import Any, Final

import attrs
import orjson

from bitget_keys._secret import REDACTED, Secret, to_secret
from bitget_keys.errors import SecretNotHeldError
from bitget_keys.provision.vault_kdf import Kdf

__all__ = [
    "PASSPHRASE_PLACEHOLDER_KIND",
    "Damage",
    "Rekey",
    "Repair",
    "Stage",
    "StoredRecord",
    "VaultRecord",
    "VaultScan",
]

#: The kind of a record that holds a rotation's new passphrase before its key exists
#: (so a key whose create answer is lost can still be neutralised); not a key.
PASSPHRASE_PLACEHOLDER_KIND: Final = "rotation_passphrase"  # noqa: S105 - a kind, not a secret


class Stage(enum.StrEnum):
    """
    Where a key stands in its life, as the vault last recorded it.

    A rotation moves a key from ``PENDING`` (created, not yet verified) to ``CURRENT``
    and the key it replaces to ``PREVIOUS`` (still valid for the grace period), then
    to ``REVOKED``. A key made by apply is ``CURRENT`` from the start.
    """

    PENDING = "pending"
    CURRENT = "current"
    PREVIOUS = "previous"
    REVOKED = "revoked"


def _optional_secret(value: str | Secret | None) -> Secret | None:
    return None if value is None else to_secret(value)


def _strings(values: Any) -> tuple[str, ...]:
    return tuple(str(value) for value in values)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@attrs.frozen(kw_only=True)
class VaultRecord:
    """
    One key as created (or imported): where it lives, its secret and its passphrase.

    A key brought in by ``bitget-keys import`` was made elsewhere: its secret is not
    held (``secret_key`` is ``None``), and rotating it is how to get one that is.
    The vault is append-only: a key whose stage changes is stored again, and the
    last record of each API key is the one that counts (`VaultScan.records`).
    """

    #: What made the key: ``virtual_subaccount_key``, ``copy_key``, ``broker_key``, ...
    kind: str
    #: The plan's name for the master account.
    account: str
    #: The master UID that owns the sub-account.
    master_uid: str
    api_key: str
    #: ``None``: the secret is not held (an imported key).
    secret_key: Secret | None = attrs.field(converter=_optional_secret, repr=False)
    passphrase: Secret | None = attrs.field(default=None, converter=_optional_secret, repr=False)
    label: str = ""
    subaccount_uid: str | None = None
    subaccount_name: str | None = None
    #: The plan's label for the sub-account (records written before it existed: ``None``).
    subaccount_label: str | None = None
    permissions: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    ip_list: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    created_at: str = attrs.field(factory=_now)
    #: Which API family made the key: ``v2`` (classic masters; every record written
    #: before unified masters were supported) or ``v3`` (Unified Trading Accounts).
    api_family: str = "v2"
    #: Whether the key may write, as Bitget spells it for its family (``read_only`` /
    #: ``read_write`` for v3, ``readonly`` / ``read_and_write`` for v2); ``None`` when the
    #: create took none (a classic first key: its permissions decide) or for older records.
    perm_type: str | None = None
    #: Where the key stands in its life (records written before stages existed: current).
    stage: Stage = attrs.field(default=Stage.CURRENT, converter=Stage)
    #: When the stage last changed (ISO 8601, UTC); ``None``: when the record was made.
    stage_changed_at: str | None = None
    #: How a revoked key was revoked: ``deleted`` (Bitget removed it) or ``neutralised``
    #: (a classic key stripped of every permission and bound to an unusable whitelist).
    revoked_how: str | None = None

    @property
    def is_key(self) -> bool:
        """Whether the record is a key (not a rotation's passphrase placeholder)."""
        return self.kind != PASSPHRASE_PLACEHOLDER_KIND

    @property
    def held(self) -> bool:
        """Whether the vault holds the key's secret."""
        return self.secret_key is not None

    def secret(self) -> Secret:
        """
        The key's secret.

        Raises:
            SecretNotHeldError: the vault does not hold it (an imported key).
        """
        if self.secret_key is None:
            raise SecretNotHeldError(self.api_key)
        return self.secret_key

    def staged(self, stage: Stage, *, revoked_how: str | None = None) -> VaultRecord:
        """This record at ``stage``, stamped now: the record to append when it changes."""
        return attrs.evolve(
            self, stage=stage, stage_changed_at=_now(), revoked_how=revoked_how or self.revoked_how
        )

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
        without a passphrase, or whose secret is not held, has ``None`` there either way.
        """
        data = attrs.asdict(self, recurse=False)
        if self.secret_key is not None:
            data["secret_key"] = self.secret_key.reveal() if reveal else REDACTED
        data["stage"] = str(self.stage)
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
        return cls.from_dict(orjson.loads(raw))

    @classmethod
    def from_dict(cls, data: Any) -> VaultRecord:
        """
        Rebuild a record from `to_dict(reveal=True)`'s shape; fields added later are ignored.

        Raises:
            TypeError: ``data`` is not a mapping holding a record's required fields.
        """
        if not isinstance(data, dict):
            msg = "a vault record is a JSON object"
            raise TypeError(msg)
        names = {field.name for field in attrs.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


@attrs.frozen
class Damage:
    """One damaged line of a vault file, and what is wrong with it."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@attrs.frozen
class StoredRecord:
    """An intact record and where it is in the file."""

    line: int
    #: Its sequence number (``None`` in a version-1 vault, which has none).
    sequence: int | None
    record: VaultRecord


@attrs.frozen
class VaultScan:
    """What a damage-tolerant read of a vault found: intact records, and damage by line."""

    entries: tuple[StoredRecord, ...]
    damage: tuple[Damage, ...]

    @property
    def records(self) -> tuple[VaultRecord, ...]:
        """
        The intact records, one per key, in file order (a repeated line only once).

        A key stored again (with more known about it, such as the sub-account UID
        Bitget masked when it created the key) has its last record, in its first place.
        """
        merged: dict[str, VaultRecord] = {}
        for entry in self.entries:
            merged[entry.record.api_key] = entry.record
        return tuple(merged.values())

    @property
    def clean(self) -> bool:
        """Whether nothing is damaged."""
        return not self.damage


@attrs.frozen
class Repair:
    """What `SecretsVault.repair` did."""

    #: Intact records in the repaired vault.
    recovered: int
    #: The damage the original had (empty: it was intact).
    damage: tuple[Damage, ...]
    #: The repaired vault; ``None`` when the vault was intact and nothing was written.
    written: Path | None
    #: Where the damaged original now is (its old name holds the repaired vault).
    kept: Path | None


@attrs.frozen
class Rekey:
    """What `SecretsVault.rekey` did."""

    #: Records in the rekeyed vault.
    records: int
    #: The vault as it was, under its old passphrase (delete it once the new one works).
    kept: Path
    #: How the rekeyed vault derives its key.
    kdf: Kdf
