"""
What both schedulers share: the options, the lane table, statistics and the 429 rules.

`SchedulerCore` holds the nine options every scheduler takes and checks them, binds to
one event loop, keeps the table of lanes (dropping idle ones), records ``requestTime``
observations, builds the statistics snapshot, decides what a 429 means (a storm or a
thin margin, how long to pause, whether the IP cap was breached) and runs the retry
loop of `SchedulerCore.run`. `RateLimitScheduler` (in memory) and
`RedisRateLimitScheduler` (through Redis) fill in how a slot is taken and what a 429
changes (the steps `bitget_keys.limits.lanes.SlotHooks` names). The reasoning behind the rules is
in ``docs/rate-limits.md``.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, ClassVar, TypedDict, TypeVar

from bitget_keys._endpoints import ENDPOINTS, Endpoint
from bitget_keys.errors import ConfigurationError, RateLimitExceededError
from bitget_keys.limits.lanes import (
    L,
    LaneAliases,
    LaneCore,
    Rerouted,
    SlotHooks,
    StormWatch,
    bound_loop,
    lane_account,
    log_lockout,
    log_pause_all,
    log_throttle,
)
from bitget_keys.limits.policy import (
    BACKOFF_JITTER,
    DEFAULT_IP_BUDGET,
    IP_CAP_WINDOW,
    SWEEP_EVERY,
    IPBudget,
    Policy,
    lane_key,
    next_slot,
    record_delay,
)

# What this module offered before lanes had a module of their own stays importable here.
__all__ = [
    "LaneAliases",
    "LaneCore",
    "Rerouted",
    "SchedulerCore",
    "SchedulerOptions",
    "StormWatch",
    "bound_loop",
    "lane_account",
    "resolved_options",
    "wait_limit",
]

T = TypeVar("T")


def wait_limit(max_wait: float | None, deadline: float | None, now: float) -> float | None:
    """The longest a request may wait at ``now``: ``max_wait``, or less by ``deadline``."""
    if deadline is None:
        return max_wait
    left = max(0.0, deadline - now)
    return left if max_wait is None else min(max_wait, left)


class SchedulerOptions(TypedDict, total=False):
    """The options every scheduler takes; `SchedulerCore` gives their defaults and checks."""

    margin: float
    max_margin: float
    policies: Mapping[str, Policy] | None
    default_policy: Policy
    ip_budget: IPBudget | None
    ip_cap: int
    max_in_flight: int
    retries: int
    backoff: float
    lockout: float


class SchedulerCore(SlotHooks[L]):
    """
    The options, loop binding, lane table, observations and 429 rules of a scheduler.

    Subclasses fill in the steps `SlotHooks` names.
    """

    __slots__ = (
        "_aliases",
        "_backoff",
        "_default_policy",
        "_ip_budget",
        "_ip_cap",
        "_lanes",
        "_lockout",
        "_loop",
        "_margin",
        "_max_in_flight",
        "_max_margin",
        "_paused_until",
        "_policies",
        "_retries",
        "_sent",
        "_storms",
        "_sweep_at",
    )

    #: The name errors about the event loop give the scheduler.
    _owner: ClassVar[str] = "RateLimitScheduler"

    def __init__(
        self,
        *,
        margin: float = 0.05,
        max_margin: float = 0.5,
        policies: Mapping[str, Policy] | None = None,
        default_policy: Policy = Policy.SPACING,
        ip_budget: IPBudget | None = DEFAULT_IP_BUDGET,
        ip_cap: int = 6000,
        max_in_flight: int = 100,
        retries: int = 5,
        backoff: float = 1.0,
        lockout: float = 300.0,
    ) -> None:
        policies = dict(policies or {})
        unknown = sorted(set(policies) - set(ENDPOINTS))
        problems = [
            (margin < 0, f"margin must not be negative (got {margin})"),
            (max_margin < margin, f"max_margin must be at least margin (got {max_margin})"),
            (bool(unknown), f"policies name unknown endpoints: {', '.join(unknown)}"),
            (
                not isinstance(default_policy, Policy),
                f"default_policy must be a Policy (got {default_policy!r})",
            ),
            (
                ip_budget is not None and not isinstance(ip_budget, IPBudget),
                f"ip_budget must be an IPBudget or None (got {ip_budget!r})",
            ),
            (ip_cap < 1, f"ip_cap must be positive (got {ip_cap})"),
            (max_in_flight < 1, f"max_in_flight must be positive (got {max_in_flight})"),
            (retries < 0, f"retries must not be negative (got {retries})"),
            (backoff <= 0, f"backoff must be positive (got {backoff})"),
            (lockout < 0, f"lockout must not be negative (got {lockout})"),
        ]
        for failed, problem in problems:
            if failed:
                raise ConfigurationError(f"RateLimitScheduler: {problem}")
        self._margin = margin
        self._max_margin = max_margin
        self._policies = policies
        self._default_policy = default_policy
        self._ip_budget = ip_budget
        self._ip_cap = ip_cap
        self._max_in_flight = max_in_flight
        self._retries = retries
        self._backoff = backoff
        self._lockout = lockout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lanes: dict[tuple[str, str], L] = {}
        self._aliases: dict[str, str] = {}
        #: When the last dispatches went, as many as the IP-lockout rule needs.
        self._sent: deque[float] = deque(maxlen=ip_cap + 1)
        self._paused_until = -math.inf
        self._sweep_at = -math.inf
        self._storms = StormWatch(backoff * (1 + BACKOFF_JITTER))
        self._setup()

    def _setup(self) -> None:
        """Make the subclass's own state, once the options are checked and kept."""

    # -- public ----------------------------------------------------------------------

    async def run(
        self,
        uid: str,
        endpoint: Endpoint,
        send: Callable[[], Awaitable[T]],
        *,
        max_wait: float | None = None,
        flow: Hashable | None = None,
        priority: int = 0,
        deadline: float | None = None,
    ) -> T:
        """
        Wait for the lane's next slot, then call ``send()`` in this task; return its result.

        A lane serves higher priorities first, then its flows in turn, each flow in the
        order of its calls. If ``send()`` raises `RateLimitExceededError`, the lane
        pauses, and the request goes again first in its flow, whose turn comes next, up
        to ``retries`` times.

        Args:
            uid: the UID that owns the calling API key (ignored for IP-scoped endpoints).
            endpoint: what is called; its rate, window and scope set the limit.
            send: sends the request once; called at the instant the slot is stamped.
                The slot counts as completed when it returns or raises.
            max_wait: the longest this call may wait for a slot, each attempt alike.
            flow: who the request is for (a client, a tenant, a job): a lane serves its
                flows in turn, each in the order of its calls. ``None`` is a flow too.
            priority: a lane serves higher priorities first; 0 is the default.
            deadline: the latest ``loop.time()`` at which the request may be sent;
                like ``max_wait``, a request that cannot make it fails at once.

        Raises:
            RateLimitWaitTooLongError: the slot would come, or did not come, within
                ``max_wait`` seconds; nothing was sent for this attempt.
            RateLimitExceededError: still throttled after ``retries`` retries, or a
                retry would wait longer than ``max_wait``.
            RateLimitBackendError: the Redis scheduler's backend failed (and no
                fallback is configured); the request was not sent.
            ClientStateError: the scheduler is closed or bound to another event loop.
        """
        loop = self._bind()
        lane = self._lane(uid, endpoint, loop.time())
        attempt = 0
        while True:
            max_wait = wait_limit(max_wait, deadline, loop.time())
            if self._detouring(loop.time()):
                try:
                    return await self._detour(loop, lane, send, max_wait)
                except Rerouted:
                    continue  # to be tried the scheduler's own way; nothing was sent.
            now = loop.time()
            seq = self._slot_now(lane, now)
            if seq is None:
                # No coroutine of its own for the wait: a queued request costs what
                # `_queue` returns (the in-memory scheduler's is a bare waiter).
                pending = self._queue(
                    loop, lane, now, max_wait, retry=attempt > 0, flow=flow, priority=priority
                )
                try:
                    limit = self._queue_timeout(max_wait)
                    if limit is None:
                        granted = await pending
                    else:
                        async with asyncio.timeout(limit):
                            granted = await pending
                except BaseException as exc:
                    if self._left_queue(loop, lane, pending, exc, max_wait):
                        continue
                    raise
                seq = self._granted(lane, granted, loop.time())
            try:
                return await send()
            except RateLimitExceededError:
                wait = await self._on_throttled(loop, lane)
                attempt += 1
                if attempt > self._retries or (max_wait is not None and wait > max_wait):
                    raise
            finally:
                self._settle(loop, lane, seq)

    def pause_all(self, duration: float) -> None:
        """
        Send nothing on any lane for ``duration`` seconds from now (IP-level throttle).

        Raises:
            ClientStateError: the scheduler is closed or bound to another event loop.
        """
        now = self._bind().time()
        log_pause_all(duration)
        self._paused_until = max(self._paused_until, now + duration)

    def observe(self, uid: str, endpoint: Endpoint, *, sent_ms: int, request_time_ms: int) -> None:
        """
        Record one response's ``requestTime`` against the wall time its request was sent.

        The difference is the clock offset (constant over minutes) plus the delay, so its
        spread over recent responses is the delay spread that margins must cover. Call it
        for every response, errors included; a lane that was dropped as idle ignores it.

        Raises:
            ClientStateError: the scheduler is closed or bound to another event loop.
        """
        now = self._bind().time()
        lane = self._lanes.get(lane_key(self._aliases.get(uid, uid), endpoint))
        if lane is None:
            return
        lane.delays = record_delay(lane.delays, now, float(request_time_ms - sent_ms))

    def _snapshot(self) -> dict[str, Any]:
        """What every scheduler's statistics report, as keyword arguments."""
        now = self._loop.time() if self._loop is not None else 0.0
        lanes = tuple(lane.statistics(now) for lane in self._lanes.values())
        return {
            "lanes": lanes,
            "in_flight": sum(lane.in_flight for lane in lanes),
            "max_in_flight": self._max_in_flight,
            "ip_last_minute": sum(1 for at in self._sent if at > now - IP_CAP_WINDOW),
            "paused_until": self._paused_until if self._paused_until > now else None,
        }

    # -- lanes -----------------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        self._loop = bound_loop(self._loop, self._owner)
        return self._loop

    def _lane(self, uid: str, endpoint: Endpoint, now: float) -> L:
        if now >= self._sweep_at:
            # Only lanes whose state no longer matters go, so dropping them changes nothing.
            self._lanes = {
                key: lane for key, lane in self._lanes.items() if not lane.droppable(now)
            }
            self._sweep_at = now + SWEEP_EVERY
        key = lane_key(self._aliases.get(uid, uid), endpoint)
        lane = self._lanes.get(key)
        if lane is None:
            policy = self._policies.get(endpoint.name, self._default_policy)
            lane = self._lanes[key] = self._new_lane(key[0], endpoint, policy)
        return lane

    # -- 429s ------------------------------------------------------------------------

    def _decide_throttle(self, lane: L, now: float) -> tuple[bool, float]:
        """
        Count a 429 on ``lane``: whether it is part of a storm, and how long to pause
        (random, so that lanes throttled together do not all come back together).
        """
        lane.throttled += 1
        storm = self._storms.seen(now, (lane.uid, lane.endpoint.name))
        pause = self._backoff * (1 + random.uniform(0, BACKOFF_JITTER))  # noqa: S311
        log_throttle(lane.uid, lane.endpoint.name, pause, storm=storm)
        return storm, pause

    def _lock_out_if_breached(self, now: float) -> None:
        """
        Pause every lane for ``lockout`` if this scheduler's own count is over the IP cap.

        Only our own count proves the IP cap was breached; a storm of 429s on many
        lanes may have other causes, and the lanes recover from it on their own.
        """
        if next_slot(self._sent, limit=self._ip_cap + 1, period=IP_CAP_WINDOW, now=now) > now:
            log_lockout(self._ip_cap, self._lockout)
            self.pause_all(self._lockout)


def resolved_options(scheduler: SchedulerCore[Any]) -> SchedulerOptions:
    """The shared options as ``scheduler`` resolved them, to build another like it."""
    return SchedulerOptions(
        margin=scheduler._margin,  # noqa: SLF001 - the core's own state
        max_margin=scheduler._max_margin,  # noqa: SLF001
        policies=scheduler._policies,  # noqa: SLF001
        default_policy=scheduler._default_policy,  # noqa: SLF001
        ip_budget=scheduler._ip_budget,  # noqa: SLF001
        ip_cap=scheduler._ip_cap,  # noqa: SLF001
        max_in_flight=scheduler._max_in_flight,  # noqa: SLF001
        retries=scheduler._retries,  # noqa: SLF001
        backoff=scheduler._backoff,  # noqa: SLF001
        lockout=scheduler._lockout,  # noqa: SLF001
    )
