"""
`FileLock`: one run at a time per vault and per state file.

The lock is an advisory ``flock`` on a sidecar file ``<path>.lock`` (created 0600 and
never deleted: removing it while another process waits on it would let two runs each
lock a different file of that name). The kernel releases it when the holder's file is
closed, including when the holder is killed, so a crashed run never leaves it stale.

Whoever holds it writes who it is (pid, host, command, since when) into the lock file,
so a second run can say whom it is waiting for. That text is only informative: a lock
file that is empty, garbled or left by a killed run never prevents locking.

Waiting polls with `asyncio.sleep` (cancellable) instead of a blocking ``flock`` in a
thread, which could not be interrupted and would hold the lock for a caller that has
already given up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import fcntl
import logging
import os
import socket
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Self

import attrs
import orjson

from bitget_keys.errors import ClientStateError, ConfigurationError, LockedError
from bitget_keys.provision.files import refuse_directory

__all__ = ["FileLock", "LockHolder"]

_log: Final = logging.getLogger("bitget_keys.lock")
_SUFFIX: Final = ".lock"
_MAX_HOLDER_BYTES: Final = 4096
#: How long a failed `FileLock.acquire` waits for a new holder to write its name.
_NAME_GRACE: Final = 0.25
_NAME_POLL: Final = 0.01
_sleep = time.sleep  # a blocking pause, once, on the way to failing


@attrs.frozen(kw_only=True)
class LockHolder:
    """
    Who holds a lock, as the holder wrote it into the lock file.

    ``since`` is when it took the lock: UTC, ISO 8601.
    """

    pid: int
    host: str
    command: str
    since: str

    def __str__(self) -> str:
        return f"pid {self.pid} on host {self.host} ({self.command}), since {self.since}"

    @classmethod
    def parse(cls, raw: bytes) -> LockHolder | None:
        """The holder written in ``raw``; ``None`` when it is empty or garbled."""
        try:
            data = orjson.loads(raw)
            return cls(
                pid=int(data["pid"]),
                host=str(data["host"]),
                command=str(data["command"]),
                since=str(data["since"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


def describe(holder: LockHolder | None) -> str:
    """``holder`` in words, also when its lock file said nothing readable."""
    if holder is None:
        return "a process that has not written its name into the lock file (yet)"
    return str(holder)


class FileLock:
    """
    An exclusive advisory lock over the file at ``path``, held through ``<path>.lock``.

    `acquire` fails at once (`LockedError`, naming the holder) when another process (or
    another `FileLock` in this one) holds it; `acquire_waiting` waits for it instead.
    `release` (or leaving the ``with`` block) gives it back. ``command`` is what the
    holder is called in others' messages: never put a secret in it.
    """

    __slots__ = ("_command", "_descriptor", "_path")

    def __init__(self, path: str | os.PathLike[str], *, command: str | None = None) -> None:
        self._path = Path(path)
        self._command = command if command is not None else Path(sys.argv[0]).name
        self._descriptor: int | None = None

    def __repr__(self) -> str:
        state = "held" if self.held else "free"
        return f"<FileLock {str(self.lock_path)!r} {state}>"

    @property
    def path(self) -> Path:
        """The file this lock protects."""
        return self._path

    @property
    def lock_path(self) -> Path:
        """The sidecar file that is locked: ``<path>.lock``."""
        return self._path.with_name(self._path.name + _SUFFIX)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._descriptor is not None

    def acquire(self) -> None:
        """
        Take the lock, or fail at once.

        Raises:
            LockedError: someone else holds it; the message names the holder.
            ConfigurationError: the path is a directory, or the lock file can't be opened.
            ClientStateError: this object already holds it.
        """
        taken, holder = self._try_acquire()
        # A holder writes its name just after it takes the lock: give it a moment, so
        # the error names it instead of "a process that has not written its name".
        deadline = time.monotonic() + _NAME_GRACE
        while not taken and holder is None and time.monotonic() < deadline:
            _sleep(_NAME_POLL)
            taken, holder = self._try_acquire()
        if not taken:
            raise LockedError(str(self._path), describe(holder))

    async def acquire_waiting(
        self,
        *,
        poll: float = 0.1,
        on_wait: Callable[[LockHolder | None], None] | None = None,
    ) -> None:
        """
        Take the lock, waiting as long as someone else holds it.

        When it has to wait, it says so once: ``on_wait(holder)`` when given, else a
        warning on the ``bitget_keys.lock`` logger. Cancelling the wait leaves the lock
        untaken.

        Raises:
            ConfigurationError: the path is a directory, or the lock file can't be opened.
            ClientStateError: this object already holds it.
        """
        said = False
        while True:
            taken, holder = self._try_acquire()
            if taken:
                return
            if not said:
                said = True
                if on_wait is not None:
                    on_wait(holder)
                else:
                    _log.warning(
                        "waiting for the lock on %s, held by %s", self._path, describe(holder)
                    )
            await asyncio.sleep(poll)

    def holder(self) -> LockHolder | None:
        """Who the lock file says holds the lock (possibly a past holder, or nobody)."""
        try:
            with self.lock_path.open("rb") as file:
                return LockHolder.parse(file.read(_MAX_HOLDER_BYTES))
        except OSError:
            return None

    def release(self) -> None:
        """Give the lock back (nothing when not held)."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is None:
            return
        try:
            # Clear the holder first, so nobody is told to wait for a run that ended.
            os.ftruncate(descriptor, 0)
        except OSError:  # pragma: no cover - a read-only or full file system
            pass
        finally:
            os.close(descriptor)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _try_acquire(self) -> tuple[bool, LockHolder | None]:
        """Whether it is now held; if not, who the lock file says holds it."""
        if self._descriptor is not None:
            msg = f"the lock on {self._path} is already held by this object"
            raise ClientStateError(msg)
        descriptor = self._open()
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raw = _read_all(descriptor)
            os.close(descriptor)
            return False, LockHolder.parse(raw)
        except BaseException:
            os.close(descriptor)
            raise
        self._descriptor = descriptor
        self._write_holder(descriptor)
        return True, None

    def _open(self) -> int:
        refuse_directory(self._path, "file to lock")
        lock_path = self.lock_path
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            # O_NOFOLLOW: a symlink planted at the lock's name must not make us write
            # our holder line into whatever it points at.
            descriptor = os.open(
                lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
            )
        except OSError as exc:
            reason = (
                "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
            )
            msg = f"cannot open the lock file {lock_path}: {reason}"
            raise ConfigurationError(msg) from exc
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            msg = f"the lock file {lock_path} is not a regular file"
            raise ConfigurationError(msg)
        return descriptor

    def _write_holder(self, descriptor: int) -> None:
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self._command,
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        try:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, orjson.dumps(holder) + b"\n", 0)
        except OSError as exc:  # pragma: no cover - the name is informative only
            _log.debug("could not write the holder into %s: %s", self.lock_path, exc)


def _read_all(descriptor: int) -> bytes:
    try:
        return os.pread(descriptor, _MAX_HOLDER_BYTES, 0)
    except OSError:  # pragma: no cover - a lock file we could open but not read
        return b""
