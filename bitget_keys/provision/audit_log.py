"""
`AuditLog`: one line per lifecycle operation (a rotation's steps, a revoke, a freeze, an
import), saying who ran it, on what, and how it ended, in an append-only file whose lines
are chained by SHA-256.

Each line is one JSON object with exactly these fields (written with sorted keys):

- ``seq``: 1 for the first line, then one more per line;
- ``time``: when it was written, ISO 8601 in UTC with milliseconds (``...T12:00:00.123Z``);
- ``actor``: ``user@host`` of the process that wrote it, and ``pid``, its process id;
- ``operation``, ``account``, ``target``, ``outcome``, ``detail``: what the caller said;
- ``prev``: the ``hash`` of the line before (64 zeros on the first line);
- ``hash``: the SHA-256 (hex) of the line's other fields, ``prev`` included, encoded as
  JSON with sorted keys and no spaces (orjson's ``OPT_SORT_KEYS``).

An edited, removed, repeated or reordered line breaks the chain where it happened, and
`verify_audit_log` names that line. Removing lines from the *end* leaves a shorter chain
that is intact: only a ``hash`` kept elsewhere (``audit verify`` prints the last one)
shows that entries up to it existed.

Appends take an exclusive ``flock`` of the file itself, read the last line's ``seq`` and
``hash`` under it, write the new line with one ``os.write`` on an ``O_APPEND`` descriptor
and ``fsync`` it, so concurrent processes never interleave lines or fork the chain. A last
line that is damaged (cut short by a crash, edited) is refused as a link: `AuditLog.record`
raises `AuditLogDamagedError` rather than chain onto it. The file is created 0600; an
existing one that others can read or write is used with a warning.

The log holds no secret because no secret is handed to it: every field is a plain ``str``
the calling code composes from names, API keys (which are identifiers, not secrets),
outcomes and error texts. Callers must never pass a passphrase or a secret key, nor
a text that could hold one; a `bitget_keys.Secret` is refused outright. Control
characters and newlines are kept as JSON escapes, so an entry is always one line.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import getpass
import logging
import os
import pwd
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Final

import attrs
import orjson

from bitget_keys.provision.audit_chain import (
    FIELDS,
    GENESIS,
    AuditCheck,
    AuditEntry,
    AuditLogError,
    AuditProblem,
    AuditScan,
    parse_entry,
    scan_audit_log,
    verify_audit_log,
)
from bitget_keys.provision.files import loose_permissions
from bitget_keys.provision.vault_files import fsync_directory

__all__ = [
    "AUDIT_LOG_ENV",
    "AUDIT_SUFFIX",
    "FIELDS",
    "GENESIS",
    "OPERATIONS",
    "OUTCOMES",
    "AuditCheck",
    "AuditEntry",
    "AuditLog",
    "AuditLogDamagedError",
    "AuditLogError",
    "AuditLogWriteError",
    "AuditProblem",
    "AuditScan",
    "audit_log_path",
    "current_actor",
    "scan_audit_log",
    "verify_audit_log",
]

_log: Final = logging.getLogger("bitget_keys.audit_log")

#: The audit log the command line writes to when ``--audit-log`` is not given.
AUDIT_LOG_ENV: Final = "BITGET_KEYS_AUDIT_LOG"

#: What `audit_log_path` adds to the state file's name.
AUDIT_SUFFIX: Final = ".audit.jsonl"

#: The operations the lifecycle commands record. Others are accepted when they are
#: lowercase dotted words, so a new step needs no change here.
OPERATIONS: Final = frozenset(
    {
        "rotate.create",
        "rotate.verify",
        "rotate.promote",
        "rotate.revoke",
        "revoke",
        "modify",
        "freeze",
        "unfreeze",
        "import",
    }
)

#: How an operation ended: done; refused by Bitget or failed; sent without a known
#: answer (it may have happened); not attempted because a rule forbids it.
OUTCOMES: Final = frozenset({"ok", "failed", "unknown", "refused"})

_OPERATION: Final = re.compile(r"[a-z][a-z0-9_-]*(?:\.[a-z][a-z0-9_-]*)*")
_TAIL_CHUNK: Final = 8192
_REOPEN_ATTEMPTS: Final = 10

#: How `AuditLog.record` writes bytes: ``os.write``'s signature (tests inject failures).
Writer = Callable[[int, bytes], int]


@attrs.define(slots=False, eq=False)
class AuditLogDamagedError(AuditLogError):
    """
    The audit log's last line is damaged (cut short, edited, not an entry), so a new
    entry cannot be chained onto it; nothing was written. ``line`` is its number.
    """

    line: int = 0


@attrs.define(slots=False, eq=False)
class AuditLogWriteError(AuditLogError):
    """An entry could not be written whole and fsynced; the file was cut back without it."""

    errno: int | None = None


def audit_log_path(state_path: Path) -> Path:
    """The audit log beside a state file: ``<state file name>.audit.jsonl``, same directory."""
    return state_path.with_name(state_path.name + AUDIT_SUFFIX)


def current_actor() -> str:
    """
    ``user@host`` of this process. The user is the name of the effective user id (which
    the environment cannot change), else what `getpass.getuser` finds, else ``uid<N>``.
    """
    uid = os.geteuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        try:
            user = getpass.getuser()
        except OSError:
            user = f"uid{uid}"
    return f"{user}@{socket.gethostname()}"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _timestamp(moment: dt.datetime) -> str:
    moment = moment.astimezone(dt.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _text(name: str, value: object) -> str:
    """
    ``value`` as a plain ``str``. Anything else (a `bitget_keys.Secret`, bytes, None) is
    refused, naming only the field and the type, never the value.
    """
    if not isinstance(value, str):
        msg = f"the audit field {name!r} takes a str, not {type(value).__name__}"
        raise TypeError(msg)
    text = str.__str__(value)  # a StrEnum member is written as its value
    try:
        text.encode()
    except UnicodeEncodeError:
        msg = f"the audit field {name!r} holds a lone surrogate, which JSON cannot carry"
        raise ValueError(msg) from None
    return text


def _checked_fields(
    operation: object, account: object, target: object, outcome: object, detail: object
) -> dict[str, str]:
    fields = {
        "operation": _text("operation", operation),
        "account": _text("account", account),
        "target": _text("target", target),
        "outcome": _text("outcome", outcome),
        "detail": _text("detail", detail),
    }
    if not _OPERATION.fullmatch(fields["operation"]):
        msg = (
            "the audit operation must be lowercase dotted words such as 'rotate.create' "
            f"(got {fields['operation']!r})"
        )
        raise ValueError(msg)
    if fields["outcome"] not in OUTCOMES:
        choices = ", ".join(sorted(OUTCOMES))
        msg = f"the audit outcome must be one of {choices} (got {fields['outcome']!r})"
        raise ValueError(msg)
    return fields


class AuditLog:
    """
    The audit log at ``path``, opened for appending.

    Opening creates the file (0600, and its directory) when it does not exist, warns
    when others can read or write it, and checks its last line, so a command that opens
    it before acting refuses a damaged log before it sends anything.

    Raises:
        AuditLogError: ``path`` is a directory, or cannot be opened or read.
        AuditLogDamagedError: the last line is damaged (see `record`).
    """

    __slots__ = ("_actor", "_clock", "_path", "_writer")

    def __init__(
        self,
        path: str | Path,
        *,
        writer: Writer = os.write,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self._path = Path(path)
        self._writer = writer
        self._clock = clock
        self._actor = current_actor()
        descriptor = self._open()
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH)
            self._tail(descriptor, os.fstat(descriptor).st_size)
        except OSError as exc:
            raise AuditLogError(str(self._path), f"cannot read: {exc.strerror}") from exc
        finally:
            os.close(descriptor)
        warning = loose_permissions(self._path, "audit log")
        if warning is not None:
            _log.warning("%s", warning)

    @property
    def path(self) -> Path:
        """The file."""
        return self._path

    def __repr__(self) -> str:
        return f"<AuditLog {str(self._path)!r}>"

    def record(
        self, operation: str, *, account: str, target: str, outcome: str, detail: str = ""
    ) -> AuditEntry:
        """
        Append one entry and return it once it is on disk (written whole, fsynced).

        ``operation`` is lowercase dotted words (`OPERATIONS` lists the lifecycle's),
        ``outcome`` one of `OUTCOMES`. ``account`` is the plan account, ``target`` what
        was acted on (``SUB/KEY``, an API key, a sub-account), ``detail`` a short
        explanation. Never pass a secret in any of them.

        Raises:
            TypeError: a field is not a ``str`` (a `bitget_keys.Secret` is refused).
            ValueError: ``operation`` or ``outcome`` is not one the log takes.
            AuditLogDamagedError: the last line is damaged; nothing was written, and
                ``bitget-keys audit verify`` shows every damaged line.
            AuditLogWriteError: the entry could not be written and fsynced; the file
                was cut back to what it held before.
        """
        fields = _checked_fields(operation, account, target, outcome, detail)
        descriptor = self._locked()
        try:
            size = os.fstat(descriptor).st_size
            seq, prev = self._tail(descriptor, size)
            draft = AuditEntry(
                seq=seq,
                time=_timestamp(self._clock()),
                actor=self._actor,
                pid=os.getpid(),
                prev=prev,
                hash="",
                **fields,
            )
            entry = attrs.evolve(draft, hash=draft.digest())
            line = orjson.dumps(entry.to_dict(), option=orjson.OPT_SORT_KEYS) + b"\n"
            self._write(descriptor, line, size)
        except OSError as exc:
            raise AuditLogError(str(self._path), f"cannot read: {exc.strerror}") from exc
        finally:
            os.close(descriptor)
        return entry

    def _open(self) -> int:
        if self._path.is_dir():
            raise AuditLogError(str(self._path), "is a directory, not a file")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            try:
                return os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
            except FileNotFoundError:
                pass
            descriptor = os.open(
                self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
            fsync_directory(self._path.parent)
        except OSError as exc:
            raise AuditLogError(str(self._path), f"cannot open: {exc.strerror}") from exc
        return descriptor

    def _locked(self) -> int:
        """
        A descriptor of the file now at the path, under its exclusive lock. A file that
        was renamed away or replaced between opening and locking (an operator moving a
        damaged log aside) is given up for the one that took its name.
        """
        for _ in range(_REOPEN_ATTEMPTS):
            descriptor = self._open()
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                opened = os.fstat(descriptor)
                now = self._path.stat()
            except FileNotFoundError:
                os.close(descriptor)
                continue
            except OSError as exc:
                os.close(descriptor)
                raise AuditLogError(str(self._path), f"cannot lock: {exc.strerror}") from exc
            if (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino):
                return descriptor
            os.close(descriptor)
        detail = "was replaced again each time it was opened; nothing was added"
        raise AuditLogError(str(self._path), detail)

    def _tail(self, descriptor: int, size: int) -> tuple[int, str]:
        """The next ``seq`` and its ``prev``, from the last line (which must be intact)."""
        if size == 0:
            return 1, GENESIS
        if os.pread(descriptor, 1, size - 1) != b"\n":
            start = _line_start(descriptor, size)
            reason = "is incomplete: a write was cut short (a crash, a full disk)"
            raise self._damaged(descriptor, start, reason)
        start = _line_start(descriptor, size - 1)
        entry, reason = parse_entry(os.pread(descriptor, size - 1 - start, start))
        if entry is not None and entry.digest() != entry.hash:
            reason = "was altered: its hash does not match its content"
        if entry is None or reason:
            raise self._damaged(descriptor, start, reason)
        return entry.seq + 1, entry.hash

    def _damaged(self, descriptor: int, start: int, reason: str) -> AuditLogDamagedError:
        line = _count_newlines(descriptor, start) + 1
        detail = (
            f"line {line}, the last, {reason}; no entry was added, so as not to chain onto "
            "it. `bitget-keys audit verify` shows every damaged line; keep the file as "
            "evidence and start a new audit log (--audit-log) to go on"
        )
        return AuditLogDamagedError(str(self._path), detail, line)

    def _write(self, descriptor: int, line: bytes, size: int) -> None:
        """One ``os.write`` of the whole line, then fsync; on failure cut back to ``size``."""
        try:
            _write_once(self._writer, descriptor, line)
            os.fsync(descriptor)
        except OSError as exc:
            try:
                os.ftruncate(descriptor, size)
                os.fsync(descriptor)
            except OSError as cut:
                _log.warning("could not cut %s back after a failed write: %s", self._path, cut)
            detail = f"could not write an entry: {exc.strerror}; nothing was added"
            raise AuditLogWriteError(str(self._path), detail, exc.errno) from exc


def _write_once(writer: Writer, descriptor: int, line: bytes) -> None:
    """
    The whole line in one write: on an ``O_APPEND`` descriptor it lands at the end as
    one piece. A short write is a failure (the caller cuts it back off).
    """
    written = writer(descriptor, line)
    if written != len(line):
        raise OSError(errno.EIO, f"wrote {written} of {len(line)} bytes")


def _line_start(descriptor: int, end: int) -> int:
    """Where the line that ends at ``end`` (exclusive, before its newline) begins."""
    position = end
    while position > 0:
        start = max(0, position - _TAIL_CHUNK)
        chunk = os.pread(descriptor, position - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


def _count_newlines(descriptor: int, end: int) -> int:
    count, offset = 0, 0
    while offset < end:
        chunk = os.pread(descriptor, min(1 << 20, end - offset), offset)
        if not chunk:
            break
        count += chunk.count(b"\n")
        offset += len(chunk)
    return count
