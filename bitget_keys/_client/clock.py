"""
`ServerClock`: Bitget's clock as measured from here, shared by any number of clients;
by default the running loop's one per base URL (`shared_server_clock`).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable

from bitget_keys.errors import TransportError

__all__ = ["ServerClock", "shared_server_clock", "wall_clock_ms"]


def wall_clock_ms() -> int:
    """The local wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class ServerClock:
    """
    Bitget's clock as measured from here: one offset that any number of clients share.

    Clients not given one share the running loop's clock for their base URL and local
    clock (`shared_server_clock`), so it is measured once for all of them instead of
    once each: Bitget allows its time endpoint 20 requests a second per IP, so a hundred
    clients that each synced first would wait five seconds. ``Client(server_clock=...)``
    shares one explicitly, across loops or base URLs as the caller sees fit.

    Args:
        wall_ms: the local wall clock in epoch milliseconds.
    """

    __slots__ = ("failed", "lock", "offset_ms", "synced_at", "wall_ms")

    def __init__(self, wall_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.wall_ms = wall_ms
        #: Bitget's clock minus the local one, in ms, as last measured.
        self.offset_ms = 0
        #: ``time.monotonic()`` of the last measurement, or ``None``.
        self.synced_at: float | None = None
        #: Held while measuring, so clients sharing the clock measure it once.
        self.lock = asyncio.Lock()
        #: ``time.monotonic()`` of the last measurement that got no answer, and why.
        self.failed: tuple[float, TransportError] | None = None

    def __repr__(self) -> str:
        return f"<ServerClock offset_ms={self.offset_ms} synced={self.synced_at is not None}>"

    def now_ms(self) -> int:
        """Bitget's time now, as far as the last measurement tells."""
        return self.wall_ms() + self.offset_ms


_SHARED: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, Callable[[], int]], ServerClock]
] = weakref.WeakKeyDictionary()


def shared_server_clock(base_url: str, wall_ms: Callable[[], int] = wall_clock_ms) -> ServerClock:
    """
    The running loop's `ServerClock` for ``base_url``, shared by every client not given one.

    Its lock serialises the measurements, so any number of clients starting together
    send one time request. Only clients of one base URL share a clock (another server
    has another clock), and only clients of the same ``wall_ms`` (the same callable):
    an offset measured against one local clock is wrong for another, so a client on a
    test clock shares only with clients on that very clock.
    """
    clocks = _SHARED.setdefault(asyncio.get_running_loop(), {})
    clock = clocks.get((base_url, wall_ms))
    if clock is None:
        clock = clocks[base_url, wall_ms] = ServerClock(wall_ms)
    return clock
