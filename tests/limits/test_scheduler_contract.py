"""
What every scheduler promises, checked on each: in memory, Redis on a fake backend, and
Redis on a real redis-server.

The in-memory scheduler and the Redis one on `FakeSlots` run on a fake loop clock, so
their timings are exact and nothing sleeps; Redis on a real server keeps Redis ``TIME``,
so there only what does not depend on timing is checked (order, outcomes, counters).
Behaviour only one scheduler has is tested in ``test_limits.py`` and
``test_redis_limits.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from bitget_keys import _endpoints as ep
from bitget_keys.errors import (
    ClientStateError,
    ConfigurationError,
    RateLimitExceededError,
    RateLimitWaitTooLongError,
)
from bitget_keys.limits import Policy, RateLimitScheduler, RedisRateLimitScheduler
from bitget_keys.limits.redis import lane_keys
from bitget_keys.limits.statistics import LaneStatistics
from bitget_keys.testing import LoopClock
from bitget_keys.testing._redis_server import RedisServer
from tests.limits.fake_backend import FakeSlots
from tests.limits.scheduling import FIVE, ONE, START, TEN

KINDS = ["memory", "redis-fake", "redis-server"]
#: A 10/s lane's interval at the default 5% margin, in seconds.
T10 = 0.1 * 1.05

AnyScheduler = RateLimitScheduler | RedisRateLimitScheduler


class Harness:
    """Makes schedulers of one kind and moves time for them (fake or real)."""

    def __init__(self, kind: str, clock: LoopClock | None, url: str, prefix: str) -> None:
        self.kind = kind
        self.clock = clock
        self.url = url
        self.prefix = prefix
        self.backends: list[FakeSlots] = []
        self.made: list[RedisRateLimitScheduler] = []

    @property
    def timed(self) -> bool:
        """Whether exact timings hold: the loop's clock is the fake one."""
        return self.clock is not None

    def make(self, **options: Any) -> AnyScheduler:
        options.setdefault("ip_budget", None)
        if self.kind == "memory":
            return RateLimitScheduler(**options)
        if self.kind == "redis-fake":
            backend = FakeSlots()
            self.backends.append(backend)
            limits = RedisRateLimitScheduler(backend=backend, **options)
        else:
            limits = RedisRateLimitScheduler(self.url, prefix=self.prefix, **options)
        self.made.append(limits)
        return limits

    def now(self) -> float:
        """Seconds since the test began, on the loop's clock."""
        now = asyncio.get_running_loop().time()
        return now - START if self.clock is not None else now

    def recorder(self, log: list[tuple[float, Any]], tag: Any) -> Callable[[], Awaitable[Any]]:
        async def send() -> Any:
            log.append((self.now(), tag))
            return tag

        return send

    def submit(
        self,
        limits: AnyScheduler,
        log: list[tuple[float, Any]],
        tag: Any,
        endpoint: ep.Endpoint = FIVE,
        uid: str = "u1",
        **options: Any,
    ) -> asyncio.Task[Any]:
        return asyncio.create_task(limits.run(uid, endpoint, self.recorder(log, tag), **options))

    async def settle(self) -> None:
        """Let started tasks run as far as they can without time passing."""
        if self.clock is not None:
            await self.clock.settle()
        else:
            for _ in range(5):
                await asyncio.sleep(0)

    async def finish(self, tasks: list[asyncio.Task[Any]], seconds: float) -> None:
        """Let ``seconds`` pass (fake clock), or wait for ``tasks`` (real time)."""
        if self.clock is not None:
            await self.clock.advance(seconds)
        else:
            await asyncio.wait(tasks, timeout=seconds + 10.0)


@pytest.fixture(params=KINDS)
async def harness(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Harness]:
    if request.param == "redis-server":
        server: RedisServer = request.getfixturevalue("redis_server")
        made = Harness(request.param, None, server.url, prefix)
        yield made
    else:
        with LoopClock(start=START) as clock:
            made = Harness(request.param, clock, "", prefix)
            yield made
    for limits in made.made:
        await limits.aclose()


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pauses after a 429 last exactly the backoff."""
    monkeypatch.setattr(random, "uniform", lambda low, _high: low)


def lane_of(limits: AnyScheduler, uid: str = "u1", endpoint: ep.Endpoint = FIVE) -> LaneStatistics:
    stats = limits.statistics().lane(uid, endpoint.name)
    assert stats is not None
    return stats


def _paused(limits: AnyScheduler) -> bool:
    stats = limits.statistics().lane("u1", FIVE.name)
    return stats is not None and stats.paused_until is not None


def throttled(endpoint: ep.Endpoint = FIVE) -> RateLimitExceededError:
    return RateLimitExceededError(429, "429", "Too Many Requests", endpoint.path)


async def _noop() -> None:
    return None


async def _raise_throttled() -> None:
    raise throttled()


# -- order and spacing ----------------------------------------------------------------------


async def test_fifo_and_spacing_per_lane(harness: Harness) -> None:
    """Requests of one lane leave in call order, one interval apart."""
    limits = harness.make()
    log: list[tuple[float, Any]] = []
    order = list(range(20))
    random.Random(3).shuffle(order)
    tasks = []
    for tag in order:
        tasks.append(harness.submit(limits, log, tag, TEN))
        await harness.settle()
    await harness.finish(tasks, 5.0)
    assert [tag for _, tag in log] == order
    if harness.timed:
        assert [at for at, _ in log] == pytest.approx([k * T10 for k in range(20)])
    stats = lane_of(limits, endpoint=TEN)
    assert (stats.dispatched, stats.queued, stats.in_flight) == (20, 0, 0)


async def test_no_window_holds_more_than_n(harness: Harness) -> None:
    """However many wait, no second of the loop's clock holds more than N sends of a lane."""
    if not harness.timed:
        pytest.skip("exact only on the fake loop clock")
    limits = harness.make()
    log: list[tuple[float, Any]] = []
    tasks = [harness.submit(limits, log, k, FIVE) for k in range(30)]
    await harness.finish(tasks, 10.0)
    stamps = sorted(at for at, _ in log)
    assert len(stamps) == 30
    densest = max(sum(1 for at in stamps if start <= at < start + 1.0) for start in stamps)
    assert densest == FIVE.rate


# -- 429s ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_jitter")
async def test_429_pauses_the_lane_and_retries_first(harness: Harness) -> None:
    """A throttled request pauses its lane, widens its margin and goes again before the queue."""
    limits = harness.make()
    log: list[tuple[float, Any]] = []
    pending = [True]

    async def first() -> str:
        log.append((harness.now(), "a"))
        if pending.pop() if pending else False:
            raise throttled()
        return "a"

    task = asyncio.create_task(limits.run("u1", FIVE, first))
    await harness.settle()
    if not harness.timed:
        # Redis answers in real time: wait until the 429 was recorded (and the retry
        # holds the lane's turn) before the others queue.
        async with asyncio.timeout(10.0):
            while not _paused(limits):  # noqa: ASYNC110 - statistics have no event
                await asyncio.sleep(0.001)
    tasks = [task, harness.submit(limits, log, "b"), harness.submit(limits, log, "c")]
    await harness.finish(tasks, 3.0)
    assert task.result() == "a"
    assert [tag for _, tag in log] == ["a", "a", "b", "c"]
    if harness.timed:
        # a at 0 (429), then the 1 s pause: a, b, c spaced with the raised margin.
        raised = 0.2 * 1.075
        expected = [0.0, 1.0, 1.0 + raised, 1.0 + 2 * raised]
        assert [at for at, _ in log] == pytest.approx(expected)
    for backend in harness.backends:
        assert backend.throttles == [(lane_keys("bitget-keys", "default", "u1", FIVE)[0], False)]
    stats = lane_of(limits)
    assert stats.throttled == 1
    assert stats.margin == pytest.approx(0.075)


async def test_retries_run_out(harness: Harness) -> None:
    """After ``retries`` retries the 429 is raised to the caller; each pause is the backoff."""
    limits = harness.make(retries=2, backoff=0.5)
    calls: list[float] = []

    async def always() -> None:
        calls.append(harness.now())
        raise throttled()

    task = asyncio.create_task(limits.run("u1", FIVE, always))
    await harness.finish([task], 5.0)
    assert isinstance(task.exception(), RateLimitExceededError)
    assert len(calls) == 3
    if harness.timed:
        gaps = [b - a for a, b in itertools.pairwise(calls)]
        assert all(0.5 <= gap <= 0.6 for gap in gaps)
    assert lane_of(limits).throttled == 3


async def test_retry_longer_than_max_wait_raises_the_429(harness: Harness) -> None:
    """When a retry would wait past max_wait, the caller gets the 429 at once."""
    limits = harness.make()
    task = asyncio.create_task(limits.run("u1", FIVE, _raise_throttled, max_wait=0.5))
    await harness.finish([task], 0.0)
    assert isinstance(task.exception(), RateLimitExceededError)
    assert lane_of(limits).dispatched == 1


async def test_a_storm_widens_no_margin_and_the_ip_cap_locks_out(harness: Harness) -> None:
    """429s on three lanes at once are a storm; past ip_cap in a minute, every lane pauses."""
    limits = harness.make(ip_cap=3, lockout=300.0, retries=0)
    tasks = [asyncio.create_task(limits.run(f"u{i}", FIVE, _raise_throttled)) for i in range(4)]
    await harness.finish(tasks, 0.0)
    assert all(isinstance(task.exception(), RateLimitExceededError) for task in tasks)
    margins = sorted(lane_of(limits, f"u{i}").margin for i in range(4))
    assert margins == pytest.approx([0.05, 0.05, 0.075, 0.075])
    paused_until = limits.statistics().paused_until
    assert paused_until is not None
    assert paused_until - asyncio.get_running_loop().time() > 290.0


# -- max_wait --------------------------------------------------------------------------------


async def test_max_wait_sends_nothing(harness: Harness) -> None:
    """A slot further than max_wait raises RateLimitWaitTooLongError and sends nothing."""
    limits = harness.make()
    log: list[tuple[float, Any]] = []
    first = harness.submit(limits, log, "a", ONE)
    late = harness.submit(limits, log, "b", ONE, max_wait=0.5)
    await harness.finish([first, late], 3.0)
    with pytest.raises(RateLimitWaitTooLongError) as caught:
        late.result()
    expected = pytest.approx(1.05) if harness.timed else pytest.approx(1.05, abs=0.05)
    assert caught.value.wait == expected
    assert [tag for _, tag in log] == ["a"]


async def test_max_wait_fails_at_once_behind_a_queue(harness: Harness) -> None:
    """
    A request whose wait behind the requests queued before it already exceeds max_wait
    fails before anything else happens, telling at least that wait, and sends nothing.
    """
    limits = harness.make()
    log: list[tuple[float, Any]] = []
    ahead = [harness.submit(limits, log, k, FIVE) for k in range(10)]
    await harness.settle()
    started = harness.now()
    late = harness.submit(limits, log, "late", FIVE, max_wait=0.5)
    await harness.settle()
    assert late.done()
    with pytest.raises(RateLimitWaitTooLongError) as caught:
        late.result()
    # At least 8 of the 10 wait behind the one in flight, 0.21 s apart at the 5% margin.
    assert caught.value.wait >= 8 * 0.2 * 1.05 - 1e-9
    assert caught.value.max_wait == 0.5
    if harness.timed:
        assert harness.now() == started
    await harness.finish(ahead, 3.0)
    assert "late" not in [tag for _, tag in log]


# -- statistics, observations, settings, loops, closing ------------------------------------


async def test_statistics_and_observed_jitter(harness: Harness) -> None:
    """statistics() reports each lane; observe() turns requestTime into its jitter."""
    limits = harness.make()
    assert limits.statistics().lanes == ()
    await limits.run("u1", FIVE, _noop)
    for k in range(100):
        sent = 1_700_000_000_000 + 1000 * k
        limits.observe("u1", FIVE, sent_ms=sent, request_time_ms=sent + 500 + (k % 10) * 3)
    limits.observe("u9", FIVE, sent_ms=0, request_time_ms=5)  # unknown lane: ignored
    stats = limits.statistics()
    assert (stats.in_flight, stats.max_in_flight, stats.paused_until) == (0, 100, None)
    lane = lane_of(limits)
    assert (lane.uid, lane.endpoint, lane.policy) == ("u1", FIVE.name, Policy.SPACING)
    assert (lane.dispatched, lane.queued, lane.in_flight, lane.throttled) == (1, 0, 0, 0)
    assert (lane.margin, lane.paused_until) == (0.05, None)
    assert lane.interval == pytest.approx(0.21)
    assert lane.jitter == pytest.approx(0.027)
    assert stats.lane("u9", FIVE.name) is None
    if harness.clock is not None:
        await harness.clock.advance(301.0)
        assert lane_of(limits).jitter is None


@pytest.mark.parametrize(
    "options",
    [
        {"margin": -0.1},
        {"margin": 0.2, "max_margin": 0.1},
        {"policies": {"no_such_endpoint": Policy.SLIDING}},
        {"ip_cap": 0},
        {"max_in_flight": 0},
        {"retries": -1},
        {"backoff": 0.0},
        {"lockout": -1.0},
    ],
)
@pytest.mark.parametrize("kind", ["memory", "redis-fake", "redis-url"])
def test_invalid_settings(kind: str, options: dict[str, Any]) -> None:
    """Out-of-range settings are refused when the scheduler is made, before any connection."""
    with pytest.raises(ConfigurationError, match=next(iter(options))):
        _build(kind, options)


def _build(kind: str, options: dict[str, Any]) -> AnyScheduler:
    if kind == "memory":
        return RateLimitScheduler(**options)
    if kind == "redis-fake":
        return RedisRateLimitScheduler(backend=FakeSlots(), **options)
    return RedisRateLimitScheduler("redis://127.0.0.1:9/0", **options)


@pytest.fixture(params=["memory", "redis-fake"])
def unbound(request: pytest.FixtureRequest) -> Iterator[AnyScheduler]:
    if request.param == "memory":
        yield RateLimitScheduler()
    else:
        yield RedisRateLimitScheduler(backend=FakeSlots(), ip_budget=None)


def test_bound_to_one_loop(unbound: AnyScheduler) -> None:
    """Using a scheduler from a second event loop raises ClientStateError."""
    assert asyncio.run(unbound.run("u1", FIVE, _noop)) is None
    with pytest.raises(ClientStateError, match="another event loop"):
        asyncio.run(unbound.run("u1", FIVE, _noop))


async def test_closing(harness: Harness) -> None:
    """A closed scheduler refuses work; closing twice closes its backend once."""
    if harness.kind == "memory":
        pytest.skip("the in-memory scheduler holds nothing to close")
    limits = harness.make()
    assert isinstance(limits, RedisRateLimitScheduler)
    await limits.run("u1", FIVE, _noop)
    await limits.aclose()
    await limits.aclose()
    with pytest.raises(ClientStateError, match="closed"):
        await limits.run("u1", FIVE, _noop)
    for backend in harness.backends:
        assert backend.closed == 1
