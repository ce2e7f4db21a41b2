"""``bitget-keys audit verify`` and ``audit show``, and where every command finds the audit log."""

from __future__ import annotations

import argparse
import json
import stat
from pathlib import Path

import pytest

from bitget_keys.cli import build_parser, main
from bitget_keys.cli.audit import audit_log_for, audit_log_path_for
from bitget_keys.cli.environment import VARIABLES
from bitget_keys.cli.exits import ExitCode, exit_code_for
from bitget_keys.provision.audit_log import (
    AuditLog,
    AuditLogDamagedError,
    AuditLogWriteError,
    verify_audit_log,
)


@pytest.fixture(autouse=True)
def _no_audit_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BITGET_KEYS_AUDIT_LOG", raising=False)
    monkeypatch.delenv("BITGET_KEYS_STATE", raising=False)


def fill(path: Path, count: int = 3) -> str:
    """``count`` entries; the last hash."""
    log = AuditLog(path)
    entry = None
    for number in range(count):
        entry = log.record(
            "rotate.create", account=f"desk-{number % 2}", target=f"alpha/k{number}", outcome="ok"
        )
    assert entry is not None
    return entry.hash


def damage_line(path: Path, number: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    data = json.loads(lines[number - 1])
    data["outcome"] = "failed"
    lines[number - 1] = json.dumps(data).encode() + b"\n"
    path.write_bytes(b"".join(lines))


def test_verify_reports_an_intact_chain_and_its_last_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    last = fill(path, 5)
    assert main(["audit", "verify", "--audit-log", str(path)]) == ExitCode.OK
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"audit log {path}: 5 entries, chain intact"
    assert out[1] == f"last hash: {last} (seq 5)"
    assert "--expect-hash" in out[2]


def test_verify_names_each_damaged_line_and_exits_65(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 5)
    damage_line(path, 2)
    with path.open("ab") as file:
        file.write(b'{"seq": 6, "ti')  # a write cut short
    assert main(["audit", "verify", "--audit-log", str(path)]) == ExitCode.INVALID_INPUT
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"audit log {path}: 6 entries, 2 damaged"
    assert out[1].startswith("  line 2: altered: its hash does not match its content")
    assert out[2].startswith("  line 6: incomplete")
    assert out[3].startswith("last intact hash: ")
    assert out[3].endswith("(seq 5)")


def test_verify_of_a_missing_log_exits_66(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "none.jsonl"
    assert main(["audit", "verify", "--audit-log", str(path)]) == ExitCode.NO_INPUT
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"audit log {path}: no audit log here" in captured.err
    assert not path.exists()  # checking never creates the log


def test_verify_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    last = fill(path, 3)
    assert main(["audit", "verify", "--audit-log", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "path": str(path),
        "ok": True,
        "missing": False,
        "entries": 3,
        "last_seq": 3,
        "last_hash": last,
        "problems": [],
    }
    damage_line(path, 3)
    assert main(["audit", "verify", "--audit-log", str(path), "--json"]) == 65
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    assert [problem["line"] for problem in document["problems"]] == [3]
    assert document["last_seq"] == 2
    assert main(["audit", "verify", "--audit-log", str(tmp_path / "x"), "--json"]) == 66
    assert json.loads(capsys.readouterr().out)["missing"] is True


def test_verify_expect_hash_shows_a_removed_tail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    kept = fill(path, 4)
    assert main(["audit", "verify", "--audit-log", str(path), "--expect-hash", kept]) == 0
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))
    assert main(["audit", "verify", "--audit-log", str(path)]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", "--audit-log", str(path), "--expect-hash", kept.upper()]) == 65
    assert f"no intact entry has the hash {kept}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as raised:
        main(["audit", "verify", "--audit-log", str(path), "--expect-hash", "abc"])
    assert raised.value.code == ExitCode.USAGE
    assert "expected 64 hex digits" in capsys.readouterr().err


def test_show_prints_a_table_and_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record("revoke", account="desk-a", target="bg_1", outcome="ok", detail="deleted")
    log.record("freeze", account="desk-b", target="alphabot", outcome="failed", detail="a\n\x1b[2J")
    assert main(["audit", "show", "--audit-log", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "SEQ",
        "TIME",
        "ACTOR",
        "OPERATION",
        "ACCOUNT",
        "TARGET",
        "OUTCOME",
        "DETAIL",
    ]
    assert out[1].split()[3:] == ["revoke", "desk-a", "bg_1", "ok", "deleted"]
    assert out[2].split()[3:] == ["freeze", "desk-b", "alphabot", "failed", "a\\n\\x1b[2J"]
    assert len(out) == 3
    assert main(["audit", "show", "--audit-log", str(path), "--json", "--account", "desk-b"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["target"] == "alphabot"


def test_show_warns_of_damage_and_a_missing_log_exits_66(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 3)
    damage_line(path, 1)
    assert main(["audit", "show", "--audit-log", str(path)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 4
    assert "is damaged at 1 line(s); `bitget-keys audit verify` names them" in captured.err
    assert main(["audit", "show", "--audit-log", str(tmp_path / "none")]) == 66


# -- where the audit log is --------------------------------------------------------------


def parse(*words: str) -> argparse.Namespace:
    return build_parser().parse_args(["audit", "verify", *words])


def test_the_log_is_beside_the_state_file_unless_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert audit_log_path_for(parse()) == Path("bitget-keys.state.audit.jsonl")
    state = tmp_path / "ops" / "desk.state"
    assert audit_log_path_for(parse("--state", str(state))) == state.with_name(
        "desk.state.audit.jsonl"
    )
    monkeypatch.setenv("BITGET_KEYS_STATE", str(state))
    assert audit_log_path_for(parse()) == state.with_name("desk.state.audit.jsonl")
    monkeypatch.setenv("BITGET_KEYS_AUDIT_LOG", str(tmp_path / "env.jsonl"))
    assert audit_log_path_for(parse("--state", "x.state")) == tmp_path / "env.jsonl"
    given = tmp_path / "given.jsonl"
    assert audit_log_path_for(parse("--audit-log", str(given))) == given
    # A command without --state or --audit-log options follows the same rule.
    monkeypatch.delenv("BITGET_KEYS_AUDIT_LOG")
    assert audit_log_path_for(argparse.Namespace()) == state.with_name("desk.state.audit.jsonl")


def test_verify_finds_the_log_beside_the_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "desk.state"
    fill(tmp_path / "desk.state.audit.jsonl", 2)
    assert main(["audit", "verify", "--state", str(state)]) == 0
    assert "2 entries, chain intact" in capsys.readouterr().out


def test_audit_log_for_opens_the_log_for_appending(tmp_path: Path) -> None:
    args = argparse.Namespace(state=tmp_path / "desk.state", audit_log=None)
    log = audit_log_for(args)
    log.record("import", account="desk-a", target="bg_1", outcome="ok")
    path = tmp_path / "desk.state.audit.jsonl"
    assert log.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert verify_audit_log(path).ok
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(AuditLogDamagedError):
        audit_log_for(args)


def test_audit_errors_have_their_exit_codes() -> None:
    damaged = AuditLogDamagedError("a.jsonl", "line 3, the last, is incomplete", 3)
    assert exit_code_for(damaged) == ExitCode.INVALID_INPUT
    assert exit_code_for(AuditLogWriteError("a.jsonl", "could not write")) == ExitCode.IO_ERROR


def test_the_variable_is_in_the_table() -> None:
    (variable,) = [v for v in VARIABLES if v.name == "BITGET_KEYS_AUDIT_LOG"]
    assert "--audit-log" in variable.meaning
    assert not variable.secret
