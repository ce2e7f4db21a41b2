"""The SQLite journal of provisioning intents."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bitget_keys._journal import Journal, Outcome


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
        "from bitget_keys._journal import Journal\n"
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
