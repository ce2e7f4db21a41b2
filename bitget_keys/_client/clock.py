"""`ServerClock`: Bitget's clock as measured from here, shared by any number of clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["ServerClock", "wall_clock_ms"]


def wall_clock_ms() -> int:
    """The local wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class ServerClock:
    """
    Bitget's clock as measured from here: one offset that any number of clients share.

    Every client keeps one of its own unless given one. Give the same `ServerClock` to
    all clients of one base URL (``Client(server_clock=...)``) and it is measured once
    for all of them instead of once each: Bitget allows its time endpoint 20 requests a
    second per IP, so a hundred clients that each sync first wait five seconds.

    Args:
        wall_ms: the local wall clock in epoch milliseconds.
    """

    __slots__ = ("lock", "offset_ms", "synced_at", "wall_ms")

    def __init__(self, wall_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.wall_ms = wall_ms
        #: Bitget's clock minus the local one, in ms, as last measured.
        self.offset_ms = 0
        #: ``time.monotonic()`` of the last measurement, or ``None``.
        self.synced_at: float | None = None
        #: Held while measuring, so clients sharing the clock measure it once.
        self.lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<ServerClock offset_ms={self.offset_ms} synced={self.synced_at is not None}>"

    def now_ms(self) -> int:
        """Bitget's time now, as far as the last measurement tells."""
        return self.wall_ms() + self.offset_ms
