"""
What a scheduler keeps per lane and what it must fill in to take a slot.

`LaneCore` is what both kinds of lane count (dispatches, completions, observed delays);
`LaneAliases` is the lane table's record of lane names found to be another UID's;
`SlotHooks` names the steps of `bitget_keys.limits.core.SchedulerCore.run` that each
scheduler fills in. `StormWatch` tells a storm of 429s from one lane's thin margin, and
the log lines say what a 429 or a lockout did. The in-memory lane is
`bitget_keys.limits.scheduler.MemoryLane`; the Redis one lives in
`bitget_keys.limits.redis`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from bitget_keys._endpoints import Endpoint
from bitget_keys.errors import ClientStateError
from bitget_keys.limits.flows import FlowQueue
from bitget_keys.limits.policy import (
    IP_CAP_WINDOW,
    STORM_LANES,
    DelayLog,
    Policy,
    mark_completed,
    recent_jitter,
)
from bitget_keys.limits.statistics import LaneStatistics
from bitget_keys.limits.waiter import Waiter

__all__ = [
    "LaneAliases",
    "LaneCore",
    "Rerouted",
    "SlotHooks",
    "StormWatch",
    "bound_loop",
    "lane_account",
    "log_lockout",
    "log_pause_all",
    "log_throttle",
]

_log = logging.getLogger("bitget_keys.limits")


def lane_account(uid: str) -> str:
    """A lane's account as logs show it: its UID, or a key's first characters."""
    if uid.startswith("key:"):
        return f"key {uid[4:10]}…"
    return f"UID {uid}"


def log_throttle(uid: str, endpoint: str, pause: float, *, storm: bool) -> None:
    """A 429 on one lane, and what it means."""
    _log.warning(
        "429 for %s on %s: lane paused %.2f s%s",
        lane_account(uid),
        endpoint,
        pause,
        " (429s on many lanes at once: the IP's limit, not this lane's margin)" if storm else "",
    )


def log_pause_all(duration: float) -> None:
    """Every lane pauses: an IP-level throttle (`SchedulerCore.pause_all`)."""
    _log.warning("every lane paused %.2f s: an IP-level throttle", duration)


def log_lockout(cap: int, lockout: float) -> None:
    """Our own count passed the IP cap: Bitget locks the IP out, so every lane waits."""
    _log.error(
        "more than %d requests in %.0f s from this IP: every lane paused %.0f s, "
        "as Bitget locks the IP out",
        cap,
        IP_CAP_WINDOW,
        lockout,
    )


T = TypeVar("T")


def bound_loop(bound: asyncio.AbstractEventLoop | None, owner: str) -> asyncio.AbstractEventLoop:
    """
    The running loop, which must be ``bound`` unless the scheduler is not bound yet.

    Raises:
        ClientStateError: ``owner`` is bound to another event loop.
    """
    loop = asyncio.get_running_loop()
    if bound is not None and bound is not loop:
        msg = f"this {owner} is bound to another event loop; create one scheduler per loop"
        raise ClientStateError(msg)
    return loop


class StormWatch:
    """
    Tells a storm of 429s from one lane's thin margin.

    429s on `STORM_LANES` or more lanes within ``window`` seconds point at the IP or
    the exchange: widening every lane's margin then would only slow everything down for
    the many minutes the margins take to decay, while the storm itself ends on its own.
    """

    __slots__ = ("_recent", "_window")

    def __init__(self, window: float) -> None:
        self._window = window
        self._recent: deque[tuple[float, tuple[str, str]]] = deque()

    def seen(self, now: float, key: tuple[str, str]) -> bool:
        """Record a 429 on lane ``key``; return whether it is part of a storm."""
        recent = self._recent
        while recent and recent[0][0] < now - self._window:
            recent.popleft()
        recent.append((now, key))
        return len({lane for _, lane in recent}) >= STORM_LANES


class Rerouted(Exception):  # noqa: N818 - control flow, never leaves the scheduler
    """A request leaves a detour unsent, to be tried the scheduler's own way again."""


def _waiting(waiter: Waiter) -> bool:
    return not waiter.done()


class LaneCore:
    """One (UID, endpoint) lane's counters, completions and observed delays."""

    __slots__ = (
        "delays",
        "dispatched",
        "done",
        "endpoint",
        "in_flight",
        "paused_until",
        "policy",
        "queued",
        "throttled",
        "uid",
        "waiters",
    )

    def __init__(self, uid: str, endpoint: Endpoint, policy: Policy) -> None:
        self.uid = uid
        self.endpoint = endpoint
        self.policy = policy
        #: Waiting callers: higher priorities first, then flows in turn, each flow's
        #: callers in call order (a retry first in its flow). Cancelled waiters stay
        #: until they reach the front, where they are dropped.
        self.waiters: FlowQueue[Waiter] = FlowQueue(_waiting)
        #: Live (not cancelled) waiters.
        self.queued = 0
        self.in_flight = 0
        self.dispatched = 0
        self.throttled = 0
        self.paused_until = -math.inf
        #: (loop time, Bitget's requestTime minus our send time in ms) per response;
        #: made on the first one, since most lanes are never observed.
        self.delays: DelayLog | None = None
        #: When the last N dispatches completed (``inf`` while in flight), oldest first.
        self.done: list[float] = []

    def margin_at(self, now: float) -> float:
        """The safety margin in force at ``now``."""
        raise NotImplementedError

    def droppable(self, now: float) -> bool:
        """Whether dropping the lane from the table now changes nothing."""
        raise NotImplementedError

    def interval(self, margin: float) -> float:
        return self.endpoint.window / self.endpoint.rate * (1 + margin)

    def ahead(self, flow: Hashable, priority: int, *, first: bool = False) -> int:
        """
        How many waiting requests go before a new one of ``flow`` at ``priority``.

        The queue counts cancelled waiters it still holds; the live count bounds it, and
        is exact when all requests share one flow and one priority.
        """
        return min(self.queued, self.waiters.ahead(flow, priority, first=first))

    def stamp(self, now: float) -> int:  # noqa: ARG002 - subclasses keep the send time
        """Record a dispatch at ``now``; returns its sequence number."""
        seq = self.dispatched
        self.dispatched = seq + 1
        self.in_flight += 1
        done = self.done
        done.append(math.inf)
        if len(done) > self.endpoint.rate:
            del done[0]
        return seq

    def settle(self, seq: int, now: float) -> None:
        """Record that dispatch ``seq`` completed (answered, failed or abandoned) at ``now``."""
        self.in_flight -= 1
        mark_completed(self.done, self.dispatched, seq, now)

    def statistics(self, now: float) -> LaneStatistics:
        margin = self.margin_at(now)
        return LaneStatistics(
            uid=self.uid,
            endpoint=self.endpoint.name,
            policy=self.policy,
            queued=self.queued,
            in_flight=self.in_flight,
            dispatched=self.dispatched,
            throttled=self.throttled,
            margin=margin,
            interval=self.interval(margin),
            paused_until=self.paused_until if self.paused_until > now else None,
            jitter=recent_jitter(self.delays, now),
        )


L = TypeVar("L", bound=LaneCore)


class LaneAliases(Generic[L]):
    """
    The lane table's aliases: lane names found to be another UID's, whose requests go
    to that UID's lanes (`alias`). `SchedulerCore` holds the table and the aliases.
    """

    __slots__ = ()

    _aliases: dict[str, str]
    _lanes: dict[tuple[str, str], L]

    def _bind(self) -> asyncio.AbstractEventLoop:
        raise NotImplementedError

    def alias(self, lane_uid: str, uid: str) -> None:
        """
        Pace ``lane_uid``'s requests as ``uid``'s from now on: both name one account.

        A client whose credentials do not carry the UID paces the calls that tell it
        under a lane of its key; once it knows the UID it says so here, so the key's
        requests, past and to come, count against the UID's one budget. What
        ``lane_uid``'s lanes already spent is carried over (`_join`).

        Raises:
            ClientStateError: the scheduler is closed or bound to another event loop.
        """
        if lane_uid == uid or self._aliases.get(lane_uid) == uid:
            return
        now = self._bind().time()
        self._aliases[lane_uid] = uid
        for key in [key for key in self._lanes if key[0] == lane_uid]:
            self._join(key, (uid, key[1]), now)

    def _join(self, old: tuple[str, str], new: tuple[str, str], now: float) -> None:
        """
        Make lane ``new`` account for what lane ``old`` spent; by default ``old`` simply
        becomes ``new`` when ``new`` holds nothing that matters.
        """
        target = self._lanes.get(new)
        if target is None or target.droppable(now):
            lane = self._lanes.pop(old)
            lane.uid = new[0]
            self._lanes[new] = lane


class SlotHooks(LaneAliases[L]):
    """
    The steps of taking a slot that each scheduler fills in: how a lane is made
    (`_new_lane`), how a slot is taken at once (`_slot_now`) or after a wait (`_queue`,
    `_granted`, `_left_queue`), what a 429 changes (`_on_throttled`) and how a dispatch
    completes (`_settle`).
    """

    __slots__ = ()

    def _new_lane(self, uid: str, endpoint: Endpoint, policy: Policy) -> L:
        raise NotImplementedError

    # -- taking a slot: what subclasses fill in --------------------------------------

    def _detouring(self, now: float) -> bool:  # noqa: ARG002 - the Redis fallback overrides
        """Whether requests go another way now (the Redis scheduler's fallback)."""
        return False

    async def _detour(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: L,
        send: Callable[[], Awaitable[T]],
        max_wait: float | None,
    ) -> T:
        """
        Send through the other way; only called while `_detouring`.

        Raises:
            Rerouted: the detour ended before this request was sent.
        """
        raise NotImplementedError

    def _slot_now(self, lane: L, now: float) -> int | None:
        """Stamp a slot at once if nothing needs waiting for; its sequence number."""
        raise NotImplementedError

    def _queue(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: L,
        now: float,
        max_wait: float | None,
        *,
        retry: bool,
        flow: Hashable | None = None,
        priority: int = 0,
    ) -> Awaitable[Any]:
        """
        Queue a request of ``flow`` at ``priority`` (a retry first in its flow); what it
        returns is awaited for the slot.
        """
        raise NotImplementedError

    def _queue_timeout(self, max_wait: float | None) -> float | None:
        """The timeout `run` puts around the wait (``None``: the wait keeps its own)."""
        return max_wait

    def _granted(self, lane: L, granted: Any, now: float) -> int:
        """The wait ended with ``granted``: stamp the slot; its sequence number."""
        raise NotImplementedError

    def _left_queue(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: L,
        pending: Awaitable[Any],
        exc: BaseException,
        max_wait: float | None,
    ) -> bool:
        """The wait raised ``exc``: clean up; whether to go round again (or re-raise)."""
        raise NotImplementedError

    async def _on_throttled(self, loop: asyncio.AbstractEventLoop, lane: L) -> float:
        """Apply a 429 on ``lane``; returns how long a retry would wait."""
        raise NotImplementedError

    def _settle(self, loop: asyncio.AbstractEventLoop, lane: L, seq: int) -> None:
        raise NotImplementedError
