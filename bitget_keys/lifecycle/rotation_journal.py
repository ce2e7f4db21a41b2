"""
`RotationJournal`: where each key's rotation stands, in the state file apply uses.

A rotation is a row of its own table (``rotations``) that moves through `Step` one
write at a time, each written *before* the step it names is acted on when that step
sends something (the create) and *after* it when the step only records what happened.
A ``kill -9`` at any point leaves a row that says what may have been done, and the
next ``rotate`` continues from there: it never starts a second rotation of a key
whose rotation is unfinished.

The file is apply's state file: opened first as apply opens it (created 0600, WAL,
``synchronous=FULL``, apply's own table made), then through a connection of its own,
so a rotation's writes never wait behind an apply's transaction of the same process.
No secret is ever written here: the passphrase of a key being made is in the vault,
and the row only names its placeholder record (``passphrase_ref``).
"""

from __future__ import annotations

import enum
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import attrs

from bitget_keys.errors import JournalError
from bitget_keys.provision.journal import open_state_table

__all__ = ["Rotation", "RotationJournal", "Step"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS rotations (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    master_uid TEXT NOT NULL,
    subaccount_uid TEXT NOT NULL,
    target TEXT NOT NULL,
    live_label TEXT NOT NULL,
    family TEXT NOT NULL,
    old_api_key TEXT NOT NULL,
    new_api_key TEXT,
    passphrase_ref TEXT NOT NULL,
    step TEXT NOT NULL,
    grace REAL NOT NULL,
    grace_until REAL,
    orphans TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    started REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS rotations_by_target ON rotations (account, target);
"""


class Step(enum.StrEnum):
    """Where a rotation stands; each is journaled as described."""

    #: Written first: the key, the old key, and the name of the passphrase's record.
    PLANNED = "planned"
    #: The new key's passphrase is in the vault (encrypted), before any create is sent.
    PASSPHRASE_STORED = "passphrase_stored"  # noqa: S105 - a step, not a secret
    #: Written before the create is sent: a key may exist whose answer never came.
    CREATE_SENT = "create_sent"
    #: The new key's secret is in the vault (stage pending).
    CREATED = "created"
    #: A request signed with the new key was answered as its sub-account's, and its
    #: rights and whitelist as listed are the plan's.
    VERIFIED = "verified"
    #: The vault holds the new key as current and the old one as previous.
    PROMOTED = "promoted"
    #: The old key is classic and its passphrase is not held: only the web UI can
    #: revoke it; it stays listed until it is seen revoked or gone.
    REVOKE_MANUAL = "revoke_manual"
    #: The old key is revoked (deleted, or neutralised); the rotation is over.
    DONE = "done"
    #: Bitget refused the create (nothing was made); the rotation is over.
    REFUSED = "refused"

    @property
    def finished(self) -> bool:
        return self in {Step.DONE, Step.REFUSED}


@attrs.frozen(kw_only=True)
class Rotation:
    """One row: a rotation of one key."""

    id: int
    account: str
    master_uid: str
    subaccount_uid: str
    #: ``SUBACCOUNT-LABEL/KEY-LABEL``, as the plan names the key.
    target: str
    #: The label the old key carries at Bitget (the new one gets it too).
    live_label: str
    family: str
    old_api_key: str
    new_api_key: str | None
    #: The API key of the vault record holding the new key's passphrase.
    passphrase_ref: str
    step: Step
    #: Seconds the old key stays valid after the new one is promoted.
    grace: float
    #: When the old key may be revoked (epoch seconds), once promoted.
    grace_until: float | None
    #: Keys a lost create answer left behind, each revoked before creating again.
    orphans: tuple[str, ...]
    detail: str
    started: float
    updated: float


_COLUMNS: Final = tuple(field.name for field in attrs.fields(Rotation))


def _row(values: tuple[Any, ...]) -> Rotation:
    data = dict(zip(_COLUMNS, values, strict=True))
    data["step"] = Step(data["step"])
    data["orphans"] = tuple(data["orphans"].split(",")) if data["orphans"] else ()
    return Rotation(**data)


class RotationJournal:
    """The ``rotations`` table of one state file, on a connection of its own."""

    __slots__ = ("_db", "_path")

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        self._path = Path(path)
        # Apply's journal makes the file (0600), its WAL mode and its own table, so
        # apply reads a state file that rotate made first as its own.
        self._db = open_state_table(self._path, _SCHEMA, busy_timeout=busy_timeout)

    def __repr__(self) -> str:
        return f"<RotationJournal {str(self._path)!r}>"

    def close(self) -> None:
        """Close the connection (`contextlib.closing` closes it after a ``with``)."""
        self._db.close()

    def _run(self, query: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(query, params)
        except sqlite3.Error as exc:
            raise JournalError(str(self._path), f"SQLite failed: {exc}") from exc

    def start(  # noqa: PLR0917 - one row's columns
        self,
        account: str,
        master_uid: str,
        subaccount_uid: str,
        target: str,
        live_label: str,
        family: str,
        old_api_key: str,
        grace: float,
    ) -> Rotation:
        """Write a new rotation down (`Step.PLANNED`) before anything is sent for it."""
        now = time.time()
        ref = f"rotation-passphrase:{uuid.uuid4().hex}"
        cursor = self._run(
            "INSERT INTO rotations (account, master_uid, subaccount_uid, target, live_label, "
            "family, old_api_key, passphrase_ref, step, grace, started, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                account,
                master_uid,
                subaccount_uid,
                target,
                live_label,
                family,
                old_api_key,
                ref,
                Step.PLANNED.value,
                grace,
                now,
                now,
            ),
        )
        found = self.get(int(cursor.lastrowid or 0))
        if found is None:  # pragma: no cover - just inserted
            msg = "the rotation just written is not there"
            raise JournalError(str(self._path), msg)
        return found

    def advance(self, rotation: Rotation, step: Step, **changes: Any) -> Rotation:
        """Record that ``rotation`` reached ``step`` (with the columns ``changes`` names)."""
        if "orphans" in changes:
            changes["orphans"] = ",".join(changes["orphans"])
        changes |= {"step": step.value, "updated": time.time()}
        names = sorted(changes)
        assignments = ", ".join(f"{name} = ?" for name in names)
        self._run(
            f"UPDATE rotations SET {assignments} WHERE id = ?",  # noqa: S608 - column names
            (*(changes[name] for name in names), rotation.id),
        )
        found = self.get(rotation.id)
        if found is None:  # pragma: no cover - rows are never deleted
            msg = f"rotation {rotation.id} vanished"
            raise JournalError(str(self._path), msg)
        return found

    def note(self, rotation: Rotation, detail: str) -> Rotation:
        """Record what stands in a rotation's way, at the step it is at."""
        return self.advance(rotation, rotation.step, detail=detail)

    def get(self, rotation_id: int) -> Rotation | None:
        columns = ", ".join(_COLUMNS)
        row = self._run(
            f"SELECT {columns} FROM rotations WHERE id = ?",  # noqa: S608 - column names
            (rotation_id,),
        ).fetchone()
        return None if row is None else _row(row)

    def rotations(self, account: str | None = None) -> Iterator[Rotation]:
        """Every rotation (of one account), oldest first."""
        columns = ", ".join(_COLUMNS)
        query = f"SELECT {columns} FROM rotations"  # noqa: S608 - column names
        params: tuple[str, ...] = ()
        if account is not None:
            query += " WHERE account = ?"
            params = (account,)
        for row in self._run(query + " ORDER BY id", params).fetchall():
            yield _row(row)

    def unfinished(self, account: str | None = None) -> list[Rotation]:
        """The rotations not over yet, oldest first: at most one per key."""
        return [rotation for rotation in self.rotations(account) if not rotation.step.finished]
