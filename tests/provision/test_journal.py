"""The SQLite journal of provisioning intents."""

from __future__ import annotations

import logging
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bitget_keys.errors import JournalError
from bitget_keys.provision.journal import Journal, Outcome


def test_begin_and_settle(tmp_path: Path) -> None:
    """An intent starts pending and keeps its latest outcome per target."""
    with Journal(tmp_path / "state.db") as journal:
        first = journal.begin("desk-a", "batch_create", "sub:alpha")
        journal.settle(first, Outcome.UNKNOWN, detail="timed out")
        assert [e.target for e in journal.unsettled("desk-a")] == ["sub:alpha"]
        second = journal.begin("desk-a", "batch_create", "sub:alpha")
        journal.settle(second, Outcome.DONE, api_key="bg_x")
        assert journal.unsettled("desk-a") == []
        outcomes = [(e.outcome, e.api_key) for e in journal.entries("desk-a")]
        assert outcomes == [(Outcome.UNKNOWN, None), (Outcome.DONE, "bg_x")]


def test_accounts_are_separate(tmp_path: Path) -> None:
    """Unsettled entries are per account."""
    with Journal(tmp_path / "state.db") as journal:
        journal.begin("desk-a", "create_key", "key:alpha/read")
        assert journal.unsettled("desk-b") == []
        assert len(journal.unsettled("desk-a")) == 1


def test_pending_entry_survives_kill_9(tmp_path: Path) -> None:
    """An intent written before a SIGKILL is there when the journal is reopened."""
    path = tmp_path / "state.db"
    script = (
        "import os, signal, sys\n"
        "from bitget_keys.provision.journal import Journal\n"
        f"j = Journal({str(path)!r})\n"
        "j.begin('desk-a', 'create_key', 'key:alpha/trade')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == -9
    with Journal(path) as journal:
        (entry,) = journal.unsettled("desk-a")
        assert entry.outcome is Outcome.PENDING
        assert entry.target == "key:alpha/trade"


def test_new_state_file_is_private(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The state file (and SQLite's files beside it) is created 0600, without a warning."""
    path = tmp_path / "state.db"
    with Journal(path) as journal:
        journal.begin("desk-a", "key", "key:alpha/trade")
        for file in tmp_path.iterdir():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_loose_state_file_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A state file others can write is used, with a warning naming the chmod to run."""
    path = tmp_path / "state.db"
    Journal(path).close()
    path.chmod(0o664)
    Journal(path).close()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"the state file {path} can be read and written by its group" in warning
    assert "others" in warning
    assert f"chmod 600 {path}" in warning


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    """Garbage, another program's SQLite database, or a directory: JournalError, by name."""
    garbage = tmp_path / "garbage.state"
    garbage.write_bytes(b"not a database at all " * 50)
    with pytest.raises(JournalError, match="is not a bitget-keys state file") as caught:
        Journal(garbage)
    assert str(garbage) in str(caught.value)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE photos (id INTEGER)")
    db.close()
    with pytest.raises(JournalError, match="SQLite database of another program"):
        Journal(foreign)
    with pytest.raises(JournalError, match="is a directory"):
        Journal(tmp_path)


def test_database_is_locked_is_a_clear_error(tmp_path: Path) -> None:
    """A write held by another connection past the busy timeout: JournalError, not sqlite3."""
    path = tmp_path / "state.db"
    Journal(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with Journal(path, busy_timeout=0.05) as journal:
            with pytest.raises(JournalError, match="is locked by another program") as caught:
                journal.begin("desk-a", "key", "key:alpha/trade")
            assert str(path) in str(caught.value)
            assert "database is locked" in str(caught.value)
        other.execute("ROLLBACK")
    finally:
        other.close()
    with Journal(path) as journal:
        journal.begin("desk-a", "key", "key:alpha/trade")
        assert len(journal.unsettled("desk-a")) == 1
