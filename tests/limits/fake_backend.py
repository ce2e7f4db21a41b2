"""
`FakeSlots`: an in-process `RateLimitBackend` with the scripts' rules on the loop's clock.

Passed as ``backend=`` to `RedisRateLimitScheduler`, it lets the scheduler's local logic
(FIFO, retries, max_wait, the fallback) run on a fake loop clock, without Redis.
"""

from __future__ import annotations

import asyncio

import attrs

from bitget_keys.errors import RateLimitBackendError
from bitget_keys.limits.redis import BackendLane, Grant

__all__ = ["FakeSlots"]


class FakeSlots:
    """A reservation source with the scripts' rules, on the loop's (fake) clock."""

    described = "redis://fake:6379/0"

    def __init__(self) -> None:
        self.round_trips = 0
        self.tat: dict[str, float] = {}
        self.pause: dict[str, float] = {}
        self.raised: dict[str, float] = {}
        self.ip_pause = -1.0
        self.down = False
        self.throttles: list[tuple[str, bool]] = []
        self.ip_pauses: list[float] = []
        self.holds: list[float] = []
        #: Seconds each answer takes to come back after the slot was decided (the
        #: first answers take ``answer_delays``, in order, if given).
        self.answer_delay = 0.0
        self.answer_delays: list[float] = []
        #: Seconds after its slot a dispatch counts as completed when not reported; as
        #: in Redis, the caller must send within the first half.
        self.lease = float("inf")
        #: How often the scheduler closed the backend.
        self.closed = 0
        #: Dispatch numbers handed out, and those reported completed (or given up).
        self.granted = 0
        self.completed: list[int] = []
        #: Reservations answered "deferred" (the slot lay beyond their horizon).
        self.deferred = 0

    def _fail(self) -> None:
        self.round_trips += 1
        if self.down:
            raise RateLimitBackendError(self.described, "ConnectionError: Connection refused")

    async def reserve(
        self,
        lane: BackendLane,
        *,
        margin: float,
        max_wait: float | None,
        hold: float,
        horizon: float | None = None,
    ) -> Grant:
        self._fail()
        now = asyncio.get_running_loop().time()
        self.holds.append(hold)
        margin = max(margin, self.raised.get(lane.key, 0.0))
        pause = self.pause.get(lane.key, -1.0)
        start = max(now + hold, self.tat.get(lane.key, -1.0), pause, self.ip_pause)
        wait = start - now
        grant = Grant(granted=True, wait=wait, margin=margin, paused_for=max(0.0, pause - now))
        if max_wait is not None and wait > max_wait:
            return Grant(granted=False, wait=wait, margin=margin, paused_for=grant.paused_for)
        if horizon is not None and wait > horizon:
            self.deferred += 1
            return attrs.evolve(grant, deferred=True)
        self.tat[lane.key] = start + lane.endpoint.window / lane.endpoint.rate * (1 + margin)
        grant = attrs.evolve(grant, seq=self.granted)
        self.granted += 1
        delay = self.answer_delays.pop(0) if self.answer_delays else self.answer_delay
        if delay:
            await asyncio.sleep(delay)
            answered = asyncio.get_running_loop().time()
            grant = attrs.evolve(grant, wait=start - answered)
        else:
            answered = now
        return attrs.evolve(grant, lease=start + self.lease / 2 - answered)

    async def complete(self, lane: BackendLane, seq: int, *, at: float) -> None:  # noqa: ARG002
        """Recorded without a round trip: the fake counts reservations only."""
        if self.down:
            raise RateLimitBackendError(self.described, "ConnectionError: Connection refused")
        self.completed.append(seq)

    async def throttle(
        self, lane: BackendLane, *, margin: float, max_margin: float, pause: float, storm: bool
    ) -> tuple[float, float]:
        self._fail()
        now = asyncio.get_running_loop().time()
        self.throttles.append((lane.key, storm))
        current = max(margin, self.raised.get(lane.key, 0.0))
        self.raised[lane.key] = current if storm else min(max_margin, 1.5 * max(current, 0.02))
        self.pause[lane.key] = max(self.pause.get(lane.key, -1.0), now + pause)
        return self.raised[lane.key], self.pause[lane.key] - now

    async def pause_ip(self, duration: float) -> None:
        self._fail()
        self.ip_pauses.append(duration)
        self.ip_pause = asyncio.get_running_loop().time() + duration

    async def aclose(self) -> None:
        self.closed += 1
