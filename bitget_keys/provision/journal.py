"""
`Journal`: what provisioning set out to do and what came of it, in SQLite.

Every create is written down as *pending* before its request is sent, and settled as
*done*, *failed* or *unknown* when the answer (or its absence) is known. The database
runs in WAL mode with ``synchronous=FULL``, so an entry that was written survives a
``kill -9`` or a power cut.

The journal never decides whether something exists: each apply reads live state first.
It tells a re-run which items were left *pending* or *unknown* (so their sub-accounts
are read again before anything is created) and lets the report say what happened to
each item. No secret is ever written here; secrets go to the vault.

The file is created with mode 0600 (SQLite gives its ``-wal`` and ``-shm`` files the
same mode); an existing one that others can read is used with a warning. Any SQLite
failure, such as a file that is not a database or one locked by another program past
the busy timeout, is a `JournalError` naming the file.
"""

from __future__ import annotations

import enum
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final, Self

import attrs

from bitget_keys.errors import JournalError
from bitget_keys.provision.files import loose_permissions

__all__ = ["Entry", "Journal", "Outcome", "open_state_table"]

_log: Final = logging.getLogger("bitget_keys.journal")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    api_key TEXT,
    detail TEXT NOT NULL DEFAULT '',
    started REAL NOT NULL,
    settled REAL
);
CREATE INDEX IF NOT EXISTS entries_by_target ON entries (account, target);
"""


class Outcome(enum.StrEnum):
    """Where an item stands."""

    PENDING = "pending"  # written before sending; no answer recorded yet
    DONE = "done"
    FAILED = "failed"  # Bitget refused it; nothing was created
    UNKNOWN = "unknown"  # sent, but no answer: it may exist


@attrs.frozen(kw_only=True)
class Entry:
    """One journal row."""

    id: int
    account: str
    kind: str
    target: str
    outcome: Outcome
    api_key: str | None
    detail: str


class Journal:
    """
    An append-and-settle log of provisioning intents in one SQLite file.

    ``busy_timeout`` is how long a statement waits for another connection's lock before
    it fails (`JournalError`, "locked by another program").
    """

    __slots__ = ("_db", "_path")

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        self._path = Path(path)
        if self._path.is_dir():
            raise JournalError(str(self._path), "is a directory, not a file")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # Created 0600 before SQLite sees it: SQLite would use the umask (often 0644).
            os.close(os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            raise JournalError(str(self._path), f"cannot open: {exc.strerror}") from exc
        warning = loose_permissions(self._path, "state file")
        if warning is not None:
            _log.warning("%s", warning)
        try:
            self._db = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        if tables and "entries" not in tables:
            detail = "is an SQLite database of another program, not a bitget-keys state file"
            raise JournalError(str(self._path), detail)
        try:
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _error(self, exc: sqlite3.Error) -> JournalError:
        return _sqlite_error(self._path, exc)

    def __repr__(self) -> str:
        return f"<Journal {str(self._path)!r}>"

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def begin(self, account: str, kind: str, target: str) -> int:
        """Write down an intent before its request is sent; return its id."""
        try:
            cursor = self._db.execute(
                "INSERT INTO entries (account, kind, target, outcome, started) "
                "VALUES (?, ?, ?, ?, ?)",
                (account, kind, target, Outcome.PENDING.value, time.time()),
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        entry_id = cursor.lastrowid
        if entry_id is None:  # pragma: no cover - sqlite always sets it for INSERT
            msg = "sqlite returned no row id"
            raise RuntimeError(msg)
        return entry_id

    def settle(
        self, entry_id: int, outcome: Outcome, *, api_key: str | None = None, detail: str = ""
    ) -> None:
        """Record how an intent ended."""
        try:
            self._db.execute(
                "UPDATE entries SET outcome = ?, api_key = ?, detail = ?, settled = ? WHERE id = ?",
                (outcome.value, api_key, detail, time.time(), entry_id),
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def entries(self, account: str | None = None) -> Iterator[Entry]:
        """Every entry (of one account), oldest first."""
        query = "SELECT id, account, kind, target, outcome, api_key, detail FROM entries"
        params: tuple[str, ...] = ()
        if account is not None:
            query += " WHERE account = ?"
            params = (account,)
        try:
            rows = self._db.execute(query + " ORDER BY id", params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        for row in rows:
            yield Entry(
                id=row[0],
                account=row[1],
                kind=row[2],
                target=row[3],
                outcome=Outcome(row[4]),
                api_key=row[5],
                detail=row[6],
            )

    def unsettled(self, account: str) -> list[Entry]:
        """This account's entries still *pending* or *unknown*, whose outcome is unclear."""
        latest: dict[str, Entry] = {}
        for entry in self.entries(account):
            latest[entry.target] = entry
        return [
            entry
            for entry in latest.values()
            if entry.outcome in (Outcome.PENDING, Outcome.UNKNOWN)
        ]


def _sqlite_error(path: Path, exc: sqlite3.Error) -> JournalError:
    """What a SQLite failure on the state file at ``path`` means, naming the file."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        detail = (
            f"is locked by another program ({text}); wait for it to finish, or use "
            "another --state file"
        )
    elif isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        detail = f"is not a bitget-keys state file ({text}); name another --state file"
    else:
        detail = f"SQLite failed: {text}"
    return JournalError(str(path), detail)


def open_state_table(
    path: str | Path, schema: str, *, busy_timeout: float = 5.0
) -> sqlite3.Connection:
    """
    A connection of its own to the state file at ``path``, with ``schema`` made: for the
    tables other commands keep beside the journal (rotations, first sightings).

    The journal makes the file first (0600, WAL, its own table) and refuses one that
    is another program's, so whichever command touches a state file first, apply reads
    it as its own. ``busy_timeout`` is how long a statement waits for another
    connection's lock before it fails (`JournalError`).
    """
    path = Path(path)
    Journal(path, busy_timeout=busy_timeout).close()
    try:
        db = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )
    except sqlite3.Error as exc:
        raise _sqlite_error(path, exc) from exc
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
    except sqlite3.Error as exc:
        db.close()
        raise _sqlite_error(path, exc) from exc
    return db
