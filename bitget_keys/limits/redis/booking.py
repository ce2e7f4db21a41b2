"""
How a Redis lane books its slots: the turn, the in-flight permit and the reservation.

`RedisLane` is this process's side of a lane; only the caller holding its turn holds a
reservation. `Booking.acquire` takes the turn and a permit, waits until this process's
dispatch N back completed, reserves through the backend (asking again while the lane's
dispatch N back, sent by any process, is still in flight), sleeps until the slot (on
this process's clock) and stamps it; a caller whose slot fell into a pause that began
meanwhile, or who woke too late to send within its lease, gives the slot up and books
again first in line. Every dispatch's completion (or a slot given up unsent) is
reported to the backend (`Booking.report`), so that every process counts the lane's
windows from completions.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Hashable
from typing import Final

from bitget_keys._endpoints import Endpoint
from bitget_keys.errors import RateLimitBackendError, RateLimitWaitTooLongError
from bitget_keys.limits.core import LaneCore
from bitget_keys.limits.policy import SWEEP_EVERY, Policy, next_slot
from bitget_keys.limits.redis.backend import Grant, RateLimitBackend
from bitget_keys.limits.redis.outage import Outage
from bitget_keys.limits.waiter import Waiter

__all__ = ["Booking", "RedisLane", "least_wait"]

_log: Final = logging.getLogger("bitget_keys.redis_limits")

#: A pause that ends within this many seconds of a slot does not hold the slot back.
_LATE: Final = 0.001
#: While the lane's dispatch N back is in flight past the earliest its successor could
#: go, the backend is asked again after this long, doubling up to `_POLL_MAX`.
_POLL: Final = 0.002
_POLL_MAX: Final = 0.1
#: At most this many completions wait for the backend to come back (beyond, their
#: leases end them).
_MAX_UNREPORTED: Final = 10_000
#: A blocked caller asks again this long before the earliest its slot could come, so
#: that the answer is there by then on a busy host (asking early reserves nothing).
_LEAD: Final = 0.02


class RedisLane(LaneCore):
    """This process's side of one (UID, endpoint) lane: its FIFO, turn and shared state."""

    __slots__ = (
        "fallback_pending",
        "hold_until",
        "holder",
        "key",
        "last_used",
        "log_key",
        "margin",
        "recorded",
        "settled",
        "shared",
        "shared_until",
    )

    def __init__(
        self, uid: str, endpoint: Endpoint, policy: Policy, margin: float, keys: tuple[str, str]
    ) -> None:
        super().__init__(uid, endpoint, policy)
        self.key, self.log_key = keys
        #: Someone holds the lane's turn: it reserves, waits for its slot or stamps it.
        self.holder = False
        # ``waiters`` are the callers waiting for the turn.
        #: The shared margin and pause as of the last answer from the backend.
        self.margin = margin
        #: No backend slot before this loop time (after sending through the fallback).
        self.hold_until = -math.inf
        #: No local send before this loop time (a window after the last backend slot).
        self.shared_until = -math.inf
        #: Requests of this lane inside the fallback.
        self.fallback_pending = 0
        self.last_used = -math.inf
        #: Resolved at the next completion, for a caller waiting for one.
        self.settled: asyncio.Future[None] | None = None
        #: Resolved when the backend has recorded the next completion of this process.
        self.recorded: asyncio.Future[None] | None = None
        #: This process's dispatches in flight: local number -> number in the shared log.
        self.shared: dict[int, int] = {}

    def __repr__(self) -> str:
        return (
            f"<RedisLane {self.uid}/{self.endpoint.name} {self.policy.value} "
            f"queued={self.queued} in_flight={self.in_flight} dispatched={self.dispatched}>"
        )

    def margin_at(self, now: float) -> float:  # noqa: ARG002 - decayed by the backend
        return self.margin

    def local_ready(self) -> float:
        """No slot before this: W after this process's dispatch N before completed."""
        return next_slot(
            self.done, limit=self.endpoint.rate, period=self.endpoint.window, now=-math.inf
        )

    def settle(self, seq: int, now: float) -> None:
        super().settle(seq, now)
        if self.settled is not None and not self.settled.done():
            self.settled.set_result(None)
        self.settled = None

    def droppable(self, now: float) -> bool:
        return (
            not self.holder
            and self.queued == 0
            and self.in_flight == 0
            and self.fallback_pending == 0
            and self.paused_until <= now
            and self.hold_until <= now
            and self.last_used + SWEEP_EVERY <= now
        )

    # -- the turn: one reservation per lane and process at a time ----------------------

    async def take_turn(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        first: bool,
        flow: Hashable = None,
        priority: int = 0,
    ) -> None:
        if not self.holder:
            # Whoever gives the turn up hands it to a live waiter, so a free turn means
            # nobody waits.
            self.holder = True
            return
        waiter = Waiter(loop)
        self.waiters.push(waiter, flow, priority, first=first)
        self.queued += 1
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # The turn came, and the caller left before using it: pass it on.
                self.pass_turn()
            else:
                waiter.cancel()
                self.queued -= 1
            raise

    def pass_turn(self) -> None:
        waiter = self.waiters.pop()
        if waiter is None:
            self.holder = False
            return
        self.queued -= 1
        waiter.grant()


def least_wait(lane: RedisLane, now: float, flow: Hashable, priority: int) -> float:
    """
    The least a new request of ``flow`` at ``priority`` waits by what this process
    knows: the lane's pause, then a slot for each request that goes before it here.

    Other processes' requests and Redis's own pauses can only add to it, so a request
    whose ``max_wait`` is shorter fails at once (as in memory) and one that could make
    it is never refused on a guess.
    """
    ahead = lane.ahead(flow, priority) + lane.holder
    endpoint = lane.endpoint
    if lane.policy is Policy.SLIDING:
        spread = (ahead // endpoint.rate) * endpoint.window * (1 + lane.margin)
    else:
        spread = ahead * lane.interval(lane.margin)
    return max(now, lane.paused_until, lane.hold_until) - now + spread


async def _answered_n_back(loop: asyncio.AbstractEventLoop, lane: RedisLane) -> None:
    """Wait until this process's dispatch N back on the lane has completed."""
    while lane.local_ready() == math.inf:
        if lane.settled is None:
            lane.settled = loop.create_future()
        await asyncio.shield(lane.settled)


def _note_grant(lane: RedisLane, grant: Grant, answered: float) -> None:
    """Keep the shared margin and pause a grant reports."""
    lane.margin = grant.margin
    if grant.paused_for:
        # Redis placed this slot after the pause; on the calibrated clock the slot may
        # come a little before the pause's end counted from here.
        until = answered + min(grant.paused_for, grant.wait)
        lane.paused_until = max(lane.paused_until, until)


def _wake(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


async def _wait_blocked(
    loop: asyncio.AbstractEventLoop, lane: RedisLane, wait: float, poll: float
) -> None:
    """
    Wait before asking again for a blocked slot: until the earliest it could come (at
    least ``poll``), or until this process records a completion on the lane (which may
    be the one blocking it), whichever is first.
    """
    delay = max(wait - _LEAD, poll)
    if not lane.shared:
        await asyncio.sleep(delay)
        return
    if lane.recorded is None:
        lane.recorded = loop.create_future()
    try:
        async with asyncio.timeout(delay):
            await asyncio.shield(lane.recorded)
    except TimeoutError:
        pass


async def _sleep_until_slot(
    loop: asyncio.AbstractEventLoop, grant: Grant, answered: float
) -> float:
    """Sleep until the granted slot; returns how many seconds after it this caller woke."""
    due = answered + grant.wait
    while (delay := due - loop.time()) > 0:
        await asyncio.sleep(delay)
        if grant.placed is not None:
            # A better estimate of Redis time may have come in meanwhile.
            due = grant.placed.due()
    return loop.time() - due


def _check_grant(lane: RedisLane, grant: Grant, waited: float, max_wait: float | None) -> None:
    """Raise `RateLimitWaitTooLongError` if Redis refused the slot for ``max_wait``."""
    if not grant.granted:
        assert max_wait is not None  # noqa: S101 - only a limit refuses
        raise RateLimitWaitTooLongError(lane.endpoint.path, lane.uid, waited + grant.wait, max_wait)


class Booking:
    """Takes slots for a `RedisRateLimitScheduler`'s lanes from its backend."""

    __slots__ = (
        "_backend",
        "_floor",
        "_ip_paused_until",
        "_outage",
        "_reports",
        "_unreported",
        "blocked",
        "deferred",
        "horizon",
        "missed",
        "permits",
    )

    def __init__(
        self,
        backend: RateLimitBackend,
        outage: Outage,
        *,
        margin: float,
        max_in_flight: int,
        ip_paused_until: Callable[[], float],
        horizon: float | None = None,
    ) -> None:
        self._backend = backend
        #: How long before its slot a request of negative priority reserves it.
        self.horizon = horizon
        self._outage = outage
        self._floor = margin
        #: Until when every lane is paused (`pause_all`), as the scheduler knows it.
        self._ip_paused_until = ip_paused_until
        self.permits = asyncio.Semaphore(max_in_flight)
        #: Slots given up because their caller woke too late to send within the lease.
        self.missed = 0
        #: Reservations answered "blocked": the lane's dispatch N back was in flight.
        self.blocked = 0
        #: Reservations of background requests put off until shortly before their slot.
        self.deferred = 0
        #: Completions on their way to the backend.
        self._reports: set[asyncio.Task[None]] = set()
        #: Completions the backend failed to record, sent again once it answers.
        self._unreported: list[tuple[RedisLane, int, float]] = []

    def report(self, loop: asyncio.AbstractEventLoop, lane: RedisLane, seq: int) -> None:
        """
        Record, in the background, that the lane's shared dispatch ``seq`` completed (or
        was given up unsent) now: the caller need not wait for it, other processes do.
        """
        self._send_report(loop, lane, seq, loop.time())

    def _send_report(
        self, loop: asyncio.AbstractEventLoop, lane: RedisLane, seq: int, at: float
    ) -> None:
        task = loop.create_task(self._complete(lane, seq, at))
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    async def _complete(self, lane: RedisLane, seq: int, at: float) -> None:
        try:
            await self._backend.complete(lane, seq, at=at)
        except RateLimitBackendError as exc:
            # Sent again (with the time it was seen) once the backend answers: until then
            # the dispatch holds the dispatch N after it, at most until its lease ends.
            _log.debug("could not record a completion on %s: %s", lane.endpoint.name, exc.detail)
            if len(self._unreported) < _MAX_UNREPORTED:
                self._unreported.append((lane, seq, at))
        finally:
            recorded, lane.recorded = lane.recorded, None
            _wake(recorded)

    async def drain(self) -> None:
        """Wait until every completion was reported (the scheduler is closing)."""
        while self._reports:
            await asyncio.gather(*self._reports, return_exceptions=True)

    async def acquire(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: RedisLane,
        max_wait: float | None,
        *,
        retry: bool,
        flow: Hashable = None,
        priority: int = 0,
    ) -> int:
        """
        Wait for the turn and a permit, reserve a slot in Redis, wait for it, stamp it.

        Returns the dispatch's sequence number, holding an in-flight permit; on any
        exception holds nothing.
        """
        started = loop.time()
        deadline = None if max_wait is None else started + max_wait
        self._outage.check(lane, started)
        while True:
            await self._line_up(
                loop, lane, deadline, max_wait, retry=retry, flow=flow, priority=priority
            )
            grant: Grant | None = None
            try:
                horizon = self.horizon if priority < 0 else None
                grant, answered = await self._book(
                    loop, lane, started, deadline, max_wait, horizon=horizon
                )
                await _sleep_until_slot(loop, grant, answered)
                now = loop.time()
                paused = max(lane.paused_until, self._ip_paused_until()) > now + _LATE
                if not paused and now <= answered + grant.lease:
                    break
                # A 429 on this lane (or an IP pause) came while this caller waited: its
                # slot falls into the pause, so it is dropped, and the caller reserves
                # again behind the pause, first in line after any retry. Or the caller
                # woke too late to send within the slot's lease (a host starved for
                # seconds), after which every process counts it completed: it books
                # again, first in line.
                if not paused:
                    self._missed(lane, now - answered - grant.wait)
            except BaseException:
                if grant is not None and grant.seq is not None:
                    self.report(loop, lane, grant.seq)  # reserved, never sent
                self.permits.release()
                lane.pass_turn()
                raise
            if grant.seq is not None:
                self.report(loop, lane, grant.seq)
            self.permits.release()
            lane.pass_turn()
            retry = True
        # Stamped here, in the caller's task, just before it sends: the next caller of
        # this lane may reserve now.
        seq = lane.stamp(now)
        if grant.seq is not None:
            lane.shared[seq] = grant.seq
        lane.last_used = now
        lane.shared_until = now + lane.endpoint.window * (1 + lane.margin)
        lane.pass_turn()
        return seq

    async def _line_up(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: RedisLane,
        deadline: float | None,
        max_wait: float | None,
        *,
        retry: bool,
        flow: Hashable,
        priority: int,
    ) -> None:
        """
        Take the lane's turn and an in-flight permit, and wait until this process's
        dispatch N back completed; on any exception holds neither.
        """
        turn = permit = False
        try:
            async with asyncio.timeout_at(deadline):
                await lane.take_turn(loop, first=retry, flow=flow, priority=priority)
                turn = True
                await self.permits.acquire()
                permit = True
                await _answered_n_back(loop, lane)
        except BaseException as exc:
            if permit:
                self.permits.release()
            if turn:
                lane.pass_turn()
            if isinstance(exc, TimeoutError):
                assert max_wait is not None  # noqa: S101 - only a deadline times out
                estimate = max_wait + lane.queued * lane.endpoint.window / lane.endpoint.rate
                raise RateLimitWaitTooLongError(
                    lane.endpoint.path, lane.uid, estimate, max_wait
                ) from None
            raise

    def _missed(self, lane: RedisLane, late: float) -> None:
        self.missed += 1
        _log.debug(
            "%s %s: woke %.0f ms after its slot, past its lease; booking again",
            lane.uid,
            lane.endpoint.name,
            late * 1000,
        )

    async def _book(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: RedisLane,
        started: float,
        deadline: float | None,
        max_wait: float | None,
        *,
        horizon: float | None,
    ) -> tuple[Grant, float]:
        """
        Reserve the lane's next slot, asking again while the backend answers that the
        lane's dispatch N back is in flight, or that the slot lies beyond ``horizon``;
        returns the grant and when it came.
        """
        poll = _POLL
        while True:
            now = loop.time()
            # Waiting callers find out about an outage without calling Redis each.
            self._outage.check(lane, now)
            hold = max(self._ip_paused_until(), lane.hold_until, lane.local_ready(), now) - now
            remaining = None if deadline is None else max(0.0, deadline - now)
            grant = await self._reserve(loop, lane, remaining, hold, horizon)
            answered = loop.time()
            _note_grant(lane, grant, answered)
            _check_grant(lane, grant, answered - started, max_wait)
            if grant.deferred:
                self.deferred += 1
            elif grant.blocked:
                self.blocked += 1
            else:
                return grant, answered
            if deadline is not None and answered + max(grant.wait, poll) > deadline:
                assert max_wait is not None  # noqa: S101 - only a limit sets a deadline
                raise RateLimitWaitTooLongError(
                    lane.endpoint.path, lane.uid, answered - started + grant.wait, max_wait
                )
            await _wait_blocked(loop, lane, grant.wait, poll)
            poll = min(2 * poll, _POLL_MAX)

    async def _reserve(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: RedisLane,
        max_wait: float | None,
        hold: float,
        horizon: float | None,
    ) -> Grant:
        try:
            grant = await self._backend.reserve(
                lane, margin=self._floor, max_wait=max_wait, hold=hold, horizon=horizon
            )
        except RateLimitBackendError as exc:
            self._outage.mark_down(loop, loop.time(), exc.detail)
            raise RateLimitBackendError(
                exc.backend, exc.detail, lane.endpoint.path, lane.uid
            ) from exc.__cause__
        self._outage.up(loop.time())
        if self._unreported:
            unreported, self._unreported = self._unreported, []
            for shared, seq, at in unreported:
                self._send_report(loop, shared, seq, at)
        return grant
