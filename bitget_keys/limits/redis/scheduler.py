"""
`RedisRateLimitScheduler`: the scheduler core with its slots reserved through a backend.

Within a process each lane is a FIFO of callers (`RedisLane`), and only its head holds a
reservation at a time: it takes the in-flight permit, reserves through the backend,
sleeps until its slot (placed on this process's clock), stamps it and calls ``send()``.
The design and its figures are in ``docs/rate-limits.md``; the package docstring of
`bitget_keys.limits.redis` summarises them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable, Hashable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar, Unpack

import attrs

from bitget_keys._endpoints import Endpoint
from bitget_keys.errors import (
    ClientStateError,
    ConfigurationError,
    RateLimitBackendError,
    RateLimitWaitTooLongError,
)
from bitget_keys.limits.core import SchedulerCore, SchedulerOptions, resolved_options
from bitget_keys.limits.policy import Policy
from bitget_keys.limits.redis.backend import (
    RateLimitBackend,
    connect,
    ip_key,
    lane_keys,
)
from bitget_keys.limits.redis.booking import Booking, RedisLane, least_wait
from bitget_keys.limits.redis.outage import Outage
from bitget_keys.limits.statistics import SchedulerStatistics

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["RedisRateLimitScheduler", "RedisSchedulerStatistics"]

T = TypeVar("T")

_log: Final = logging.getLogger("bitget_keys.redis_limits")

#: What Redis may hold in a key's name between the prefix's braces.
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@attrs.frozen(kw_only=True)
class RedisSchedulerStatistics(SchedulerStatistics):
    """
    A snapshot of a `RedisRateLimitScheduler`, as this process sees it.

    Lane margins and pauses are the shared ones as of the lane's last Redis answer;
    counts (``dispatched``, ``throttled``, ``ip_last_minute``) are this process's own.
    """

    #: The Redis server, password masked.
    backend: str
    #: Calls to Redis so far (each a round trip).
    round_trips: int
    #: Redis calls that failed.
    backend_errors: int
    #: Whether the local fallback paces new requests now (Redis is down).
    fallback_active: bool
    #: Requests sent through the local fallback so far.
    fallback_dispatched: int
    #: Slots given up because their caller woke too late to send within the slot's
    #: lease (a host starved for many seconds).
    missed_slots: int = 0
    #: Reservations that found the lane's dispatch N back still in flight (and asked
    #: again once it could have completed).
    blocked: int = 0
    #: Reservations of requests of negative priority put off until shortly before their
    #: slot (see ``horizon``).
    deferred: int = 0


class RedisRateLimitScheduler(SchedulerCore[RedisLane]):
    """
    Keeps every request inside its (UID, endpoint) limit across processes and hosts.

    The same API as `bitget_keys.limits.RateLimitScheduler` (so it is a
    `bitget_keys.Scheduler` for `bitget_keys.Client`), with the budgets kept in Redis.
    One scheduler per event loop and process; every process sharing UIDs points at the
    same Redis with the same ``prefix``. See `bitget_keys.limits.redis` for the design.

    Args:
        redis: a ``redis://``, ``rediss://`` or ``unix://`` URL (the scheduler makes and
            closes its client, with ``timeout``), or a ``redis.asyncio.Redis`` /
            ``RedisCluster`` client, which is borrowed and never closed (its own
            timeouts and retries apply; keep them short).
        backend: where slots come from instead of ``redis`` (a `RateLimitBackend`, such
            as an in-process fake in tests); give ``redis`` or ``backend``, not both.
        prefix: the first part of every key; processes sharing budgets use the same.
        egress: the name of this process's egress IP, for the IP budget.
        cluster: treat ``redis`` (a URL) as a Redis Cluster.
        options: ``margin``, ``max_margin``, ``policies``, ``ip_budget``, ``ip_cap``,
            ``max_in_flight``, ``retries``, ``backoff``, ``lockout``: the options every
            scheduler takes (`SchedulerOptions`), with `RateLimitScheduler`'s defaults.
        fallback: ``None`` to fail closed while Redis is down (the default), or the
            fraction (0 < f ≤ 1) of every rate a local scheduler keeps to meanwhile.
        recheck: seconds after a Redis failure before Redis is tried again.
        timeout: connect and reply timeout in seconds of a client made from a URL.
        lease: seconds after its slot that a dispatch counts as completed for every
            process when its own process never reported it (it crashed). The process
            sends within the first half of it, or gives the slot up and books again.
        horizon: seconds before its slot at which a request of negative priority
            (background work) reserves it. Requests of priority 0 and above reserve at
            once, in the order they ask, so a slot a background request has not booked
            yet goes to them, whichever process they run in; within a process the
            lane's turn goes by priority in any case. ``None`` books every request at
            once (priorities then act within each process only).

    Raises:
        ConfigurationError: a setting is out of range, or redis-py is not installed
            (``pip install 'bitget-keys[redis]'``).
    """

    __slots__ = (
        "_backend",
        "_booking",
        "_closed",
        "_egress",
        "_in_flight",
        "_outage",
        "_prefix",
        "_tasks",
    )

    _owner = "RedisRateLimitScheduler"

    def __init__(
        self,
        redis: str | Redis | RedisCluster | None = None,
        *,
        backend: RateLimitBackend | None = None,
        prefix: str = "bitget-keys",
        egress: str = "default",
        cluster: bool = False,
        fallback: float | None = None,
        recheck: float = 2.0,
        timeout: float = 0.5,
        lease: float = 30.0,
        horizon: float | None = 0.05,
        **options: Unpack[SchedulerOptions],
    ) -> None:
        super().__init__(**options)
        problems = [
            ((redis is None) == (backend is None), "give either redis or backend"),
            (not _SAFE_NAME.fullmatch(egress), f"egress must match {_SAFE_NAME.pattern}"),
            (
                not prefix or "{" in prefix or "}" in prefix,
                "prefix must be non-empty and hold no braces",
            ),
            (
                fallback is not None and not 0 < fallback <= 1,
                f"fallback must be a fraction in (0, 1] or None (got {fallback})",
            ),
            (recheck <= 0, f"recheck must be positive (got {recheck})"),
            (timeout <= 0, f"timeout must be positive (got {timeout})"),
            (lease <= 0, f"lease must be positive (got {lease})"),
            (
                horizon is not None and not 0 <= horizon < math.inf,
                f"horizon must be a number of seconds >= 0 or None (got {horizon})",
            ),
        ]
        for failed, problem in problems:
            if failed:
                raise ConfigurationError(f"RedisRateLimitScheduler: {problem}")
        self._prefix = prefix
        self._egress = egress
        if backend is None:
            assert redis is not None  # noqa: S101 - checked above
            backend = connect(
                redis,
                cluster=cluster,
                timeout=timeout,
                ip_budget=self._ip_budget,
                ip_key=ip_key(prefix, egress),
                lease=lease,
            )
        self._backend: RateLimitBackend = backend
        self._outage = Outage(
            backend.described, fraction=fallback, recheck=recheck, options=resolved_options(self)
        )
        self._booking = Booking(
            backend,
            self._outage,
            margin=self._margin,
            max_in_flight=self._max_in_flight,
            ip_paused_until=lambda: self._paused_until,
            horizon=horizon,
        )
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def __repr__(self) -> str:
        busy = sum(1 for lane in self._lanes.values() if lane.queued or lane.holder)
        state = "closed" if self._closed else ("down" if self._outage.down else "up")
        return (
            f"<RedisRateLimitScheduler {self._backend.described} {state} "
            f"lanes={len(self._lanes)} busy={busy} "
            f"in_flight={self._in_flight}/{self._max_in_flight} margin={self._margin}>"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the Redis client if the scheduler made it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._outage.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        # Completions still on their way go out first: other processes wait for them.
        await self._booking.drain()
        await self._backend.aclose()

    # -- public ----------------------------------------------------------------------

    def pause_all(self, duration: float) -> None:
        """
        Send nothing on any lane for ``duration`` seconds from now (IP-level throttle).

        The pause takes effect here at once and is written to the egress IP's key in
        Redis for every process behind that IP (in Redis Cluster, only when the IP
        budget is on); a failure to write it is logged.

        Raises:
            ClientStateError: the scheduler is closed or bound to another event loop.
        """
        super().pause_all(duration)
        assert self._loop is not None  # noqa: S101 - bound by pause_all
        task = self._loop.create_task(self._share_pause(duration))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def statistics(self) -> RedisSchedulerStatistics:
        """A frozen snapshot of this process's lanes and of what it knows of the shared state."""
        now = self._loop.time() if self._loop is not None else 0.0
        return RedisSchedulerStatistics(
            **self._snapshot(),
            backend=self._backend.described,
            round_trips=self._backend.round_trips,
            backend_errors=self._outage.errors,
            fallback_active=self._outage.local(now),
            fallback_dispatched=self._outage.dispatched,
            missed_slots=self._booking.missed,
            blocked=self._booking.blocked,
            deferred=self._booking.deferred,
        )

    # -- the core's steps --------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            msg = "this RedisRateLimitScheduler is closed"
            raise ClientStateError(msg)
        return super()._bind()

    def _join(self, old: tuple[str, str], new: tuple[str, str], now: float) -> None:
        """
        Requests of the aliased name go to the UID's lanes from now on; what its own lanes
        spent stays under their keys in Redis and is not carried over, so the UID's next
        request on such an endpoint may follow a key's within one interval.
        """

    def _new_lane(self, uid: str, endpoint: Endpoint, policy: Policy) -> RedisLane:
        keys = lane_keys(self._prefix, self._egress, uid, endpoint)
        return RedisLane(uid, endpoint, policy, self._margin, keys)

    def _detouring(self, now: float) -> bool:
        return self._outage.local(now)

    async def _detour(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: RedisLane,
        send: Callable[[], Awaitable[T]],
        max_wait: float | None,
    ) -> T:
        hold = lane.endpoint.window * (1 + self._margin)
        return await self._outage.run(loop, lane, send, max_wait, hold=hold)

    def _slot_now(self, lane: RedisLane, now: float) -> int | None:  # noqa: ARG002
        return None  # Every slot is reserved through the backend.

    def _queue(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: RedisLane,
        now: float,
        max_wait: float | None,
        *,
        retry: bool,
        flow: Hashable | None = None,
        priority: int = 0,
    ) -> Awaitable[int]:
        if max_wait is not None and not retry:
            wait = least_wait(lane, now, flow, priority)
            if wait > max_wait:
                raise RateLimitWaitTooLongError(lane.endpoint.path, lane.uid, wait, max_wait)
        # Fair within this process: the lane's turn goes by priority, then to its flows
        # in turn. Between processes, whoever reserves first.
        return self._booking.acquire(
            loop, lane, max_wait, retry=retry, flow=flow, priority=priority
        )

    def _queue_timeout(self, max_wait: float | None) -> float | None:  # noqa: ARG002
        return None  # `Booking.acquire` keeps its own deadline.

    def _granted(self, lane: RedisLane, granted: Any, now: float) -> int:  # noqa: ARG002
        # Stamped by `Booking.acquire` just before it returned, at ``lane.last_used``.
        self._in_flight += 1
        self._sent.append(lane.last_used)
        seq: int = granted
        return seq

    def _left_queue(
        self,
        loop: asyncio.AbstractEventLoop,  # noqa: ARG002
        lane: RedisLane,  # noqa: ARG002
        pending: Awaitable[Any],  # noqa: ARG002
        exc: BaseException,
        max_wait: float | None,  # noqa: ARG002
    ) -> bool:
        # The backend is marked down: with a fallback, the next round goes local.
        return isinstance(exc, RateLimitBackendError) and self._outage.can_fall_back()

    def _settle(self, loop: asyncio.AbstractEventLoop, lane: RedisLane, seq: int) -> None:
        shared = lane.shared.pop(seq, None)
        if shared is not None:
            self._booking.report(loop, lane, shared)
        lane.settle(seq, loop.time())
        self._in_flight -= 1
        self._booking.permits.release()

    async def _on_throttled(self, loop: asyncio.AbstractEventLoop, lane: RedisLane) -> float:
        """Record a 429 for every process; returns how long the lane is paused."""
        now = loop.time()
        storm, pause = self._decide_throttle(lane, now)
        try:
            raised, paused_for = await self._backend.throttle(
                lane, margin=self._margin, max_margin=self._max_margin, pause=pause, storm=storm
            )
        except RateLimitBackendError as exc:
            # The 429 still pauses this process's lane; other processes will see their own.
            self._outage.mark_down(self._loop, loop.time(), exc.detail)
            raised, paused_for = lane.margin, pause
            lane.hold_until = max(lane.hold_until, now + pause)
        lane.margin = raised
        # Counted from before the call: Redis started the pause after that, so the lane
        # never thinks itself paused after Redis's pause ended (a retry granted the
        # pause's end would otherwise drop its slot and its turn on a slow answer).
        lane.paused_until = now + paused_for
        self._lock_out_if_breached(now)
        return paused_for

    async def _share_pause(self, duration: float) -> None:
        try:
            await self._backend.pause_ip(duration)
        except RateLimitBackendError as exc:
            _log.warning("could not share a pause of every lane through Redis: %s", exc.detail)
