"""
What a client needs from a scheduler (`Scheduler`), and the scheduler clients share by
default (`shared_scheduler`).

One `RateLimitScheduler` per event loop: every client of a UID in one process that was
not given a scheduler of its own draws from the same lanes, so two clients of one
account never each spend the account's whole budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import Protocol, TypeVar

from bitget_keys import _endpoints as ep
from bitget_keys.limits.scheduler import RateLimitScheduler

__all__ = ["Scheduler", "default_scheduler", "shared_scheduler"]

T = TypeVar("T")


class Scheduler(Protocol):
    """
    What paces a client's requests: `RateLimitScheduler`, `RedisRateLimitScheduler`, or
    a stand-in such as `bitget_keys.testing.Unpaced` in tests of transport facts.

    A scheduler may also offer ``alias(lane_uid, uid)`` (both of ours do): a client
    that paced its UID-telling calls under a lane named after its key calls it once it
    knows the UID, so that the key's requests count against the UID's one budget. A
    scheduler without it keeps the two lanes apart, as before.
    """

    async def run(
        self,
        uid: str,
        endpoint: ep.Endpoint,
        send: Callable[[], Awaitable[T]],
        *,
        max_wait: float | None = None,
        flow: Hashable | None = None,
        priority: int = 0,
        deadline: float | None = None,
    ) -> T: ...

    def observe(
        self, uid: str, endpoint: ep.Endpoint, *, sent_ms: int, request_time_ms: int
    ) -> None: ...


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RateLimitScheduler] = (
    weakref.WeakKeyDictionary()
)


def shared_scheduler() -> RateLimitScheduler:
    """
    The running loop's scheduler, shared by every client that was not given one.

    Clients of one UID in one process therefore share one budget per endpoint.
    """
    loop = asyncio.get_running_loop()
    scheduler = _SHARED.get(loop)
    if scheduler is None:
        scheduler = _SHARED[loop] = RateLimitScheduler()
    return scheduler


@contextlib.contextmanager
def default_scheduler(scheduler: RateLimitScheduler | None = None) -> Iterator[RateLimitScheduler]:
    """
    Within the block, ``scheduler`` (a fresh one by default) is the running loop's
    shared scheduler; the previous one comes back afterwards.

    For a test or a job that wants budgets of its own without passing ``scheduler=`` to
    every client. A client takes the shared scheduler on its first request and keeps it,
    so a client that sent before the block keeps the scheduler it had.

    Raises:
        RuntimeError: no event loop is running.
    """
    loop = asyncio.get_running_loop()
    previous = _SHARED.get(loop)
    chosen = _SHARED[loop] = scheduler if scheduler is not None else RateLimitScheduler()
    try:
        yield chosen
    finally:
        if previous is None:
            _SHARED.pop(loop, None)
        else:
            _SHARED[loop] = previous
