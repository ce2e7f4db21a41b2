"""
The audit log's lines as data: the fields of an entry (`AuditEntry`), the hash that
chains each line to the one before, and the check of a whole file (`verify_audit_log`).

`bitget_keys.provision.audit_log` writes the file and describes its format; this module
reads it. Verification trusts nothing in the file: every line is parsed on its own, its
hash is computed again from its fields, and its ``seq`` and ``prev`` are compared with
the line before. A damaged line is reported once, at its own line, where that can be
told: the next line may link to the hash as stored or as computed again.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

import attrs
import orjson

from bitget_keys.errors import BitgetKeysError

__all__ = [
    "FIELDS",
    "GENESIS",
    "AuditCheck",
    "AuditEntry",
    "AuditLogError",
    "AuditProblem",
    "AuditScan",
    "entry_hash",
    "parse_entry",
    "scan_audit_log",
    "verify_audit_log",
]

#: The ``prev`` of the first line: no line comes before it.
GENESIS: Final = "0" * 64

#: Every field of a line, in the order `AuditEntry` holds them (the file sorts them).
FIELDS: Final = (
    "seq",
    "time",
    "actor",
    "pid",
    "operation",
    "account",
    "target",
    "outcome",
    "detail",
    "prev",
    "hash",
)

_HASH: Final = re.compile(r"[0-9a-f]{64}")
_INTEGERS: Final = frozenset({"seq", "pid"})


@attrs.define(slots=False, eq=False)
class AuditLogError(BitgetKeysError):
    """The audit log can't be opened, read or written."""

    path: str
    detail: str

    def __attrs_post_init__(self) -> None:
        Exception.__init__(self, self.path, self.detail)

    def __str__(self) -> str:
        return f"audit log {self.path}: {self.detail}"


@attrs.frozen(kw_only=True)
class AuditEntry:
    """One line of the audit log (see the module's description of each field)."""

    seq: int
    time: str
    actor: str
    pid: int
    operation: str
    account: str
    target: str
    outcome: str
    detail: str
    prev: str
    hash: str

    def to_dict(self) -> dict[str, str | int]:
        """The fields as written (``FIELDS``)."""
        return {name: getattr(self, name) for name in FIELDS}

    def digest(self) -> str:
        """The hash this entry's fields other than ``hash`` give (equal to ``hash`` when intact)."""
        return entry_hash(self.to_dict())


@attrs.frozen
class AuditProblem:
    """What is wrong at one line (``line`` 0: the file as a whole)."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line else self.reason


@attrs.frozen(kw_only=True)
class AuditCheck:
    """
    What `verify_audit_log` found. ``entries`` counts the file's lines, damaged or not;
    ``last_hash`` and ``last_seq`` are those of the last line whose hash is intact
    (``None`` when there is none).
    """

    path: Path
    entries: int
    problems: tuple[AuditProblem, ...]
    last_hash: str | None
    last_seq: int | None
    missing: bool = False

    @property
    def ok(self) -> bool:
        """The file exists and every line is an intact link of one chain."""
        return not self.missing and not self.problems


@attrs.frozen(kw_only=True)
class AuditScan:
    """Every line that reads as an entry (with its line number), and the check of the whole."""

    entries: tuple[tuple[int, AuditEntry], ...]
    check: AuditCheck


def entry_hash(fields: dict[str, str | int]) -> str:
    """
    The SHA-256 (hex) of every field but ``hash``: JSON with sorted keys and no spaces,
    as orjson writes it with ``OPT_SORT_KEYS``.
    """
    body = {name: value for name, value in fields.items() if name != "hash"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def parse_entry(raw: bytes) -> tuple[AuditEntry | None, str]:
    """
    The entry a line (without its newline) holds, or ``None`` and why it holds none: not
    JSON, not an object, a field missing, extra or of the wrong type. Its hash is not
    checked here (`AuditEntry.digest`).
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON ({exc})"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    reason = _fields_problem(data)
    if reason:
        return None, f"not an audit entry: {reason}"
    return AuditEntry(**data), ""


def _fields_problem(data: dict[str, object]) -> str:
    """What keeps ``data`` from being an entry's fields; empty when nothing does."""
    missing = [name for name in FIELDS if name not in data]
    extra = sorted(name for name in data if name not in FIELDS)
    if missing or extra:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unexpected {', '.join(extra)}"] if extra else []
        return "; ".join(parts)
    for name in FIELDS:
        value = data[name]
        if name in _INTEGERS:
            if type(value) is not int or value < 0:
                return f"{name} is not a whole number"
        elif not isinstance(value, str):
            return f"{name} is not a string"
        elif name in {"prev", "hash"} and not _HASH.fullmatch(value):
            return f"{name} is not 64 hex digits"
    return ""


@attrs.define
class _Chain:
    """What checking one line needs from the lines before it."""

    expected: int = 1
    links: frozenset[str] = frozenset({GENESIS})
    link_line: int = 0
    last_hash: str | None = None
    last_seq: int | None = None

    def check(self, number: int, entry: AuditEntry) -> list[str]:
        """Why ``entry`` (at line ``number``) is not the next link; empty when it is."""
        reasons = []
        digest = entry.digest()
        intact = digest == entry.hash
        if not intact:
            reasons.append("altered: its hash does not match its content")
        if entry.seq != self.expected:
            reasons.append(
                f"seq {entry.seq} where {self.expected} was expected: a line is missing, "
                "repeated or out of order"
            )
        if entry.prev not in self.links:
            if self.link_line:
                reasons.append(
                    f"prev is not the hash of line {self.link_line}: a line between them "
                    "was removed, or the lines were reordered"
                )
            else:
                reasons.append(
                    "prev is not 64 zeros, as the first entry's is: the lines before it "
                    "were removed"
                )
        # A line whose own hash is wrong cannot be trusted for its seq: the next line is
        # expected to follow the count, not the altered value.
        self.expected = entry.seq + 1 if intact else self.expected + 1
        # The next line may link to the hash as stored or as recomputed: an altered line
        # (or an altered hash field) is reported once, at its own line.
        self.links = frozenset({entry.hash, digest})
        self.link_line = number
        if intact:
            self.last_hash, self.last_seq = entry.hash, entry.seq
        return reasons


def _lines(path: Path) -> Iterator[bytes]:
    """The file's lines, read under a shared lock so no append is seen half done."""
    with path.open("rb") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_SH)
        yield from file


def _scan_lines(
    path: Path, lines: Iterable[bytes], expect_hash: str | None
) -> tuple[list[tuple[int, AuditEntry]], AuditCheck]:
    chain = _Chain()
    entries: list[tuple[int, AuditEntry]] = []
    problems: list[AuditProblem] = []
    seen_expected = False
    count = 0
    for count, raw in enumerate(lines, 1):
        if not raw.endswith(b"\n"):
            problems.append(
                AuditProblem(
                    count, "incomplete: the last write was cut short (a crash, a full disk)"
                )
            )
            continue
        entry, reason = parse_entry(raw[:-1])
        if entry is None:
            problems.append(AuditProblem(count, reason))
            continue
        entries.append((count, entry))
        reasons = chain.check(count, entry)
        if reasons:
            problems.append(AuditProblem(count, "; ".join(reasons)))
        # The kept hash is found if a line carries it and matches it, whatever its links:
        # a line removed before it is reported at its own place, not as a cut tail.
        if entry.hash == expect_hash and entry.digest() == entry.hash:
            seen_expected = True
    if expect_hash is not None and not seen_expected:
        problems.append(
            AuditProblem(
                0,
                f"no intact entry has the hash {expect_hash}: entries were removed from the "
                "end, or the hash belongs to another log",
            )
        )
    check = AuditCheck(
        path=path,
        entries=count,
        problems=tuple(problems),
        last_hash=chain.last_hash,
        last_seq=chain.last_seq,
    )
    return entries, check


def scan_audit_log(path: str | Path, *, expect_hash: str | None = None) -> AuditScan:
    """
    Read and check the audit log at ``path`` (see `verify_audit_log`), keeping every
    line that reads as an entry.

    Raises:
        AuditLogError: the file exists but cannot be read.
    """
    path = Path(path)
    try:
        entries, check = _scan_lines(path, _lines(path), expect_hash)
    except (FileNotFoundError, IsADirectoryError) as exc:
        what = "no audit log here" if isinstance(exc, FileNotFoundError) else "is a directory"
        problem = AuditProblem(0, what)
        check = AuditCheck(
            path=path, entries=0, problems=(problem,), last_hash=None, last_seq=None, missing=True
        )
        return AuditScan(entries=(), check=check)
    except OSError as exc:
        raise AuditLogError(str(path), f"cannot read: {exc.strerror}") from exc
    return AuditScan(entries=tuple(entries), check=check)


def verify_audit_log(path: str | Path, *, expect_hash: str | None = None) -> AuditCheck:
    """
    Check every line of the audit log at ``path``: that it is JSON with exactly the
    entry's fields, that ``seq`` counts on by one, that ``prev`` is the hash of the line
    before (64 zeros first), and that ``hash`` matches the line's content. Each damaged
    line is one `AuditProblem`. A missing file is not ok (``missing``); an empty one is
    an intact chain of 0 entries. With ``expect_hash`` (a ``hash`` recorded earlier),
    an intact entry must carry it: the log was not cut back before it.

    Raises:
        AuditLogError: the file exists but cannot be read.
    """
    return scan_audit_log(path, expect_hash=expect_hash).check
