"""
A fake clock for an asyncio event loop, so tests of rate limits never sleep.

asyncio asks ``loop.time()`` when timers are due, so replacing that one method moves
``asyncio.sleep``, ``asyncio.timeout``, ``loop.call_at`` and everything built on them
(the approach of aiolimiter's own tests). `LoopClock.advance` then steps from timer to
timer, so each callback runs at exactly the time it was scheduled for, and lets the loop
run until nothing more is ready.

One rule: with the clock frozen, never await something only a timer can complete. The
loop would block in real time for the timer's delay, find it still not due and repeat
for ever. Start such work as a task, `advance` the clock, then look at the task.

It relies on the standard asyncio loops (their ``_ready`` queue and ``_scheduled`` heap),
as the ``looptime`` plugin does; it does not work with uvloop.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType
from typing import Final, Self

__all__ = ["LoopClock"]

#: Loop iterations `LoopClock.settle` allows before it decides that something spins.
_MAX_ROUNDS: Final = 10_000


class LoopClock:
    """
    Replaces a running loop's clock with one that moves only when told to.

    Use it as ``with LoopClock() as clock:`` inside the loop; ``clock.now`` is the
    loop's time.

    Args:
        loop: the loop to patch; by default the running one.
        start: the time to start from.
    """

    __slots__ = ("_loop", "_saved_slow_callback", "now")

    def __init__(
        self, loop: asyncio.AbstractEventLoop | None = None, *, start: float = 0.0
    ) -> None:
        self._loop = loop or asyncio.get_running_loop()
        #: The loop's time, in seconds.
        self.now = start
        self._saved_slow_callback: float | None = None

    def __repr__(self) -> str:
        state = "installed" if self._saved_slow_callback is not None else "not installed"
        return f"<LoopClock now={self.now!r} {state}>"

    def time(self) -> float:
        """The fake time; this is what the loop's ``time`` method returns."""
        return self.now

    def __enter__(self) -> Self:
        self._loop.time = self.time  # type: ignore[method-assign]
        # In debug mode the loop times every callback with loop.time(): a test that
        # moves the clock inside a callback would be reported as a slow callback.
        self._saved_slow_callback = self._loop.slow_callback_duration
        self._loop.slow_callback_duration = math.inf
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The patch is an instance attribute; removing it uncovers the real method.
        vars(self._loop).pop("time", None)
        if self._saved_slow_callback is not None:
            # Not before the next callback: this one started on the fake clock and ends
            # on the real one, so debug mode would report it as very slow.
            self._loop.call_soon(
                setattr, self._loop, "slow_callback_duration", self._saved_slow_callback
            )
            self._saved_slow_callback = None

    def _next_timer(self) -> float | None:
        scheduled: list[asyncio.TimerHandle] = getattr(self._loop, "_scheduled", [])
        return min((h.when() for h in scheduled if not h.cancelled()), default=None)

    def _busy(self) -> bool:
        if getattr(self._loop, "_ready", None):
            return True
        # asyncio runs a timer once it is due within the clock's resolution.
        resolution: float = getattr(self._loop, "_clock_resolution", 0.0)
        due = self._next_timer()
        return due is not None and due < self.now + resolution

    async def settle(self) -> None:
        """
        Let the loop run until nothing is ready and no timer is due.

        Raises:
            RuntimeError: the loop was still busy after many iterations.
        """
        for _ in range(_MAX_ROUNDS):
            await asyncio.sleep(0)
            if not self._busy():
                return
        msg = f"the loop was still busy after {_MAX_ROUNDS} iterations at time {self.now}"
        raise RuntimeError(msg)

    async def advance_to(self, when: float) -> None:
        """Move the clock to ``when``, stopping at every timer on the way."""
        while True:
            await self.settle()
            due = self._next_timer()
            if due is None or due > when:
                break
            self.now = max(self.now, due)
        self.now = max(self.now, when)
        await self.settle()

    async def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward, stopping at every timer on the way."""
        await self.advance_to(self.now + seconds)
