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
    ) -> T:
        """
        Wait for the request's slot on the lane of (``uid``, ``endpoint``), then call
        ``send()`` and return what it returns.

        The client calls it once per attempt of a request, from the task making the
        request, and calls ``send`` nowhere else. What an implementation must keep:

        - Call ``send()`` in the calling task (``await send()``, never in a task of its
          own): the dispatch gate and the caller's context (`bitget_keys.pacing`) are
          tied to that task. ``send()`` signs the request as it is called, so the
          timestamp is fresh however long the wait was.
        - Call it again only after it raised `RateLimitExceededError` (Bitget throttled
          the request and carried nothing out), and only as often as the scheduler's
          own retry rule allows. Any other exception, `TransportError` and
          `ServerError` above all (the request may have been carried out), goes to the
          caller unchanged and is never retried here.
        - Before the slot, raise `RateLimitWaitTooLongError` instead of waiting longer
          than ``max_wait`` seconds or past ``deadline`` (a ``loop.time()``), without
          calling ``send``. ``None`` for either means no bound.
        - If the waiting task is cancelled, let `asyncio.CancelledError` out without
          calling ``send``: a stopped run must not send what was still waiting.

        ``flow`` and ``priority`` are how the caller asks to be ordered among the
        lane's waiting requests (higher priorities first, then flows in turn); a
        scheduler may serve in plain arrival order instead.

        Args:
            uid: the UID whose budget the request spends: the owner of the calling key,
                ``"*"`` for an endpoint counted per IP (``endpoint.scope == "ip"``), or a
                stand-in lane named after the key until its UID is known (see ``alias``).
            endpoint: what is called; ``rate`` requests per ``window`` seconds is
                Bitget's limit, counted per ``scope`` (``"uid"`` or ``"ip"``).
            send: puts the request on the wire once and returns the decoded answer.
            max_wait: the longest this call may wait for a slot, in seconds.
            flow: who the request is for (a client, a tenant, a job).
            priority: higher is served first; 0 is the default, negative is background.
            deadline: the latest ``loop.time()`` at which the request may be sent.

        Raises:
            RateLimitWaitTooLongError: no slot within ``max_wait`` or before
                ``deadline``; nothing was sent.
            RateLimitExceededError: still throttled when the scheduler stops retrying.
            Exception: whatever ``send()`` raised, unchanged.
        """
        ...

    def observe(
        self, uid: str, endpoint: ep.Endpoint, *, sent_ms: int, request_time_ms: int
    ) -> None:
        """
        Learn from one answer: when its request was sent, and Bitget's time on it.

        The client calls it for every answer that carries Bitget's ``requestTime``,
        errors included, right after the answer arrives, in the task that sent it.
        ``request_time_ms - sent_ms`` is the clock offset plus the delay on the way; its
        spread over recent answers tells how much margin a lane needs so that delays
        cannot squeeze one request too many into a window at Bitget. A scheduler that
        keeps no margin may do nothing.

        It must return at once and must not raise: it runs in the middle of handling
        the answer.

        Args:
            uid: the lane's UID, as given to `run`.
            endpoint: the endpoint, as given to `run`.
            sent_ms: the client's wall clock (epoch milliseconds) when ``send`` began.
            request_time_ms: Bitget's ``requestTime`` in the answer (epoch
                milliseconds).
        """
        ...


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
