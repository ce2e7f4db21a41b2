"""The state file's first sightings, and how vault commands show a key whose secret is not held."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from bitget_keys.cli import main
from bitget_keys.errors import JournalError
from bitget_keys.lifecycle.first_seen import FirstSeen
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.vault import SecretsVault, VaultRecord

KEY = "a long vault passphrase"


def test_first_sighting_is_kept_and_the_file_is_a_private_state_file(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with FirstSeen(state) as seen:
        assert seen.sighted("desk", ["k1", "k2"], now=100.0) == {"k1": 100.0, "k2": 100.0}
        assert seen.sighted("desk", ["k2", "k3"], now=200.0) == {"k2": 100.0, "k3": 200.0}
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    with FirstSeen(state) as seen:
        assert seen.seen(["k1", "k3", "k9"]) == {"k1": 100.0, "k3": 200.0}
        seen.backdate({"k3": 50.0})
        assert seen.seen(["k3"]) == {"k3": 50.0}
        assert sqlite3.connect(state).execute("PRAGMA journal_mode").fetchone() == ("wal",)
    # Apply's journal shares the file.
    with Journal(state) as journal:
        assert list(journal.entries()) == []


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE notes (x)").connection.commit()
    with pytest.raises(JournalError, match="another program"):
        FirstSeen(other)


def test_vault_list_and_show_of_a_key_whose_secret_is_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", KEY)
    path = tmp_path / "v.vault"
    vault = SecretsVault.open(path, KEY)
    vault.append(
        VaultRecord(
            kind="virtual_subaccount_key",
            account="desk",
            master_uid="1",
            api_key="bg_imported",
            secret_key=None,
            label="bot",
            subaccount_name="handmade",
            subaccount_label="hand",
        )
    )
    assert main(["vault", "list", "--vault", str(path)]) == 0
    assert capfd.readouterr().out.split("\t")[-2:] == ["current", "secret not held\n"]
    assert main(["vault", "show", "hand/bot", "--vault", str(path)]) == 0
    assert "secret_key:" in (out := capfd.readouterr().out)
    assert "(secret not held: imported)" in out
    assert main(["vault", "show", "hand/bot", "--vault", str(path), "--reveal", "--json"]) == 1
    out, err = capfd.readouterr()
    assert json.loads(out)["secret_key"] is None
    assert "does not hold the secret of bg_imported" in err
    assert "bitget-keys rotate" in err


def test_a_maximum_age_that_is_no_duration_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Refused before anything is read: by the parser (64), or from the environment (78)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["inventory", "plan.toml", "--max-age", "2w"])
    assert exit_.value.code == 64
    monkeypatch.setenv("BITGET_KEYS_MAX_KEY_AGE", "soon")
    assert main(["inventory", "plan.toml"]) == 78
    assert "BITGET_KEYS_MAX_KEY_AGE" in capfd.readouterr().err
