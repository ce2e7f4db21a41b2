"""The rate-limit scheduler, on a fake loop clock: nothing here sleeps in real time."""

from __future__ import annotations

import asyncio
import bisect
import gc
import itertools
import logging
import random
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bitget_keys import _endpoints as ep
from bitget_keys.errors import (
    ConfigurationError,
    RateLimitExceededError,
    RateLimitWaitTooLongError,
)
from bitget_keys.limits import (
    IPBudget,
    IPPolicy,
    Policy,
    RateLimitScheduler,
    StormWatch,
    decayed_margin,
    jitter,
    next_slot,
    widened_margin,
)
from bitget_keys.testing._clock import LoopClock
from tests.limits.scheduling import FIVE, ONE, START, TEN, Log, submit, times

#: The spacing of a 5/s lane at the default 5% margin.
T5 = 0.2 * 1.05


def make(**options: Any) -> RateLimitScheduler:
    """A scheduler without the IP budget (so lanes are independent) unless given one."""
    options.setdefault("ip_budget", None)
    return RateLimitScheduler(**options)


def throttled(endpoint: ep.Endpoint = FIVE) -> RateLimitExceededError:
    return RateLimitExceededError(429, "429", "Too Many Requests", endpoint.path)


def densest(stamps: list[float], window: float = 1.0, *, closed: bool = False) -> int:
    """The most stamps in any [t, t+window) (or [t, t+window]); t runs over the stamps."""
    ordered = sorted(stamps)
    find = bisect.bisect_right if closed else bisect.bisect_left
    return max((find(ordered, at + window) - i for i, at in enumerate(ordered)), default=0)


def lane(limits: RateLimitScheduler, uid: str = "u1", endpoint: ep.Endpoint = FIVE) -> Any:
    stats = limits.statistics().lane(uid, endpoint.name)
    assert stats is not None
    return stats


# -- pure arithmetic ------------------------------------------------------------------------


def test_next_slot_spacing() -> None:
    """With limit 1, the next slot is the last stamp plus the period, never before now."""
    assert next_slot([], limit=1, period=0.2, now=5.0) == 5.0
    assert next_slot([4.9], limit=1, period=0.2, now=5.0) == pytest.approx(5.1)
    assert next_slot([1.0], limit=1, period=0.2, now=5.0) == 5.0
    assert next_slot([4.9], limit=1, period=0.2, now=5.0, ahead=3) == pytest.approx(5.7)


def test_next_slot_sliding() -> None:
    """With limit N, slot k waits for stamp k-N to leave the period."""
    stamps = [0.0, 0.1, 0.2]
    assert next_slot(stamps, limit=5, period=1.0, now=0.3) == 0.3
    assert next_slot(stamps, limit=5, period=1.0, now=0.3, ahead=1) == 0.3
    assert next_slot(stamps, limit=5, period=1.0, now=0.3, ahead=2) == 1.0
    assert next_slot(stamps, limit=5, period=1.0, now=0.3, ahead=4) == pytest.approx(1.2)
    assert next_slot(stamps, limit=5, period=1.0, now=0.3, ahead=5) == pytest.approx(1.3)
    assert next_slot(stamps, limit=3, period=1.0, now=0.3) == 1.0


def test_margin_widens_and_decays() -> None:
    """A 429 multiplies the margin by 1.5 up to the cap; each quiet minute takes 0.01 off."""
    assert widened_margin(0.05, 0.5) == pytest.approx(0.075)
    assert widened_margin(0.0, 0.5) == pytest.approx(0.03)
    assert widened_margin(0.4, 0.5) == 0.5
    assert decayed_margin(0.075, 0.05, 59.9) == 0.075
    assert decayed_margin(0.075, 0.05, 60.0) == pytest.approx(0.065)
    assert decayed_margin(0.075, 0.05, 3600.0) == 0.05


def test_jitter_is_p99_minus_min() -> None:
    """Jitter is the 99th percentile minus the minimum, robust to one outlier in 200."""
    assert jitter([]) is None
    assert jitter([40.0]) == 0.0
    delays = [40.0 + k % 20 for k in range(199)] + [900.0]
    assert jitter(delays) == 19.0


# -- spacing and sliding ------------------------------------------------------------------


async def test_idle_lane_releases_at_multiples_of_interval(clock: LoopClock) -> None:
    """N+1 requests to an idle 5/s lane go at exactly 0, T, 2T, ... 5T: no initial burst."""
    limits = make()
    log: Log = []
    tasks = [submit(limits, clock, log, i) for i in range(6)]
    await clock.advance(2.0)
    assert all(task.done() for task in tasks)
    assert times(log) == pytest.approx([k * T5 for k in range(6)])
    assert [tag for _, tag in log] == list(range(6))


async def test_no_burst_after_long_idle(clock: LoopClock) -> None:
    """After 100 s of idling, a spacing lane still sends one request per T."""
    limits = make()
    log: Log = []
    submit(limits, clock, log, "first")
    await clock.advance(100.0)
    tasks = [submit(limits, clock, log, i) for i in range(6)]
    await clock.advance(2.0)
    assert all(task.done() for task in tasks)
    later = times(log)[1:]
    assert [b - a for a, b in itertools.pairwise(later)] == pytest.approx([T5] * 5)
    assert densest(later) == 5


async def test_sliding_sends_n_at_once_then_waits(clock: LoopClock) -> None:
    """A sliding lane sends N at once, then waits W·(1+m) for the next N."""
    limits = make(policies={FIVE.name: Policy.SLIDING})
    log: Log = []
    tasks = [submit(limits, clock, log, i) for i in range(11)]
    await clock.advance(3.0)
    assert all(task.done() for task in tasks)
    assert times(log) == pytest.approx([0.0] * 5 + [1.05] * 5 + [2.1])


@pytest.mark.parametrize("policy", list(Policy))
async def test_no_window_holds_more_than_n(clock: LoopClock, policy: Policy) -> None:
    """Random bursts on three lanes for 20 s: no [t, t+1] window on any lane holds N+1."""
    rng = random.Random(7)
    endpoints = (ONE, FIVE, TEN)
    limits = make(policies={endpoint.name: policy for endpoint in endpoints})
    logs: dict[str, Log] = {endpoint.name: [] for endpoint in endpoints}
    tasks = []
    for _ in range(80):
        endpoint = rng.choice(endpoints)
        burst = rng.randint(1, 2 * endpoint.rate)
        tasks += [submit(limits, clock, logs[endpoint.name], 0, endpoint) for _ in range(burst)]
        await clock.advance(rng.uniform(0.0, 0.5))
    await clock.advance(120.0)
    assert all(task.done() for task in tasks)
    for endpoint in endpoints:
        stamps = times(logs[endpoint.name])
        assert densest(stamps, closed=True) <= endpoint.rate, endpoint.name
        # Saturated stretches really reach N in W·(1+m): the limiter is not just slow.
        assert densest(stamps, 1.05 - 1e-6) == endpoint.rate, endpoint.name


# -- order and cancellation ---------------------------------------------------------------


async def test_newcomer_does_not_barge(clock: LoopClock) -> None:
    """A request arriving exactly as a slot opens goes behind those already waiting."""
    limits = make()
    log: Log = []
    for tag in ("a", "b", "c"):
        submit(limits, clock, log, tag, ONE)
    await clock.settle()
    clock.now = START + 1.05  # b's slot opens; the lane's runner has not run yet
    submit(limits, clock, log, "newcomer", ONE)
    await clock.advance(5.0)
    assert [tag for _, tag in log] == ["a", "b", "c", "newcomer"]
    assert times(log) == pytest.approx([0.0, 1.05, 2.1, 3.15])


async def test_cancelled_head_consumes_nothing(clock: LoopClock) -> None:
    """Cancelling the waiting head: the next request goes at the head's time, no slot spent."""
    limits = make()
    log: Log = []
    submit(limits, clock, log, "a", ONE)
    head = submit(limits, clock, log, "b", ONE)
    submit(limits, clock, log, "c", ONE)
    await clock.advance(0.5)
    head.cancel()
    await clock.advance(5.0)
    assert head.cancelled()
    assert log[1][1] == "c"
    assert times(log) == pytest.approx([0.0, 1.05])
    assert lane(limits, endpoint=ONE).dispatched == 2


async def test_cancelled_waiter_behind_head_consumes_nothing(clock: LoopClock) -> None:
    """Cancelling a waiter in the middle of the queue leaves the others on schedule."""
    limits = make()
    log: Log = []
    tasks = [submit(limits, clock, log, i, ONE) for i in range(4)]
    await clock.settle()
    tasks[2].cancel()
    await clock.settle()
    assert lane(limits, endpoint=ONE).queued == 2
    await clock.advance(5.0)
    assert [tag for _, tag in log] == [0, 1, 3]
    assert times(log) == pytest.approx([0.0, 1.05, 2.1])


async def test_a_cancelled_waiter_keeps_nothing_of_its_caller(clock: LoopClock) -> None:
    """
    A caller that gave up leaves its waiter in the queue until the lane reaches it (here
    a five-minute pause), but not its frames: its request is freed at once.
    """
    limits = make()
    limits.pause_all(300.0)

    class Body:
        pass

    bodies: list[weakref.ref[Body]] = []

    async def call() -> None:
        body = Body()
        bodies.append(weakref.ref(body))

        async def send() -> Body:
            return body

        await limits.run("u1", ONE, send)

    tasks = [asyncio.create_task(call()) for _ in range(5)]
    await clock.settle()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    del task, tasks
    await clock.settle()  # the gather's own callbacks
    gc.collect()
    assert lane(limits, endpoint=ONE).queued == 0
    assert len(bodies) == 5
    assert [ref() for ref in bodies] == [None] * 5


async def test_cancelled_after_grant_gives_the_slot_back(clock: LoopClock) -> None:
    """A waiter cancelled after its turn came but before it stamped: the next one goes."""
    limits = make()
    log: Log = []
    submit(limits, clock, log, "a", ONE)
    granted = submit(limits, clock, log, "b", ONE)
    submit(limits, clock, log, "c", ONE)
    await clock.settle()
    loop = asyncio.get_running_loop()
    caught = []

    def probe(rounds: int = 0) -> None:
        # Runs once per loop iteration: b's turn has come when it is no longer queued,
        # and it has not stamped while the lane's count is still one.
        stats = lane(limits, endpoint=ONE)
        if stats.queued == 1 and stats.dispatched == 1:
            caught.append(clock.now)
            granted.cancel()
        elif rounds < 100:
            loop.call_soon(probe, rounds + 1)

    clock.now = START + 1.05
    loop.call_soon(probe)
    await clock.settle()
    assert caught == [START + 1.05]
    assert granted.cancelled()
    assert [tag for _, tag in log] == ["a", "c"]
    assert times(log) == pytest.approx([0.0, 1.05])
    stats = limits.statistics()
    assert stats.in_flight == 0
    assert lane(limits, endpoint=ONE).dispatched == 2


# -- stamping at the actual dispatch ----------------------------------------------------


async def test_busy_loop_delays_never_compress_gaps(clock: LoopClock) -> None:
    """When each loop iteration costs a varying time, send() calls are still T apart."""
    limits = make()
    log: Log = []
    lags = itertools.cycle([0.0, 0.013, 0.0, 0.0, 0.051, 0.002, 0.0, 0.029])
    done = asyncio.Event()

    async def busy() -> None:
        while not done.is_set():
            clock.now += next(lags)
            await asyncio.sleep(0)

    hog = asyncio.create_task(busy())
    tasks = [submit(limits, clock, log, i) for i in range(15)]
    await asyncio.gather(*tasks)
    done.set()
    await hog
    gaps = [b - a for a, b in itertools.pairwise(times(log))]
    assert min(gaps) >= T5
    # The loop's lateness was real: some gaps grew beyond T.
    assert max(gaps) > T5 + 0.01


async def test_next_gap_counts_from_actual_dispatch(clock: LoopClock) -> None:
    """A request held 300 ms for an in-flight permit: the next slot counts from its send."""
    limits = make(max_in_flight=1)
    log: Log = []
    release = asyncio.Event()

    async def hold() -> None:
        log.append((clock.now, "hold"))
        await release.wait()

    holder = asyncio.create_task(limits.run("u0", TEN, hold))
    submit(limits, clock, log, "b1", FIVE)
    submit(limits, clock, log, "b2", FIVE)
    await clock.advance(0.3)
    assert [tag for _, tag in log] == ["hold"]
    release.set()
    await clock.settle()
    await clock.advance(1.0)
    assert holder.done()
    assert times(log) == pytest.approx([0.0, 0.3, 0.3 + T5])


async def test_send_failure_or_cancellation_is_not_refunded(clock: LoopClock) -> None:
    """A request that failed or was cancelled after its send began keeps its slot."""
    limits = make()
    log: Log = []
    started = asyncio.Event()

    async def fails() -> None:
        log.append((clock.now, "fails"))
        raise ValueError

    async def hangs() -> None:
        log.append((clock.now, "hangs"))
        started.set()
        await asyncio.Event().wait()

    failing = asyncio.create_task(limits.run("u1", FIVE, fails))
    hanging = asyncio.create_task(limits.run("u1", FIVE, hangs))
    await clock.advance(T5)
    assert started.is_set()
    hanging.cancel()
    submit(limits, clock, log, "next")
    await clock.advance(1.0)
    assert isinstance(failing.exception(), ValueError)
    assert hanging.cancelled()
    assert times(log) == pytest.approx([0.0, T5, 2 * T5])
    assert limits.statistics().in_flight == 0


# -- 429 feedback -------------------------------------------------------------------------


async def test_429_pauses_only_its_lane_and_retries_first(clock: LoopClock) -> None:
    """A 429 pauses its lane ~1 s, widens its margin and retries before the queue."""
    limits = make()
    log: Log = []
    other: Log = []
    answer = asyncio.Event()

    async def flaky() -> str:
        log.append((clock.now, "flaky"))
        if len(log) == 1:
            await answer.wait()
            raise throttled()
        return "ok"

    first = asyncio.create_task(limits.run("u1", FIVE, flaky))
    behind = [submit(limits, clock, log, i) for i in range(2)]
    elsewhere = [submit(limits, clock, other, i, uid="u2") for i in range(4)]
    await clock.advance(0.1)
    answer.set()  # the 429 arrives while the two others wait for their slots
    await clock.settle()
    stats = lane(limits)
    assert (stats.throttled, stats.queued) == (1, 3)
    assert stats.margin == pytest.approx(0.075)
    assert stats.paused_until is not None
    resume = stats.paused_until - START
    assert 1.1 <= resume <= 1.3
    await clock.advance(3.0)
    assert first.result() == "ok"
    assert all(task.done() for task in behind + elsewhere)
    # The other lane never noticed.
    assert times(other) == pytest.approx([k * T5 for k in range(4)])
    # The retry went first, at the end of the pause, then the queue at the wider spacing.
    assert [tag for _, tag in log] == ["flaky", "flaky", 0, 1]
    wide = 0.2 * 1.075
    assert times(log) == pytest.approx([0.0, resume, resume + wide, resume + 2 * wide])
    # No refund: the throttled attempt counts as dispatched.
    assert lane(limits).dispatched == 4


async def test_margin_decays_per_quiet_minute(clock: LoopClock) -> None:
    """The widened margin loses 0.01 per minute without a 429, down to the base margin."""
    limits = make(retries=0, max_margin=0.1)
    for _ in range(3):
        task = asyncio.create_task(limits.run("u1", FIVE, _raise_throttled))
        await clock.advance(2.0)
        assert isinstance(task.exception(), RateLimitExceededError)
    assert lane(limits).margin == 0.1  # 0.075, 0.1125, capped at 0.1
    assert lane(limits).interval == pytest.approx(0.2 * 1.1)
    await clock.advance(59.0)
    assert lane(limits).margin == pytest.approx(0.09)
    await clock.advance(60.0)
    assert lane(limits).margin == pytest.approx(0.08)
    await clock.advance(600.0)
    assert lane(limits).margin == 0.05


async def test_a_storm_on_many_lanes_widens_no_margin(clock: LoopClock) -> None:
    """429s on many lanes at once pause them but leave their margins as they were."""
    limits = make(retries=2)
    tasks = [asyncio.create_task(limits.run(f"u{i}", FIVE, _raise_throttled)) for i in range(5)]
    await clock.advance(5.0)
    assert all(isinstance(task.exception(), RateLimitExceededError) for task in tasks)
    # The first two lanes widened before the storm was recognised; the rest did not.
    margins = sorted(lane(limits, f"u{i}").margin for i in range(5))
    assert margins == pytest.approx([0.05, 0.05, 0.05, 0.075, 0.075])


async def _raise_throttled() -> None:
    raise throttled()


# -- IP level ------------------------------------------------------------------------------


async def test_pause_all_holds_every_lane(clock: LoopClock) -> None:
    """pause_all stops every lane until it ends; then each goes on its own schedule."""
    limits = make()
    log: Log = []
    limits.pause_all(5.0)
    tasks = [submit(limits, clock, log, uid, FIVE, uid) for uid in ("u1", "u2", "u3")]
    await clock.advance(4.99)
    assert log == []
    assert limits.statistics().paused_until == START + 5.0
    await clock.advance(0.01)
    assert all(task.done() for task in tasks)
    assert times(log) == pytest.approx([5.0] * 3)


async def test_429_over_the_ip_cap_locks_every_lane_out(
    clock: LoopClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A 429 when our own last minute holds more than the IP cap pauses all lanes."""
    caplog.set_level(logging.WARNING, logger="bitget_keys.limits")
    limits = make(ip_cap=5, lockout=300.0)
    log: Log = []
    for k in range(6):
        submit(limits, clock, log, k, FIVE, f"u{k}")
    await clock.advance(10.0)
    assert limits.statistics().ip_last_minute == 6
    throttled_task = asyncio.create_task(limits.run("u0", FIVE, _raise_throttled))
    await clock.settle()
    assert limits.statistics().paused_until == START + 10.0 + 300.0
    # The 429 and the lockout are logged with the lane's account and endpoint.
    logged = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (logging.WARNING, f"429 for UID u0 on {FIVE.name}: lane paused") in [
        (level, text[: text.index(" paused") + 7]) for level, text in logged
    ]
    assert any(
        level == logging.ERROR and "every lane paused 300 s" in text for level, text in logged
    )
    late = submit(limits, clock, log, "late", FIVE, "u9")
    await clock.advance(299.0)
    assert not late.done()
    await clock.advance(1.0)
    assert late.done()
    assert times(log)[-1] == pytest.approx(310.0)
    throttled_task.cancel()
    await clock.settle()


async def test_429_storm_on_many_lanes_recovers_without_lockout(clock: LoopClock) -> None:
    """Every lane throttled for 5 s: no IP lockout, and all work is done within 10 s."""
    limits = RateLimitScheduler()
    log: Log = []

    async def stormy() -> None:
        if clock.now < START + 5.0:
            raise throttled()
        log.append((clock.now, "ok"))

    tasks = [
        asyncio.create_task(limits.run(f"u{k}", FIVE, stormy)) for k in range(30) for _ in range(3)
    ]
    await clock.advance(10.0)
    assert all(task.done() and task.exception() is None for task in tasks)
    assert len(log) == 90
    assert max(times(log)) < 10.0
    stats = limits.statistics()
    assert stats.paused_until is None
    assert all(lane.throttled >= 4 for lane in stats.lanes)


async def test_ip_budget_spaces_all_lanes(clock: LoopClock) -> None:
    """
    The IP budget spaces dispatches of different lanes, in the order they came.

    Token k is due at k/rate (GCRA) and may go one interval early (a burst of two), so
    a wake-up that comes late does not lower the budget's rate for good.
    """
    limits = make(ip_budget=IPBudget(rate=10.0, policy=IPPolicy.EVEN))
    log: Log = []
    for uid in ("u1", "u2", "u3", "u4", "u5"):
        submit(limits, clock, log, uid, FIVE, uid)
    await clock.advance(1.0)
    assert [tag for _, tag in log] == ["u1", "u2", "u3", "u4", "u5"]
    assert times(log) == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.3])


async def test_ip_budget_keeps_its_rate_when_woken_late(clock: LoopClock) -> None:
    """Tokens taken up to an interval late still come at the budget's rate."""
    limits = make(ip_budget=IPBudget(rate=10.0, policy=IPPolicy.EVEN))
    log: Log = []
    for k in range(11):
        submit(limits, clock, log, k, FIVE, f"u{k}")
    await clock.settle()
    late = [0.03 if k % 2 else 0.0 for k in range(10)]
    for k in range(1, 10):
        # The loop only gets round to the timers now, as a busy loop would.
        clock.now = START + 0.1 * k + late[k]
        await clock.settle()
    # Two at once (the tolerance), then one per interval however late each went.
    expected = [0.0, 0.0] + [0.1 * k + late[k] for k in range(1, 10)]
    assert times(log) == pytest.approx(expected)


async def test_ip_budget_caps_the_count_per_window(clock: LoopClock) -> None:
    """At most ``limit`` IP tokens in any ``window``: the sixth waits for the first to age."""
    limits = make(ip_budget=IPBudget(rate=100.0, limit=5, window=60.0, policy=IPPolicy.EVEN))
    log: Log = []
    for k in range(7):
        submit(limits, clock, log, k, FIVE, f"u{k}")
    await clock.advance(59.0)
    assert len(log) == 5
    await clock.advance(2.0)
    assert times(log) == pytest.approx([0.0, 0.0, 0.01, 0.02, 0.03, 60.0, 60.0])


async def test_in_flight_cap(clock: LoopClock) -> None:
    """No more than max_in_flight sends run at once, over all lanes."""
    limits = make(max_in_flight=2)
    log: Log = []
    releases = [asyncio.Event() for _ in range(3)]

    def holder(k: int) -> Callable[[], Awaitable[None]]:
        async def send() -> None:
            log.append((clock.now, k))
            await releases[k].wait()

        return send

    tasks = [asyncio.create_task(limits.run(f"u{k}", FIVE, holder(k))) for k in range(3)]
    await clock.advance(1.0)
    assert [tag for _, tag in log] == [0, 1]
    assert limits.statistics().in_flight == 2
    releases[1].set()
    await clock.advance(0.5)
    assert [tag for _, tag in log] == [0, 1, 2]
    assert times(log)[-1] == pytest.approx(1.0)
    for release in releases:
        release.set()
    await clock.settle()
    assert all(task.done() for task in tasks)
    assert limits.statistics().in_flight == 0


# -- max_wait ------------------------------------------------------------------------------


async def test_max_wait_fails_fast_without_queueing(clock: LoopClock) -> None:
    """A request whose slot is too far away fails at once and takes no place in the queue."""
    limits = make()
    log: Log = []
    for k in range(5):
        submit(limits, clock, log, k, ONE)
    await clock.settle()
    hasty = submit(limits, clock, log, "hasty", ONE, max_wait=2.0)
    patient = submit(limits, clock, log, "patient", ONE, max_wait=6.0)
    await clock.settle()
    error = hasty.exception()
    assert isinstance(error, RateLimitWaitTooLongError)
    assert error.wait == pytest.approx(5 * 1.05)
    assert error.max_wait == 2.0
    assert lane(limits, endpoint=ONE).queued == 5
    await clock.advance(10.0)
    assert patient.result() == "patient"
    assert times(log)[-1] == pytest.approx(5 * 1.05)


async def test_max_wait_enforced_while_queued(clock: LoopClock) -> None:
    """A queued request that waits longer than max_wait leaves with an error, taking nothing."""
    limits = make()
    log: Log = []
    submit(limits, clock, log, "a", ONE)
    hurried = submit(limits, clock, log, "hurried", ONE, max_wait=1.5)
    after = submit(limits, clock, log, "after", ONE)
    await clock.settle()
    limits.pause_all(5.0)
    await clock.advance(1.5)
    assert isinstance(hurried.exception(), RateLimitWaitTooLongError)
    assert lane(limits, endpoint=ONE).queued == 1
    await clock.advance(5.0)
    assert after.done()
    assert [tag for _, tag in log] == ["a", "after"]
    assert times(log) == pytest.approx([0.0, 5.0])


async def test_max_wait_zero_goes_when_the_lane_is_free(clock: LoopClock) -> None:
    """max_wait=0 sends at once on a free lane and fails at once on a busy one."""
    limits = make()
    log: Log = []
    first = submit(limits, clock, log, "a", ONE, max_wait=0.0)
    second = submit(limits, clock, log, "b", ONE, max_wait=0.0)
    await clock.settle()
    assert first.result() == "a"
    assert isinstance(second.exception(), RateLimitWaitTooLongError)


# -- lanes, statistics, loops --------------------------------------------------------------


async def test_only_fresh_idle_lanes_are_evicted(clock: LoopClock) -> None:
    """Idle lanes go once they equal a new lane; busy or widened ones stay."""
    limits = make(retries=0)
    log: Log = []
    submit(limits, clock, log, "idle", FIVE, "idle")
    widened = asyncio.create_task(limits.run("widened", FIVE, _raise_throttled))
    busy = [submit(limits, clock, log, k, ONE, "busy") for k in range(20)]
    await clock.advance(11.0)
    assert isinstance(widened.exception(), RateLimitExceededError)
    assert len(limits.statistics().lanes) == 3
    submit(limits, clock, log, "trigger", FIVE, "new")
    await clock.settle()
    kept = {(stats.uid, stats.endpoint) for stats in limits.statistics().lanes}
    assert kept == {("widened", FIVE.name), ("busy", ONE.name), ("new", FIVE.name)}
    await clock.advance(200.0)
    assert all(task.done() for task in busy)
    submit(limits, clock, log, "trigger", FIVE, "newest")
    await clock.settle()
    assert [(stats.uid, stats.endpoint) for stats in limits.statistics().lanes] == [
        ("newest", FIVE.name)
    ]


async def test_ip_scoped_endpoint_has_one_lane(clock: LoopClock) -> None:
    """An endpoint counted per IP is one lane whatever the UID."""
    limits = make()
    log: Log = []
    submit(limits, clock, log, "a", ep.SERVER_TIME, "u1")
    submit(limits, clock, log, "b", ep.SERVER_TIME, "u2")
    await clock.advance(1.0)
    assert times(log) == pytest.approx([0.0, 0.05 * 1.05])
    assert lane(limits, "*", ep.SERVER_TIME).dispatched == 2


async def test_statistics_snapshot(clock: LoopClock) -> None:
    """statistics() reports each lane's queue, work, 429s, margin, interval and pause."""
    limits = make(retries=1)
    log: Log = []
    release = asyncio.Event()

    async def hold() -> None:
        await release.wait()

    holder = asyncio.create_task(limits.run("u1", FIVE, hold))
    throttled_task = asyncio.create_task(limits.run("u2", ONE, _raise_throttled))
    for k in range(3):
        submit(limits, clock, log, k, FIVE)
    await clock.settle()
    stats = limits.statistics()
    assert stats.in_flight == 1
    assert stats.max_in_flight == 100
    assert stats.ip_last_minute == 2
    assert stats.paused_until is None
    one = lane(limits)
    assert (one.queued, one.in_flight, one.dispatched, one.throttled) == (3, 1, 1, 0)
    assert (one.margin, one.interval, one.paused_until, one.jitter) == (0.05, T5, None, None)
    assert one.policy is Policy.SPACING
    two = lane(limits, "u2", ONE)
    assert (two.queued, two.in_flight, two.dispatched, two.throttled) == (1, 0, 1, 1)
    assert two.paused_until is not None
    assert two.paused_until > clock.now
    assert two.interval == pytest.approx(1.075)
    assert "RateLimitScheduler lanes=2" in repr(limits)
    release.set()
    await clock.advance(3.0)
    assert holder.done()
    assert isinstance(throttled_task.exception(), RateLimitExceededError)


def test_invalid_ip_budget() -> None:
    """An IP budget needs positive numbers."""
    with pytest.raises(ConfigurationError, match="rate"):
        IPBudget(rate=0.0)


def slow(clock: LoopClock, log: Log, tag: Any, seconds: float) -> Callable[[], Awaitable[Any]]:
    """A send() that records when it was called and completes ``seconds`` later."""

    async def send() -> Any:
        log.append((clock.now, tag))
        await asyncio.sleep(seconds)
        return tag

    return send


async def test_spacing_waits_a_window_after_the_completion_n_back(clock: LoopClock) -> None:
    """
    The (N+1)-th dispatch goes no sooner than W after the first one completed.

    The server received the first request by the time its answer came back, so no
    window of W can then hold both: whatever the delays on the way.
    """
    limits = make()
    log: Log = []
    first = asyncio.create_task(limits.run("u1", ONE, slow(clock, log, "a", 0.5)))
    second = submit(limits, clock, log, "b", ONE)
    await clock.advance(3.0)
    await asyncio.gather(first, second)
    # Spacing alone would allow 1.05; the first answer came at 0.5.
    assert times(log) == pytest.approx([0.0, 1.5])


async def test_sliding_log_counts_completions(clock: LoopClock) -> None:
    """Sliding: at most N in any W·(1+m) counted from when each dispatch completed."""
    limits = make(policies={FIVE.name: Policy.SLIDING})
    log: Log = []
    tasks = [
        asyncio.create_task(limits.run("u1", FIVE, slow(clock, log, k, 0.3))) for k in range(6)
    ]
    await clock.advance(3.0)
    await asyncio.gather(*tasks)
    assert times(log) == pytest.approx([0.0] * 5 + [0.3 + 1.05])


async def test_a_dispatch_in_flight_holds_the_lane_until_it_completes(clock: LoopClock) -> None:
    """While the dispatch N back is unanswered, the lane waits for it, not for a timer."""
    limits = make()
    log: Log = []
    first = asyncio.create_task(limits.run("u1", ONE, slow(clock, log, "a", 3.0)))
    second = submit(limits, clock, log, "b", ONE)
    await clock.advance(2.9)
    assert [tag for _, tag in log] == ["a"]
    assert limits.statistics().lane("u1", ONE.name) is not None
    await clock.advance(2.0)
    await asyncio.gather(first, second)
    assert times(log) == pytest.approx([0.0, 4.0])


@pytest.mark.parametrize("policy", [Policy.SPACING, Policy.SLIDING])
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_no_server_window_holds_n_plus_one_whatever_the_delays(
    clock: LoopClock, policy: Policy, seed: int
) -> None:
    """
    Random delays on the way there and back: no 1 s window at the server holds N+1.

    Each request reaches the "server" some time after it was sent and answers some time
    after that, both at random; the arrival times must never put N+1 into one window.
    """
    rng = random.Random(seed)
    limits = make(margin=0.0, policies={FIVE.name: policy})
    arrivals: list[float] = []

    def send_with_delays() -> Callable[[], Awaitable[None]]:
        there, back = rng.expovariate(1 / 0.05), rng.expovariate(1 / 0.05)

        async def send() -> None:
            await asyncio.sleep(there)
            arrivals.append(clock.now)
            await asyncio.sleep(back)

        return send

    tasks = [asyncio.create_task(limits.run("u1", FIVE, send_with_delays())) for _ in range(60)]
    await clock.advance(60.0)
    await asyncio.gather(*tasks)
    assert len(arrivals) == 60
    assert densest(arrivals) <= FIVE.rate


def test_storm_watch_counts_distinct_lanes_within_its_window() -> None:
    """Three lanes throttled within the window are a storm; one lane three times is not."""
    watch = StormWatch(1.2)
    assert not watch.seen(0.0, ("u1", "a"))
    assert not watch.seen(0.1, ("u1", "a"))
    assert not watch.seen(0.2, ("u2", "a"))
    assert watch.seen(0.3, ("u3", "a"))
    # Long after, the old 429s have left the window.
    assert not watch.seen(5.0, ("u4", "a"))


def test_the_library_logs_nowhere_unless_asked() -> None:
    """The top logger has a NullHandler: an application without logging set up sees nothing."""
    import bitget_keys  # noqa: F401 - the import installs it

    handlers = logging.getLogger("bitget_keys").handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)


def test_a_key_lane_is_logged_by_its_first_characters() -> None:
    """A lane paced per key (UID not known yet) never logs the whole API key."""
    from bitget_keys.limits.core import lane_account

    assert lane_account("key:bg_abcdef0123456789") == "key bg_abc…"
    assert lane_account("1234567890") == "UID 1234567890"


def test_endpoint_names_are_a_public_enum() -> None:
    """
    `bitget_keys.EndpointName` names every endpoint of the table, once, and works where
    a name goes: scheduler policies, the endpoint table.
    """
    from bitget_keys import EndpointName
    from bitget_keys._endpoints import ENDPOINTS
    from bitget_keys.limits import Policy, RateLimitScheduler

    assert {str(name) for name in EndpointName} == set(ENDPOINTS)
    assert all(ENDPOINTS[name].name is name for name in EndpointName)
    sliding = RateLimitScheduler(
        policies={EndpointName.CREATE_UTA_SUBACCOUNT_API_KEY: Policy.SLIDING}
    )
    assert sliding is not None
    with pytest.raises(ConfigurationError, match="no_such_endpoint"):
        RateLimitScheduler(policies={"no_such_endpoint": Policy.SLIDING})
