"""`FileLock`: one run per file, between real processes; a killed holder lets go."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bitget_keys.errors import ClientStateError, ConfigurationError, LockedError
from bitget_keys.provision import lock as lock_module
from bitget_keys.provision.lock import FileLock, LockHolder

ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "provision" / "vault_worker.py"
COMMAND = "bitget-keys apply plan.toml"


class Holder:
    """A real process holding the lock of a path until told to let go (or killed)."""

    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), "hold", str(path), COMMAND],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"

    @property
    def pid(self) -> int:
        return self.process.pid

    def let_go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class Logged(logging.Handler):
    """Sets ``event`` when a log record containing ``text`` is emitted."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def held(lock: FileLock) -> bool:
    """Whether ``lock`` is held, read afresh (not narrowed by an earlier assert)."""
    return lock.held


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.stop()


def test_a_second_run_fails_at_once_naming_the_holder(
    tmp_path: Path, holders: list[Holder]
) -> None:
    """Another process holds it: LockedError names the file, pid, host, command, since."""
    path = tmp_path / "keys.vault"
    holder = Holder(path)
    holders.append(holder)
    lock = FileLock(path)
    with pytest.raises(LockedError) as caught:
        lock.acquire()
    text = str(caught.value)
    assert str(path) in text
    assert f"pid {holder.pid} on host {socket.gethostname()} ({COMMAND}), since " in text
    assert "--wait-lock" in text
    assert held(lock) is False
    holder.let_go()
    lock.acquire()
    assert held(lock) is True
    assert lock.holder() == LockHolder.parse(lock.lock_path.read_bytes())
    held_by = lock.holder()
    assert held_by is not None
    assert held_by.pid == os.getpid()
    lock.release()
    assert lock.lock_path.read_bytes() == b""


def test_a_killed_holder_releases_the_lock(tmp_path: Path, holders: list[Holder]) -> None:
    """SIGKILL leaves its holder line behind, but never the lock itself."""
    path = tmp_path / "keys.state"
    holder = Holder(path)
    holders.append(holder)
    with pytest.raises(LockedError):
        FileLock(path).acquire()
    holder.kill()
    stale = LockHolder.parse((tmp_path / "keys.state.lock").read_bytes())
    assert stale is not None
    assert stale.pid == holder.pid
    with FileLock(path, command="the next run") as lock:
        now = lock.holder()
        assert now is not None
        assert now.command == "the next run"


async def test_waiting_takes_the_lock_once_the_holder_ends(
    tmp_path: Path, holders: list[Holder]
) -> None:
    """acquire_waiting says once whom it waits for, and returns once the holder exits."""
    path = tmp_path / "keys.vault"
    holder = Holder(path)
    holders.append(holder)
    told: list[LockHolder | None] = []
    waiting = asyncio.Event()

    def on_wait(who: LockHolder | None) -> None:
        told.append(who)
        waiting.set()

    lock = FileLock(path)
    task = asyncio.create_task(lock.acquire_waiting(poll=0.01, on_wait=on_wait))
    await asyncio.wait_for(waiting.wait(), 30)
    # The holder is alive and holding: the waiter cannot have the lock.
    assert not task.done()
    assert held(lock) is False
    holder.let_go()
    await asyncio.wait_for(task, 30)
    assert held(lock) is True
    assert len(told) == 1
    assert told[0] is not None
    assert told[0].pid == holder.pid
    assert told[0].command == COMMAND
    lock.release()


async def test_a_cancelled_wait_leaves_the_lock_untaken(
    tmp_path: Path, holders: list[Holder], caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelling a wait (Ctrl-C) takes nothing; without a callback the wait is logged once."""
    path = tmp_path / "keys.vault"
    holder = Holder(path)
    holders.append(holder)
    lock = FileLock(path)
    logged = Logged("waiting for the lock")
    logging.getLogger("bitget_keys.lock").addHandler(logged)
    try:
        task = asyncio.create_task(lock.acquire_waiting(poll=0.01))
        await asyncio.wait_for(logged.event.wait(), 30)
    finally:
        logging.getLogger("bitget_keys.lock").removeHandler(logged)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not lock.held
    waits = [r for r in caplog.records if "waiting for the lock" in r.getMessage()]
    assert len(waits) == 1
    assert f"pid {holder.pid}" in waits[0].getMessage()
    holder.let_go()
    with FileLock(path):
        pass


def test_a_garbled_lock_file_never_crashes(tmp_path: Path) -> None:
    """A holder line that is garbage (or not written yet) is reported as unknown."""
    path = tmp_path / "keys.vault"
    with FileLock(path) as first:
        first.lock_path.write_bytes(b"\x00\xff{not json")
        with pytest.raises(LockedError, match="has not written its name"):
            FileLock(path).acquire()
        first.lock_path.write_bytes(b'{"pid": "x"}')
        with pytest.raises(LockedError, match="has not written its name"):
            FileLock(path).acquire()


def test_a_holder_that_writes_its_name_a_moment_late_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Between a holder's flock and its name in the file there is a moment; a second run
    that looks then waits a little for the name instead of reporting "not written".
    """
    path = tmp_path / "keys.vault"
    with FileLock(path, command="bitget-keys apply plan.toml") as first:
        written = first.lock_path.read_bytes()
        first.lock_path.write_bytes(b"")  # the holder has the lock, not yet its name
        naps: list[float] = []

        def nap(seconds: float) -> None:
            # The holder's name lands while the second run waits (no real time passes).
            naps.append(seconds)
            if len(naps) == 3:
                first.lock_path.write_bytes(written)

        monkeypatch.setattr(lock_module, "_sleep", nap)
        with pytest.raises(LockedError, match=f"pid {os.getpid()} on host") as caught:
            FileLock(path).acquire()
        assert len(naps) == 3
        assert "bitget-keys apply plan.toml" in str(caught.value)


def test_one_object_one_hold_and_two_objects_exclude_each_other(tmp_path: Path) -> None:
    """Within one process two locks of one file exclude each other too."""
    path = tmp_path / "keys.vault"
    lock = FileLock(path)
    lock.acquire()
    with pytest.raises(ClientStateError, match="already held"):
        lock.acquire()
    with pytest.raises(LockedError):
        FileLock(path).acquire()
    lock.release()
    lock.release()  # a second release is harmless
    FileLock(path).acquire()


def test_lock_file_is_private_and_never_follows_a_symlink(tmp_path: Path) -> None:
    """The sidecar is created 0600; a symlink in its place is refused, its target untouched."""
    path = tmp_path / "keys.vault"
    with FileLock(path) as lock:
        assert stat.S_IMODE(lock.lock_path.stat().st_mode) == 0o600
    other = tmp_path / "precious.txt"
    other.write_text("keep me\n")
    planted = tmp_path / "other.vault"
    (tmp_path / "other.vault.lock").symlink_to(other)
    with pytest.raises(ConfigurationError, match="symbolic link"):
        FileLock(planted).acquire()
    assert other.read_text() == "keep me\n"


def test_a_directory_is_refused(tmp_path: Path) -> None:
    """Locking a directory is a clear error, and leaves no lock file."""
    with pytest.raises(ConfigurationError, match="is a directory"):
        FileLock(tmp_path).acquire()
    assert not tmp_path.with_name(tmp_path.name + ".lock").exists()


def test_locked_error_pickles() -> None:
    """LockedError survives pickling with its fields and message."""
    error = LockedError("keys.vault", "pid 1 on host h (x), since t")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301
    assert str(copy) == str(error)
    assert copy.path == "keys.vault"
    assert isinstance(copy, ClientStateError)
