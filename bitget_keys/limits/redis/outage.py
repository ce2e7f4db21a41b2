"""
What the Redis scheduler does while its backend is down: fail closed, or pace locally.

`Outage` keeps the backend's state as this process saw it (since when it is down, until
when it is not tried again, why) and, with ``fallback=f``, a local `RateLimitScheduler`
paced at the fraction ``f`` of every rate that sends meanwhile. When the outage window
closes, requests still queued in the fallback leave it unsent (`Rerouted`) and reserve
through the backend again. The rules and their reasons are in ``docs/rate-limits.md``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs

from bitget_keys.errors import RateLimitBackendError
from bitget_keys.limits.core import Rerouted, SchedulerOptions
from bitget_keys.limits.scheduler import RateLimitScheduler

if TYPE_CHECKING:
    from bitget_keys.limits.redis.booking import RedisLane

__all__ = ["Outage"]

T = TypeVar("T")

_log: Final = logging.getLogger("bitget_keys.redis_limits")


class _Detour:
    """One request sent (or waiting to be sent) through the fallback."""

    __slots__ = ("rerouted", "sent", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None
        self.sent = False
        self.rerouted = False


class Outage:
    """The backend's health as this process saw it, and the local fallback."""

    __slots__ = (
        "_described",
        "_detours",
        "_down_since",
        "_down_until",
        "_fallback",
        "_fraction",
        "_last_detail",
        "_recheck",
        "_window_timer",
        "dispatched",
        "errors",
    )

    def __init__(
        self,
        described: str,
        *,
        fraction: float | None,
        recheck: float,
        options: SchedulerOptions,
    ) -> None:
        self._described = described
        self._recheck = recheck
        self._fraction = fraction
        self._fallback: RateLimitScheduler | None = None
        if fraction is not None:
            ip_budget = options["ip_budget"]
            fallback = options.copy()
            fallback["margin"] = (1 + options["margin"]) / fraction - 1
            fallback["max_margin"] = (1 + options["max_margin"]) / fraction - 1
            # The same policy and share, of a fraction of the budget.
            fallback["ip_budget"] = (
                None
                if ip_budget is None
                else attrs.evolve(
                    ip_budget,
                    rate=ip_budget.rate * fraction,
                    limit=max(1, int(ip_budget.limit * fraction)),
                )
            )
            self._fallback = RateLimitScheduler(**fallback)
        #: Requests sent through the fallback so far.
        self.dispatched = 0
        #: Backend calls that failed.
        self.errors = 0
        #: While the backend is down: since when, until when it is not tried, and why.
        self._down_since: float | None = None
        self._down_until = -float("inf")
        self._last_detail = ""
        #: Requests inside the fallback, and the call that ends the outage window.
        self._detours: dict[_Detour, None] = {}
        self._window_timer: asyncio.TimerHandle | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def close(self) -> None:
        if self._window_timer is not None:
            self._window_timer.cancel()

    def local(self, now: float) -> bool:
        """Whether new requests go through the local fallback now."""
        return self._fallback is not None and now < self._down_until

    def can_fall_back(self) -> bool:
        return self._fallback is not None

    def check(self, lane: RedisLane, now: float) -> None:
        """
        Fail at once while the backend is known to be down (until the next recheck).

        Raises:
            RateLimitBackendError: the backend failed less than ``recheck`` ago.
        """
        if now < self._down_until:
            left = self._down_until - now
            raise RateLimitBackendError(
                self._described,
                f"{self._last_detail}; not tried again for {left:.1f} s",
                lane.endpoint.path,
                lane.uid,
            )

    def up(self, now: float) -> None:
        """The backend answered."""
        if self._down_since is not None:
            _log.warning(
                "rate-limit backend %s is back after %.1f s; limits are shared again",
                self._described,
                now - self._down_since,
            )
            self._down_since = None

    def mark_down(self, loop: asyncio.AbstractEventLoop | None, now: float, detail: str) -> None:
        self.errors += 1
        self._last_detail = detail
        self._down_until = now + self._recheck
        if self._fallback is not None and loop is not None:
            if self._window_timer is not None:
                self._window_timer.cancel()
            self._window_timer = loop.call_at(self._down_until, self._close_window)
        if self._down_since is not None:
            _log.debug("rate-limit backend %s still down: %s", self._described, detail)
            return
        self._down_since = now
        if self._fraction is None:
            _log.warning(
                "rate-limit backend %s failed (%s): no request is sent until it is back "
                "(retried every %.1f s)",
                self._described,
                detail,
                self._recheck,
            )
        else:
            _log.warning(
                "rate-limit backend %s failed (%s): pacing locally at %.0f%% of the rates "
                "until it is back (retried every %.1f s)",
                self._described,
                detail,
                100 * self._fraction,
                self._recheck,
            )

    async def run(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: RedisLane,
        send: Callable[[], Awaitable[T]],
        max_wait: float | None,
        *,
        hold: float,
    ) -> T:
        """
        Send through the local fallback while the backend is down.

        ``hold`` is how long after a local send the lane's next backend slot must wait.

        Raises:
            Rerouted: the backend is to be tried again before this request was sent.
        """
        fallback = self._fallback
        assert fallback is not None  # noqa: S101 - only called with a fallback
        detour = _Detour()

        async def stamped() -> T:
            now = loop.time()
            if not self.local(now):
                # Redis is tried again from now on: no local send may follow a Redis slot.
                raise Rerouted
            detour.sent = True
            # Back on Redis, this lane's next slot comes a window after this send.
            lane.hold_until = max(lane.hold_until, now + hold)
            lane.last_used = now
            self.dispatched += 1
            return await send()

        async def detour_run() -> T:
            # Nothing local within a window of this lane's last Redis slot: slots other
            # processes booked are unknown, but this process never crowds its own.
            if (delay := lane.shared_until - loop.time()) > 0:
                await asyncio.sleep(delay)
            return await fallback.run(lane.uid, lane.endpoint, stamped, max_wait=max_wait)

        # A task of its own, so that it can be taken out of the fallback's queue when the
        # outage window closes (it costs a task per request only while Redis is down).
        task = loop.create_task(detour_run())
        detour.task = task
        self._detours[detour] = None
        lane.fallback_pending += 1
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if detour.rerouted and current is not None and not current.cancelling():
                raise Rerouted from None
            raise
        finally:
            lane.fallback_pending -= 1
            self._detours.pop(detour, None)

    def _close_window(self) -> None:
        """The outage window ended: what still waits in the fallback goes back to Redis."""
        self._window_timer = None
        for detour in list(self._detours):
            if not detour.sent and detour.task is not None and not detour.task.done():
                detour.rerouted = True
                detour.task.cancel()
