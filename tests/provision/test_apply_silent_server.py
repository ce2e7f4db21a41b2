"""
`bitget-keys apply` against a server that accepts connections and never answers.

A real ``python -m bitget_keys apply --json`` process and real signals, as in
``test_apply_interrupt``: the server on 127.0.0.1 holds every connection open without a
byte, so each request waits out its whole timeout. A signal must still end the run
within its drain time, and reads must not keep the run silent for minutes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Self

import pytest

from bitget_keys.errors import RequestTimeoutError, ServerError
from bitget_keys.provision.retrying import read_retrying
from tests.provision.apply_process import MASTERS, SUBACCOUNTS, Apply, plan_toml

#: Bounded slack on top of the drain time: process exit, reports, a retry's pause, and
#: a busy 2-core machine. A read re-sent on the silent connection takes 15 s to time out,
#: so a run whose drain does not bound it overshoots this by far.
SLACK = 9.0
DRAIN = 3.0


class SilentServer:
    """Accepts connections and says nothing; `hang_up` closes the ones open now."""

    def __init__(self) -> None:
        self.connections = 0
        self.connected = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _hold(self, _reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.connected.set()
        self._writers.append(writer)

    def hang_up(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.hang_up()
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def silent() -> AsyncIterator[SilentServer]:
    async with SilentServer() as server:
        yield server


async def _stderr_until(run: Apply, text: str) -> str:
    """Read apply's stderr until ``text`` shows up; return what was read."""
    assert run.process.stderr is not None
    seen = ""
    while text not in seen:
        line = await run.process.stderr.readline()
        assert line, seen
        seen += line.decode()
    return seen


async def test_a_signal_ends_the_run_within_its_drain_when_a_read_is_resent(
    tmp_path: Path, silent: SilentServer
) -> None:
    """
    SIGINT while a read is on the wire; its connection then drops, so the wire is empty
    for a moment and the read is sent again on a connection that never answers. The run
    still ends within the drain time, abandons that answer and reports every item.
    """
    (tmp_path / "plan.toml").write_text(plan_toml())
    run = await Apply.start(silent.url, tmp_path, "--drain-timeout", str(DRAIN))
    async with asyncio.timeout(30):
        await silent.connected.wait()
    run.process.send_signal(signal.SIGINT)
    async with asyncio.timeout(30):
        seen = await _stderr_until(run, "SIGINT: stopping")
    before = silent.connections
    silent.hang_up()
    async with asyncio.timeout(DRAIN + SLACK):
        code = await run.died()
    run.stderr = seen + run.stderr
    assert code == 130, run.stderr
    # The dropped read was sent again (the case that used to go unbounded).
    assert silent.connections > before, run.stderr
    assert "gave up on 1 answer(s) after 3 s" in run.stderr
    assert "apply stopped (interrupted by SIGINT)" in run.stderr
    statuses = Counter(row["status"] for row in run.rows)
    assert sum(statuses.values()) == len(MASTERS) * SUBACCOUNTS * 3, statuses
    # Nothing was created or changed: no item claims it was.
    assert set(statuses) <= {"stopped", "unknown", "failed"}, statuses


async def test_reads_that_time_out_are_tried_once_more_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each timeout costs a whole request timeout: the second one fails the read."""
    calls = 0

    async def silent_read() -> None:
        nonlocal calls
        calls += 1
        raise RequestTimeoutError("/x", "timed out waiting for the response", maybe_sent=True)

    with caplog.at_level(logging.WARNING, "bitget_keys.apply"), pytest.raises(RequestTimeoutError):
        await read_retrying(silent_read)
    assert calls == 2
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "no answer to a read (timed out waiting for the response)" in warning


async def test_reads_that_fail_fast_are_still_tried_five_times() -> None:
    """A server error costs little: the read keeps its five attempts."""
    calls = 0

    async def failing_read() -> None:
        nonlocal calls
        calls += 1
        raise ServerError(500, "50000", "busy", "/x")

    with pytest.raises(ServerError):
        await read_retrying(failing_read)
    assert calls == 5
