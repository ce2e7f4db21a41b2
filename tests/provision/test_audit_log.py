"""The audit log: its lines, the hash chain, what verification finds, and concurrent appends."""

from __future__ import annotations

import datetime as dt
import enum
import errno
import hashlib
import itertools
import json
import logging
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import attrs
import orjson
import pytest

from bitget_keys import Secret
from bitget_keys.provision.audit_log import (
    FIELDS,
    GENESIS,
    AuditEntry,
    AuditLog,
    AuditLogDamagedError,
    AuditLogError,
    AuditLogWriteError,
    audit_log_path,
    current_actor,
    scan_audit_log,
    verify_audit_log,
)

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "provision" / "audit_worker.py"


def fill(path: Path, count: int) -> list[AuditEntry]:
    log = AuditLog(path)
    outcomes = ("ok", "failed", "unknown", "refused")
    return [
        log.record(
            "rotate.create" if number % 2 else "revoke",
            account=f"desk-{number % 3}",
            target=f"alpha/key{number}",
            outcome=outcomes[number % 4],
            detail=f"step {number}",
        )
        for number in range(count)
    ]


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def problem_lines(path: Path, **kwargs: str) -> list[int]:
    return [problem.line for problem in verify_audit_log(path, **kwargs).problems]


def edited(line: bytes, field: str) -> bytes:
    """``line`` with one field changed to another value of its type (still JSON)."""
    data = json.loads(line)
    value = data[field]
    if isinstance(value, int):
        data[field] = value + 1000
    elif field in {"prev", "hash"}:
        data[field] = ("f" if value[0] != "f" else "e") + value[1:]
    else:
        data[field] = value + "x"
    return json.dumps(data).encode() + b"\n"


# -- what a line holds -------------------------------------------------------------------


def test_a_chain_of_many_records_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    entries = fill(path, 120)
    assert [entry.seq for entry in entries] == list(range(1, 121))
    assert entries[0].prev == GENESIS
    assert all(later.prev == earlier.hash for earlier, later in itertools.pairwise(entries))
    check = verify_audit_log(path)
    assert check.ok
    assert check.problems == ()
    assert check.entries == 120
    assert (check.last_seq, check.last_hash) == (120, entries[-1].hash)
    # What was returned is what was written.
    scanned = [entry for _, entry in scan_audit_log(path).entries]
    assert scanned == entries


def test_each_line_holds_exactly_the_named_fields_in_canonical_json(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    moment = dt.datetime(2026, 5, 4, 3, 2, 1, 987654, tzinfo=dt.UTC)
    log = AuditLog(path, clock=lambda: moment)
    entry = log.record("freeze", account="desk-a", target="alphabot", outcome="ok")
    assert [field.name for field in attrs.fields(AuditEntry)] == list(FIELDS)
    (line,) = lines_of(path)
    data = json.loads(line)
    assert set(data) == set(FIELDS)
    assert data == entry.to_dict()
    assert data["time"] == "2026-05-04T03:02:01.987Z"
    assert data["actor"] == current_actor()
    assert re.fullmatch(r"[^@\s]+@\S+", data["actor"])
    assert data["pid"] == os.getpid()
    assert data["detail"] == ""
    # The line is the canonical encoding, and the hash covers every other field.
    assert line == orjson.dumps(data, option=orjson.OPT_SORT_KEYS) + b"\n"
    body = orjson.dumps({k: v for k, v in data.items() if k != "hash"}, option=orjson.OPT_SORT_KEYS)
    assert data["hash"] == hashlib.sha256(body).hexdigest()


def test_a_timestamp_in_another_zone_is_written_in_utc(tmp_path: Path) -> None:
    zone = dt.timezone(dt.timedelta(hours=5, minutes=30))
    moment = dt.datetime(2026, 1, 1, 5, 30, 0, 1000, tzinfo=zone)
    entry = AuditLog(tmp_path / "a.jsonl", clock=lambda: moment).record(
        "import", account="a", target="t", outcome="ok"
    )
    assert entry.time == "2026-01-01T00:00:00.001Z"


def test_newlines_and_control_characters_stay_escaped_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    detail = "first\nsecond\r\x1b[31mred\x00\u202e"
    AuditLog(path).record("modify", account="a\nb", target="t", outcome="failed", detail=detail)
    raw = path.read_bytes()
    assert raw.count(b"\n") == 1
    assert b"\x1b" not in raw
    assert b"\x00" not in raw
    ((_, entry),) = scan_audit_log(path).entries
    assert entry.detail == detail
    assert entry.account == "a\nb"
    assert verify_audit_log(path).ok


def test_a_str_enum_is_written_as_its_value(tmp_path: Path) -> None:
    class Outcome(enum.StrEnum):
        OK = "ok"

    entry = AuditLog(tmp_path / "a.jsonl").record(
        "revoke", account="a", target="t", outcome=Outcome.OK
    )
    assert type(entry.outcome) is str
    assert json.loads(lines_of(tmp_path / "a.jsonl")[0])["outcome"] == "ok"


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"outcome": "done"}, ValueError, "outcome must be one of failed, ok, refused, unknown"),
        ({"operation": "Rotate Create"}, ValueError, "lowercase dotted words"),
        ({"operation": ""}, ValueError, "lowercase dotted words"),
        ({"account": None}, TypeError, "'account' takes a str, not NoneType"),
        ({"target": b"bytes"}, TypeError, "'target' takes a str, not bytes"),
        ({"detail": "\ud800"}, ValueError, "lone surrogate"),
    ],
)
def test_fields_the_log_does_not_take_are_refused_before_anything_is_written(
    tmp_path: Path, changes: dict[str, object], error: type[Exception], match: str
) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    fields: dict[str, object] = {"account": "desk-a", "target": "t", "outcome": "ok"}
    operation = changes.pop("operation", "revoke")
    fields |= changes
    with pytest.raises(error, match=match):
        log.record(operation, **fields)  # type: ignore[arg-type]
    assert path.read_bytes() == b""


def test_no_secret_reaches_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    The environment's secrets (the vault key, a master's credentials) appear nowhere:
    every value comes from the caller's arguments or the process. A `Secret` is refused
    without its value showing in the error.
    """
    secrets = {
        "BITGET_KEYS_VAULT_KEY": "vault-key-5ee7c2a1d9",
        "DESK_A_SECRET_KEY": "0f3a9c0e7b1d2c4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2",
        "DESK_A_PASSPHRASE": "Passphrase-b41c77",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record("rotate.create", account="desk-a", target="alpha/trade", outcome="ok")
    log.record(
        "rotate.revoke", account="desk-a", target="bg_0123", outcome="failed", detail="40006"
    )
    passphrase = Secret("Passphrase-b41c77")
    with pytest.raises(TypeError) as raised:
        log.record("modify", account="desk-a", target="t", outcome="ok", detail=passphrase)  # type: ignore[arg-type]
    assert "Passphrase-b41c77" not in str(raised.value)
    assert "Secret" in str(raised.value)
    text = path.read_text()
    for value in secrets.values():
        assert value not in text
    for line in text.splitlines():
        data = json.loads(line)
        assert set(data) == set(FIELDS)
        passed = {
            "rotate.create",
            "rotate.revoke",
            "desk-a",
            "alpha/trade",
            "bg_0123",
            "ok",
            "failed",
            "40006",
            "",
        }
        written = {data[name] for name in ("operation", "account", "target", "outcome", "detail")}
        assert written <= passed


def test_the_file_is_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "audit.jsonl"
    before = os.umask(0)
    try:
        AuditLog(path).record("freeze", account="a", target="t", outcome="ok")
    finally:
        os.umask(before)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_log_others_can_read_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="bitget_keys.audit_log"):
        AuditLog(path).record("freeze", account="a", target="t", outcome="ok")
    assert f"chmod 600 {path}" in caplog.text
    assert "can be read by its group and others" in caplog.text
    assert verify_audit_log(path).ok


def test_audit_log_path_is_beside_the_state_file(tmp_path: Path) -> None:
    assert (
        audit_log_path(tmp_path / "ops" / "bk.state") == tmp_path / "ops" / "bk.state.audit.jsonl"
    )
    assert audit_log_path(Path("bitget-keys.state")) == Path("bitget-keys.state.audit.jsonl")


def test_a_directory_in_place_of_the_log_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AuditLogError, match="is a directory"):
        AuditLog(tmp_path)
    check = verify_audit_log(tmp_path)
    assert not check.ok
    assert check.missing


# -- verification ------------------------------------------------------------------------

COUNT = 8


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("line", [1, 4, COUNT])
def test_editing_any_field_of_any_line_is_found_at_that_line(
    tmp_path: Path, field: str, line: int
) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, COUNT)
    lines = lines_of(path)
    lines[line - 1] = edited(lines[line - 1], field)
    write_lines(path, lines)
    check = verify_audit_log(path)
    assert not check.ok
    assert [problem.line for problem in check.problems] == [line]
    assert check.entries == COUNT


def test_an_edit_with_its_hash_computed_again_breaks_the_next_link(tmp_path: Path) -> None:
    """Whoever recomputes an altered line's hash still leaves the next line's prev behind."""
    path = tmp_path / "audit.jsonl"
    fill(path, COUNT)
    lines = lines_of(path)
    data = json.loads(lines[2])
    data["outcome"] = "ok" if data["outcome"] != "ok" else "failed"
    data["hash"] = AuditEntry(**data).digest()
    lines[2] = orjson.dumps(data, option=orjson.OPT_SORT_KEYS) + b"\n"
    write_lines(path, lines)
    (problem,) = verify_audit_log(path).problems
    assert problem.line == 4
    assert "prev is not the hash of line 3" in problem.reason


@pytest.mark.parametrize("line", [2, 5, COUNT - 1])
def test_deleting_a_line_is_found_where_it_was(tmp_path: Path, line: int) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, COUNT)
    lines = lines_of(path)
    del lines[line - 1]
    write_lines(path, lines)
    check = verify_audit_log(path)
    (problem,) = check.problems
    assert problem.line == line
    assert f"seq {line + 1} where {line} was expected" in problem.reason
    assert f"prev is not the hash of line {line - 1}" in problem.reason


def test_deleting_the_first_lines_is_found_at_line_1(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, COUNT)
    write_lines(path, lines_of(path)[3:])
    (problem,) = verify_audit_log(path).problems
    assert problem.line == 1
    assert "prev is not 64 zeros" in problem.reason


def test_a_repeated_line_is_found_at_the_copy(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, COUNT)
    lines = lines_of(path)
    lines.insert(4, lines[3])
    write_lines(path, lines)
    assert problem_lines(path) == [5]


@pytest.mark.parametrize("line", [1, 4, COUNT - 1])
def test_reordering_two_lines_is_found_from_the_first_moved(tmp_path: Path, line: int) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, COUNT)
    lines = lines_of(path)
    lines[line - 1], lines[line] = lines[line], lines[line - 1]
    write_lines(path, lines)
    found = problem_lines(path)
    assert found[0] == line
    assert set(found) <= {line, line + 1, line + 2}


def test_a_line_of_garbage_is_found_and_the_chain_goes_on_around_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, COUNT)
    lines = lines_of(path)
    lines.insert(3, b"not json at all\n")
    lines.insert(6, b'["a list"]\n')
    lines.insert(7, b'{"seq": 1}\n')
    write_lines(path, lines)
    check = verify_audit_log(path)
    assert [(p.line, p.reason.split(" (")[0].split(":")[0]) for p in check.problems] == [
        (4, "not JSON"),
        (7, "not a JSON object"),
        (8, "not an audit entry"),
    ]
    assert "missing time, actor" in check.problems[2].reason


def test_a_truncated_last_line_is_found_and_record_refuses_to_chain_onto_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, COUNT)
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size - 30)  # a crash in the middle of the last write
    before = path.read_bytes()
    check = verify_audit_log(path)
    (problem,) = check.problems
    assert problem.line == COUNT
    assert "incomplete" in problem.reason
    assert check.last_seq == COUNT - 1
    for attempt in (lambda: AuditLog(path), lambda: fill_one(path)):
        with pytest.raises(AuditLogDamagedError) as raised:
            attempt()
        message = str(raised.value)
        assert str(path) in message
        assert f"line {COUNT}, the last, is incomplete" in message
        assert "bitget-keys audit verify" in message
        assert raised.value.line == COUNT
    assert path.read_bytes() == before


def fill_one(path: Path) -> None:
    """Open a log (intact when opened), damage its tail meanwhile, then record."""
    raw = path.read_bytes()
    path.write_bytes(b"")
    log = AuditLog(path)
    path.write_bytes(raw)
    log.record("revoke", account="a", target="t", outcome="ok")


@pytest.mark.parametrize("damage", ["edit", "garbage", "blank"])
def test_record_refuses_a_last_line_that_is_altered_or_no_entry(
    tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 3)
    lines = lines_of(path)
    if damage == "edit":
        lines[-1] = edited(lines[-1], "target")
        reason = "was altered"
    elif damage == "garbage":
        lines.append(b"{oops\n")
        reason = "not JSON"
    else:
        lines.append(b"\n")
        reason = "not JSON"
    write_lines(path, lines)
    with pytest.raises(AuditLogDamagedError, match=f"line {len(lines)}, the last, .*{reason}"):
        AuditLog(path)


def test_an_empty_log_is_an_intact_chain_and_a_missing_one_is_not(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    check = verify_audit_log(empty)
    assert check.ok
    assert (check.entries, check.last_hash, check.last_seq) == (0, None, None)
    missing = verify_audit_log(tmp_path / "missing.jsonl")
    assert not missing.ok
    assert missing.missing
    assert [str(problem) for problem in missing.problems] == ["no audit log here"]


def test_removing_the_tail_shows_only_against_a_hash_kept_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    entries = fill(path, COUNT)
    kept = verify_audit_log(path).last_hash
    assert kept == entries[-1].hash
    write_lines(path, lines_of(path)[:-2])
    assert verify_audit_log(path).ok  # an intact, shorter chain
    check = verify_audit_log(path, expect_hash=kept)
    assert not check.ok
    assert [problem.line for problem in check.problems] == [0]
    assert "entries were removed from the end" in check.problems[0].reason
    assert verify_audit_log(path, expect_hash=entries[3].hash).ok
    # A line removed before the kept hash is reported where it was, not as a cut tail.
    lines = lines_of(path)
    del lines[1]
    write_lines(path, lines)
    assert problem_lines(path, expect_hash=entries[3].hash) == [2]
    assert problem_lines(path, expect_hash=kept) == [2, 0]


# -- writing -----------------------------------------------------------------------------


def test_a_failed_write_leaves_the_log_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    fill(path, 2)
    before = path.read_bytes()

    def short(descriptor: int, data: bytes) -> int:
        return os.write(descriptor, data[: len(data) // 2])

    def full(descriptor: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    for writer, match in ((short, "wrote"), (full, "No space left on device")):
        with pytest.raises(AuditLogWriteError, match=f"could not write an entry: .*{match}"):
            AuditLog(path, writer=writer).record("revoke", account="a", target="t", outcome="ok")
        assert path.read_bytes() == before
    with pytest.raises(AuditLogWriteError) as raised:
        AuditLog(path, writer=full).record("revoke", account="a", target="t", outcome="ok")
    assert raised.value.errno == errno.ENOSPC
    entry = AuditLog(path).record("revoke", account="a", target="t", outcome="ok")
    assert entry.seq == 3
    assert verify_audit_log(path).ok


def test_a_log_moved_aside_is_followed_by_a_new_one_at_its_path(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record("freeze", account="a", target="t", outcome="ok")
    aside = path.rename(tmp_path / "audit.jsonl.damaged")
    entry = log.record("unfreeze", account="a", target="t", outcome="ok")
    assert (entry.seq, entry.prev) == (1, GENESIS)
    assert len(lines_of(aside)) == 1
    assert verify_audit_log(path).ok


def test_two_processes_appending_at_once_keep_one_chain(tmp_path: Path) -> None:
    """Two OS processes append 200 entries each at the same time: one intact chain of 400."""
    path = tmp_path / "audit.jsonl"
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(path), "200", tag],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for tag in ("left", "right")
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:  # both are waiting: let them go together
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "done"
            assert worker.wait(timeout=120) == 0
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            for stream in (worker.stdin, worker.stdout):
                if stream is not None:
                    stream.close()
    check = verify_audit_log(path)
    assert check.ok, check.problems
    assert check.entries == 400
    entries = [entry for _, entry in scan_audit_log(path).entries]
    assert [entry.seq for entry in entries] == list(range(1, 401))
    for tag in ("left", "right"):
        targets = [entry.target for entry in entries if entry.account == tag]
        assert targets == [f"{tag}-{number}" for number in range(200)]
    assert len({entry.pid for entry in entries}) == 2
