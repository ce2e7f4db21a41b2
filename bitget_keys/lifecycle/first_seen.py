"""
`FirstSeen`: when this tool first saw each key, kept in the state file.

Bitget tells a unified (v3) key's creation time, and a sub-account's, but not a classic
(v2) key's. A key's age is then counted from the first time ``bitget-keys inventory``
(or ``import``) listed it: a lower bound, which is why every age says where it came
from. The table lives in the state file beside apply's journal, on a connection of its
own, in WAL mode with ``synchronous=FULL`` (a sighting that was written survives a
crash); the file is the journal's, made 0600 by it, so a state file is never mistaken
for another program's database.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final, Self

from bitget_keys.errors import JournalError
from bitget_keys.lifecycle.rotation_journal import RotationJournal
from bitget_keys.provision.journal import open_state_table

__all__ = ["FirstSeen"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS first_seen (
    api_key TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    seen REAL NOT NULL
);
"""


class FirstSeen:
    """
    When each API key was first listed, in epoch seconds; the state file's ``first_seen``.

    ``busy_timeout`` is how long a statement waits for another connection's lock (an
    apply writing its journal) before it fails with `JournalError`.
    """

    __slots__ = ("_db", "_path")

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0) -> None:
        self._path = Path(path)
        self._db = open_state_table(self._path, _SCHEMA, busy_timeout=busy_timeout)

    def _error(self, exc: sqlite3.Error) -> JournalError:
        return JournalError(str(self._path), f"SQLite failed: {exc}")

    def __repr__(self) -> str:
        return f"<FirstSeen {str(self._path)!r}>"

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def sighted(
        self, account: str, api_keys: Iterable[str], *, now: float | None = None
    ) -> dict[str, float]:
        """
        Record that ``api_keys`` (of plan account ``account``) were listed ``now``
        (default: the current time) and return when each was first seen: now for a
        key never seen before, its first sighting otherwise. One transaction.
        """
        keys = list(dict.fromkeys(api_keys))
        when = time.time() if now is None else now
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR IGNORE INTO first_seen (api_key, account, seen) VALUES (?, ?, ?)",
                    [(key, account, when) for key in keys],
                )
                return self._read(keys)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def seen(self, api_keys: Iterable[str]) -> dict[str, float]:
        """When each of ``api_keys`` was first seen; keys never seen are left out."""
        try:
            return self._read(list(api_keys))
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _read(self, keys: list[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        # SQLite bounds a statement's parameters; 500 at a time stays well below.
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT api_key, seen FROM first_seen WHERE api_key IN ({marks})",  # noqa: S608
                chunk,
            ).fetchall()
            found.update({row[0]: row[1] for row in rows})
        return found

    def grace_deadlines(self) -> dict[str, float]:
        """
        When the grace of each key a rotation replaced ends (epoch seconds), as the
        rotation journal in the same file records it.
        """
        with contextlib.closing(RotationJournal(self._path)) as rotations:
            return {
                rotation.old_api_key: rotation.grace_until
                for rotation in rotations.rotations()
                if rotation.grace_until is not None
            }

    def backdate(self, seen: Mapping[str, float]) -> None:
        """Set the first sighting of keys (tests, and keys whose age is known elsewhere)."""
        try:
            with self._db:
                self._db.executemany(
                    "INSERT INTO first_seen (api_key, account, seen) VALUES (?, '', ?) "
                    "ON CONFLICT (api_key) DO UPDATE SET seen = excluded.seen",
                    list(seen.items()),
                )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
