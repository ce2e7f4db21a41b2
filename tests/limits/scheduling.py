"""
What the scheduler tests share: their endpoints, their start time and a recording send().

The ``clock`` fixture that goes with them (a fake loop clock, with asyncio's C tasks and
with its pure-Python ones) is in conftest.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from bitget_keys import Scheduler
from bitget_keys import _endpoints as ep
from bitget_keys.testing import LoopClock

ONE = ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS  # 1/s
FIVE = ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY  # 5/s
TEN = ep.MODIFY_BROKER_SUBACCOUNT_API_KEY  # 10/s
#: The fake loop time every scheduler test starts from.
START = 1000.0

#: (loop time, tag) per call of a recording send().
Log = list[tuple[float, Any]]

#: asyncio's pure-Python Task (the C one is the default).
PyTask: Any = asyncio.tasks._PyTask  # type: ignore[attr-defined]


def python_task(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Future[Any]:
    """A task factory that makes asyncio's pure-Python tasks."""
    task: asyncio.Future[Any] = PyTask(coro, loop=loop, **options)
    return task


def recorder(clock: LoopClock, log: Log, tag: Any) -> Callable[[], Awaitable[Any]]:
    """A send() that records when it was called."""

    async def send() -> Any:
        log.append((clock.now, tag))
        return tag

    return send


def submit(
    limits: Scheduler,
    clock: LoopClock,
    log: Log,
    tag: Any,
    endpoint: ep.Endpoint = FIVE,
    uid: str = "u1",
    **options: Any,
) -> asyncio.Task[Any]:
    """Start one request on ``limits`` whose send() records into ``log``."""
    return asyncio.create_task(limits.run(uid, endpoint, recorder(clock, log, tag), **options))


def times(log: Log) -> list[float]:
    """When each recorded send() ran, in seconds from START."""
    return [at - START for at, _ in log]
