"""
`RateLimitScheduler`: one fair lane per (UID, endpoint) and one budget per IP, in memory.

Every client uses it by default. A lane (`MemoryLane`) serves its waiting requests by
priority, then their flows in turn, FIFO within a flow (`bitget_keys.limits.flows`), and
releases them at least ``(W/N)·(1+m)`` apart (`Policy.SPACING`) or at most N in any
``W·(1+m)`` (`Policy.SLIDING`), counting each slot from when the request N before
*completed*, so however requests are delayed on the way no window of W seconds at the
server holds N+1. A slot is stamped with ``loop.time()`` in the caller's own task just
before ``send()``, after the lane took its in-flight permit and IP token, so a busy loop
can only make a lane later, never denser. Every lane also takes a token of the per-IP
budget (`IPBudget`: an exact count per rolling window, and under `IPPolicy.EVEN` a GCRA
pace; `bitget_keys.limits.ipgate`); ready lanes take tokens and permits by the priority
of their first request. There is no task per lane or per request: a queued request
costs its `Waiter`, and completions, give-backs and timer callbacks move lanes on. The
429 rules, options and retry loop come from `bitget_keys.limits.core`; the arithmetic
from `bitget_keys.limits.policy`.

The reasoning (keying, margins, why not aiolimiter) and the measured figures are in
``docs/rate-limits.md``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Hashable
from typing import Any

from bitget_keys._endpoints import Endpoint
from bitget_keys.errors import RateLimitWaitTooLongError
from bitget_keys.limits.core import LaneCore, SchedulerCore, StormWatch, bound_loop
from bitget_keys.limits.flows import ReadyLanes
from bitget_keys.limits.ipgate import IPGate
from bitget_keys.limits.policy import (
    ANY_UID,
    DEFAULT_IP_BUDGET,
    EARLY,
    DelayLog,
    IPBudget,
    Policy,
    decayed_margin,
    jitter,
    lane_key,
    mark_completed,
    next_slot,
    recent_jitter,
    record_delay,
    widened_margin,
)
from bitget_keys.limits.statistics import LaneStatistics, SchedulerStatistics
from bitget_keys.limits.waiter import Waiter

# Besides its own two classes, this module still offers what it did before the shared
# core and the policy arithmetic had modules of their own (`bitget_keys.limits` is where
# they are published).
__all__ = [
    "ANY_UID",
    "DEFAULT_IP_BUDGET",
    "DelayLog",
    "IPBudget",
    "LaneStatistics",
    "MemoryLane",
    "Policy",
    "RateLimitScheduler",
    "SchedulerStatistics",
    "StormWatch",
    "bound_loop",
    "decayed_margin",
    "jitter",
    "lane_key",
    "mark_completed",
    "next_slot",
    "recent_jitter",
    "record_delay",
    "widened_margin",
]


class MemoryLane(LaneCore):
    """One (UID, endpoint) lane in memory: its waiters, its recent dispatches, its 429 state."""

    __slots__ = (
        "blocked",
        "floor",
        "granted",
        "raised",
        "sent",
        "throttled_at",
        "timer",
    )

    def __init__(self, uid: str, endpoint: Endpoint, policy: Policy, margin: float) -> None:
        super().__init__(uid, endpoint, policy)
        # A waiter in ``waiters`` is granted when its caller may stamp its slot.
        #: The head was woken and has not stamped its slot (or given it back) yet.
        self.granted = False
        #: The lane's head waits among the scheduler's ready lanes for a permit or an
        #: IP token.
        self.blocked = False
        #: The wake-up call for when the lane's head may go.
        self.timer: asyncio.TimerHandle | None = None
        #: Dispatch stamps of the last N dispatches, oldest first (completions are in
        #: ``done``).
        self.sent: list[float] = []
        self.floor = margin
        self.raised = margin
        self.throttled_at: float | None = None

    def __repr__(self) -> str:
        return (
            f"<MemoryLane {self.uid}/{self.endpoint.name} {self.policy.value} "
            f"queued={self.queued} in_flight={self.in_flight} "
            f"dispatched={self.dispatched} throttled={self.throttled}>"
        )

    # -- the queue --------------------------------------------------------------------

    def push(self, waiter: Waiter, flow: Hashable, priority: int, *, first: bool) -> None:
        self.waiters.push(waiter, flow, priority, first=first)
        self.queued += 1

    def live_head(self) -> Waiter | None:
        """The waiter that goes next, dropping cancelled ones before it."""
        return self.waiters.peek()

    def pop(self) -> Waiter | None:
        return self.waiters.pop()

    # -- the rule ----------------------------------------------------------------------

    def margin_at(self, now: float) -> float:
        if self.throttled_at is None:
            return self.floor
        return decayed_margin(self.raised, self.floor, now - self.throttled_at)

    def next_at(self, now: float, ahead: int = 0, *, estimate: bool = False) -> float:
        """
        When the lane's next dispatch (after ``ahead`` others) may go by the lane's rule.

        ``inf`` while the dispatch N back is still in flight; with ``estimate``, such a
        dispatch counts as completed when it was sent, for a guess at a wait.
        """
        rate, window = self.endpoint.rate, self.endpoint.window
        margin = self.margin_at(now)
        done = self.done
        if estimate and math.inf in done:
            done = [
                sent if at == math.inf else at for sent, at in zip(self.sent, done, strict=True)
            ]
        if self.policy is Policy.SLIDING:
            return next_slot(done, limit=rate, period=window * (1 + margin), now=now, ahead=ahead)
        interval = self.interval(margin)
        first = max(now, self.sent[-1] + interval) if self.sent else now
        first = next_slot(done, limit=rate, period=window, now=first)
        return first + ahead * interval

    def stamp(self, now: float) -> int:
        """Record a dispatch at ``now``; returns its sequence number."""
        sent = self.sent
        sent.append(now)
        if len(sent) > self.endpoint.rate:
            del sent[0]
        return super().stamp(now)

    def droppable(self, now: float) -> bool:
        """Whether the lane behaves exactly as a new one would, so it can be dropped."""
        return (
            self.queued == 0
            and self.timer is None
            and not self.granted
            and not self.blocked
            and self.in_flight == 0
            and self.paused_until <= now
            and self.margin_at(now) == self.floor
            and (not self.sent or self.sent[-1] + self.interval(self.floor) <= now)
            and (not self.done or max(self.done) + self.endpoint.window * (1 + self.floor) <= now)
        )


class RateLimitScheduler(SchedulerCore[MemoryLane]):
    """
    Keeps every request inside its (UID, endpoint) limit and the IP's budget.

    Share one scheduler between all clients that send from one egress IP in one event
    loop; it binds to the first loop that uses it. See ``docs/rate-limits.md`` for the
    theory.

    Args:
        margin: the safety margin every lane starts from and decays back to.
        max_margin: the most a lane's margin grows to after repeated 429s.
        policies: `Policy` per endpoint name; ``default_policy`` where not given.
        default_policy: the `Policy` of every endpoint ``policies`` does not name.
        ip_budget: the per-IP budget shared by every lane; ``None`` switches it off.
        ip_cap: Bitget's per-IP cap per 60 s. A 429 while the scheduler's own count of
            the last 60 s is above it pauses every lane for ``lockout`` seconds.
        max_in_flight: requests sent and not yet answered, over all lanes; keep it no
            larger than the HTTP connection pool.
        retries: how often a throttled request is sent again before its 429 is raised.
        backoff: seconds a lane pauses after a 429, plus up to 20% at random.
        lockout: seconds every lane pauses once the IP cap was breached.

    Raises:
        ConfigurationError: a setting is out of range or names an unknown endpoint.
    """

    __slots__ = ("_blocked", "_free", "_ip", "_ip_timer")

    def _setup(self) -> None:
        #: In-flight permits left.
        self._free = self._max_in_flight
        #: Lanes whose head may go by its own rule and waits for a permit or an IP
        #: token: the highest priority first, then in the order they became ready.
        self._blocked: ReadyLanes[MemoryLane] = ReadyLanes()
        self._ip_timer: asyncio.TimerHandle | None = None
        self._ip = IPGate(self._ip_budget, self._ip_cap)
        #: When the last IP tokens were taken, for the budget and the cap alike.
        self._sent = self._ip.sent

    def __repr__(self) -> str:
        busy = sum(1 for lane in self._lanes.values() if lane.queued)
        return (
            f"<RateLimitScheduler lanes={len(self._lanes)} busy={busy} "
            f"in_flight={self._max_in_flight - self._free}"
            f"/{self._max_in_flight} margin={self._margin} "
            f"loop={'bound' if self._loop else 'unbound'}>"
        )

    def statistics(self) -> SchedulerStatistics:
        """A frozen snapshot of every lane and of the shared budgets."""
        return SchedulerStatistics(**self._snapshot())

    def _new_lane(self, uid: str, endpoint: Endpoint, policy: Policy) -> MemoryLane:
        return MemoryLane(uid, endpoint, policy, self._margin)

    def _join(self, old: tuple[str, str], new: tuple[str, str], now: float) -> None:
        target = self._lanes.get(new)
        if target is None or target.droppable(now):
            super()._join(old, new, now)  # the key's lane becomes the UID's, queue and all
            return
        # Both lanes are busy: the UID's takes the key lane's past dispatches into its
        # rule; the key lane still serves the requests it already holds (those in flight
        # or queued there are not counted by the UID's lane: only a UID learned while
        # another client of it is busy on the same endpoint leaves that gap).
        lane = self._lanes[old]
        rate = target.endpoint.rate
        target.sent = sorted(lane.sent + target.sent)[-rate:]
        # Finite times sort before ``inf``, so the UID lane's in-flight dispatches keep
        # their places counted from the end, which is how `settle` finds them.
        carried = [at for at in lane.done if at != math.inf]
        target.done = sorted(carried + target.done)[-rate:]

    # -- run()'s steps -----------------------------------------------------------------

    def _slot_now(self, lane: MemoryLane, now: float) -> int | None:
        return self._dispatch(lane, now) if self._free_now(lane, now) else None

    def _granted(self, lane: MemoryLane, granted: Any, now: float) -> int:  # noqa: ARG002
        # Stamped here, in the caller's task, at the instant it runs: a busy loop can
        # only make the lane later, never denser.
        lane.granted = False
        return self._dispatch(lane, now, taken=True)

    def _left_queue(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: MemoryLane,
        pending: Awaitable[Any],
        exc: BaseException,
        max_wait: float | None,
    ) -> bool:
        assert isinstance(pending, Waiter)  # noqa: S101 - what _queue returns
        self._abandon(lane, pending)
        if isinstance(exc, TimeoutError) and max_wait is not None:
            wait = max_wait + self._wait(lane, loop.time())
            raise RateLimitWaitTooLongError(lane.endpoint.path, lane.uid, wait, max_wait) from None
        return False

    # -- lanes -----------------------------------------------------------------------

    def _ready_at(self, lane: MemoryLane, now: float) -> float:
        """When the lane's head may go, as far as the lane and the pauses are concerned."""
        return max(lane.next_at(now), lane.paused_until, self._paused_until)

    def _ip_ready_at(self, now: float) -> float:
        return self._ip.ready_at(now)

    def _wait(self, lane: MemoryLane, now: float, ahead: int = 0) -> float:
        """Roughly how long a request with ``ahead`` others before it in its lane waits."""
        start = max(now, lane.paused_until, self._paused_until)
        return max(lane.next_at(start, ahead, estimate=True), self._ip_ready_at(now)) - now

    async def _on_throttled(self, loop: asyncio.AbstractEventLoop, lane: MemoryLane) -> float:
        now = loop.time()
        storm, pause = self._decide_throttle(lane, now)
        margin = lane.margin_at(now)
        lane.raised = margin if storm else widened_margin(margin, self._max_margin)
        lane.throttled_at = now
        lane.paused_until = max(lane.paused_until, now + pause)
        self._lock_out_if_breached(now)
        return self._wait(lane, now)

    # -- the caller's side -----------------------------------------------------------

    def _free_now(self, lane: MemoryLane, now: float) -> bool:
        """Whether a request may go at once: nobody waits for anything it needs."""
        return (
            lane.queued == 0
            and lane.timer is None
            and not lane.granted
            and self._free > 0
            and not self._blocked
            and self._ready_at(lane, now) <= now + EARLY
            and self._ip_ready_at(now) <= now + EARLY
        )

    def _dispatch(self, lane: MemoryLane, now: float, *, taken: bool = False) -> int:
        """Stamp a slot at ``now``, taking its permit and IP token unless ``taken``."""
        if not taken:
            self._free -= 1
            self._ip.take(now)
        seq = lane.stamp(now)
        if taken:
            self._pump(lane)
        return seq

    def _queue(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: MemoryLane,
        now: float,
        max_wait: float | None,
        *,
        retry: bool,
        flow: Hashable | None = None,
        priority: int = 0,
    ) -> Waiter:
        """
        Queue a request (a retry first in its flow); its waiter is granted when it may go.

        Raises:
            RateLimitWaitTooLongError: by the requests that go first, the predicted wait
                is longer than ``max_wait``; nothing was queued.
        """
        if max_wait is not None:
            wait = self._wait(lane, now, lane.ahead(flow, priority, first=retry))
            if wait > max_wait:
                raise RateLimitWaitTooLongError(lane.endpoint.path, lane.uid, wait, max_wait)
        waiter = Waiter(loop)
        lane.push(waiter, flow, priority, first=retry)
        if lane.blocked and priority > self._blocked.priority(lane):
            self._blocked.file(lane, priority)  # its first request now goes at this one's
        self._pump(lane)
        return waiter

    def _abandon(self, lane: MemoryLane, waiter: Waiter) -> None:
        """The caller stopped waiting (cancelled, timed out): consume nothing."""
        if waiter.done() and not waiter.cancelled():
            # Granted but not stamped: give the slot back (the IP token is spent).
            lane.granted = False
            self._release()
        else:
            waiter.cancel()
            lane.queued -= 1
        # If it was the head, the lane's next look drops it.
        self._pump(lane)

    def _settle(self, loop: asyncio.AbstractEventLoop, lane: MemoryLane, seq: int) -> None:
        lane.settle(seq, loop.time())
        # The lane's next slot may have waited for this completion.
        self._pump(lane)
        self._release()

    def _release(self) -> None:
        self._free += 1
        if self._blocked:
            self._serve_blocked()

    # -- waking lanes: callbacks, no task per lane or per request ------------------------

    def _pump(self, lane: MemoryLane) -> None:
        """Wake the lane's head if it may go now, or arrange to look again when it may."""
        if lane.granted or lane.blocked or lane.timer is not None:
            return
        if lane.live_head() is None:
            return
        loop = self._loop
        assert loop is not None  # noqa: S101 - bound by run() before any waiter exists
        now = loop.time()
        ready = self._ready_at(lane, now)
        if ready > now + EARLY:
            if ready < math.inf:
                lane.timer = loop.call_at(ready, self._wake, lane)
            # else: a dispatch still in flight decides; its completion pumps the lane.
            return
        lane.blocked = True
        self._blocked.file(lane, lane.waiters.top or 0)
        self._serve_blocked()

    def _wake(self, lane: MemoryLane) -> None:
        lane.timer = None
        self._pump(lane)

    def _wake_ip(self) -> None:
        self._ip_timer = None
        self._serve_blocked()

    def _serve_blocked(self) -> None:
        """
        Grant permits and IP tokens to ready lanes: the highest priority of their first
        requests first, then in the order they became ready.
        """
        blocked = self._blocked
        loop = self._loop
        assert loop is not None  # noqa: S101 - bound by run() before any waiter exists
        while self._free > 0 and (lane := blocked.first()) is not None:
            now = loop.time()
            head = lane.live_head()
            if head is None or self._ready_at(lane, now) > now + EARLY:
                # Left, or paused meanwhile: the lane looks again on its own.
                blocked.remove(lane)
                lane.blocked = False
                self._pump(lane)
                continue
            if lane.waiters.top != blocked.priority(lane):
                # Its first request left, and the next one's priority differs.
                blocked.file(lane, lane.waiters.top or 0)
                continue
            ip_ready = self._ip_ready_at(now)
            if ip_ready > now + EARLY:
                if self._ip_timer is None:
                    self._ip_timer = loop.call_at(ip_ready, self._wake_ip)
                return
            blocked.remove(lane)
            lane.blocked = False
            self._free -= 1
            self._ip.take(now)
            lane.pop()
            lane.queued -= 1
            lane.granted = True
            head.grant()
