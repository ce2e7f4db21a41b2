"""
Flows, priorities, deadlines and the IP policies of `RateLimitScheduler`, on a fake loop
clock: nothing here sleeps in real time.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import random
from collections import Counter
from typing import Any

import pytest

from bitget_keys.errors import ConfigurationError, RateLimitWaitTooLongError
from bitget_keys.limits import (
    DEFAULT_IP_BUDGET,
    IPBudget,
    IPPolicy,
    Policy,
    RateLimitScheduler,
    RedisRateLimitScheduler,
)
from bitget_keys.limits.core import resolved_options
from bitget_keys.testing._clock import LoopClock
from tests.limits.fake_backend import FakeSlots
from tests.limits.scheduling import FIVE, ONE, START, TEN, Log, submit, times

#: A 5/s lane's slot (W/N) and its spacing at the default 5% margin.
SLOT5 = 0.2
T5 = 0.2 * 1.05


def make(**options: Any) -> RateLimitScheduler:
    """A scheduler without the IP budget (so lanes are independent) unless given one."""
    options.setdefault("ip_budget", None)
    return RateLimitScheduler(**options)


def tags(log: Log) -> list[Any]:
    return [tag for _, tag in log]


def sent_at(log: Log, tag: Any) -> float:
    return next(at for at, seen in log if seen == tag)


def queued(limits: RateLimitScheduler, uid: str = "u1", endpoint: Any = FIVE) -> int:
    stats = limits.statistics().lane(uid, endpoint.name)
    assert stats is not None
    return stats.queued


async def backlog(limits: RateLimitScheduler, clock: LoopClock, log: Log, after: float) -> None:
    """200 requests of flow "bulk" on FIVE at once, then ``after`` seconds on the clock."""
    for k in range(200):
        submit(limits, clock, log, k, flow="bulk")
    await clock.advance(after)


# -- flows ---------------------------------------------------------------------------------


async def test_two_flows_of_equal_demand_take_turns(clock: LoopClock) -> None:
    """A's backlog, queued first, does not hold B back: after A's first, slots alternate."""
    limits = make()
    log: Log = []
    for k in range(10):
        submit(limits, clock, log, f"a{k}", flow="A")
    for k in range(10):
        submit(limits, clock, log, f"b{k}", flow="B")
    await clock.advance(5.0)
    order = [tag[0] for tag in tags(log)]
    assert order == ["a"] + ["a", "b"] * 9 + ["b"]
    assert times(log) == pytest.approx([k * T5 for k in range(20)])
    # within each flow, the order of the calls
    assert [tag for tag in tags(log) if tag[0] == "a"] == [f"a{k}" for k in range(10)]
    assert [tag for tag in tags(log) if tag[0] == "b"] == [f"b{k}" for k in range(10)]


async def test_two_flows_share_a_sliding_lane_evenly(clock: LoopClock) -> None:
    """Under the sliding policy too, two busy flows split every window 50/50 (±1)."""
    limits = make(default_policy=Policy.SLIDING)
    log: Log = []
    for k in range(30):
        submit(limits, clock, log, ("A", k), flow="A")
        submit(limits, clock, log, ("B", k), flow="B")
    await clock.advance(20.0)
    assert len(log) == 60
    sent = tags(log)
    for start in range(0, 60, 5):
        window = Counter(flow for flow, _ in sent[start : start + 10])
        assert abs(window["A"] - window["B"]) <= 2, (start, window)
    # and never more than N=5 in any window of W·(1+m)
    stamps = times(log)
    assert all(stamps[k + 5] - stamps[k] >= 1.05 - 1e-9 for k in range(55))


async def test_a_new_flow_waits_one_turn_not_the_backlog(clock: LoopClock) -> None:
    """A request of a new flow behind 200 of one flow goes in the next round."""
    limits = make()
    log: Log = []
    await backlog(limits, clock, log, 1.0)
    arrived = clock.now
    submit(limits, clock, log, "other", flow="other", max_wait=1.0)
    await clock.advance(1.0)
    # one bulk request keeps its turn (its flow's turn came first), then "other"
    assert sent_at(log, "other") - arrived <= 2 * T5 + 1e-9
    assert tags(log)[:8] == [0, 1, 2, 3, 4, 5, "other", 6]


# -- priorities ----------------------------------------------------------------------------


async def test_priority_goes_within_two_slots_behind_200_queued(clock: LoopClock) -> None:
    """A high-priority request arriving behind 200 queued bulk ones is sent ≤ 2·W/N later."""
    limits = make()
    log: Log = []
    await backlog(limits, clock, log, 1.03)
    assert queued(limits) > 190
    arrived = clock.now
    submit(limits, clock, log, "urgent", flow="bulk", priority=1)
    await clock.advance(1.0)
    assert sent_at(log, "urgent") - arrived <= 2 * SLOT5
    # the bulk requests keep their order around it, and the lane its spacing
    assert [tag for tag in tags(log) if tag != "urgent"] == list(range(len(log) - 1))
    stamps = times(log)
    assert all(b - a >= T5 - 1e-9 for a, b in itertools.pairwise(stamps))


async def test_priorities_go_highest_first_then_by_flow(clock: LoopClock) -> None:
    limits = make()
    log: Log = []
    submit(limits, clock, log, "first")  # goes at once: the lane was free
    submit(limits, clock, log, "low")
    submit(limits, clock, log, "mid-a", flow="a", priority=1)
    submit(limits, clock, log, "high", priority=2)
    submit(limits, clock, log, "mid-a2", flow="a", priority=1)
    submit(limits, clock, log, "mid-b", flow="b", priority=1)
    await clock.advance(2.0)
    assert tags(log) == ["first", "high", "mid-a", "mid-b", "mid-a2", "low"]


# -- deadlines and max_wait ----------------------------------------------------------------


async def test_max_wait_fails_at_once_with_the_predicted_wait(clock: LoopClock) -> None:
    """Behind 199 queued of its own flow a request would wait 200 slots: it fails at once."""
    limits = make()
    log: Log = []
    await backlog(limits, clock, log, 0.0)
    assert queued(limits) == 199
    hasty = submit(limits, clock, log, "hasty", flow="bulk", max_wait=5.0)
    await clock.settle()
    error = hasty.exception()
    assert isinstance(error, RateLimitWaitTooLongError)
    assert error.wait == pytest.approx(200 * T5)
    assert error.max_wait == 5.0
    assert "nothing was sent" in str(error)
    assert queued(limits) == 199
    await clock.advance(200 * T5 + 1)
    assert "hasty" not in tags(log)
    assert len(log) == 200


async def test_deadline_fails_at_once_and_sends_nothing(clock: LoopClock) -> None:
    limits = make()
    log: Log = []
    for k in range(50):
        submit(limits, clock, log, k, ONE, flow="bulk")
    await clock.settle()
    late = submit(limits, clock, log, "late", ONE, flow="bulk", deadline=clock.now + 10.0)
    await clock.settle()
    error = late.exception()
    assert isinstance(error, RateLimitWaitTooLongError)
    assert error.wait == pytest.approx(50 * 1.05)
    assert error.max_wait == pytest.approx(10.0)
    assert queued(limits, endpoint=ONE) == 49
    # a request that can make its deadline (first by priority) waits and goes in time
    deadline = clock.now + 1.5
    urgent = submit(limits, clock, log, "urgent", ONE, priority=5, deadline=deadline)
    await clock.advance(2.0)
    assert urgent.result() == "urgent"
    assert sent_at(log, "urgent") <= deadline
    assert "late" not in tags(log)


async def test_the_prediction_counts_only_live_waiters(clock: LoopClock) -> None:
    """Cancelled requests still held by the queue do not make a new one fail."""
    limits = make()
    log: Log = []
    first = submit(limits, clock, log, "first", flow="bulk")
    gone = [submit(limits, clock, log, k, flow="bulk") for k in range(20)]
    await clock.settle()
    for task in gone:
        task.cancel()
    await clock.settle()
    assert first.done()
    assert queued(limits) == 0
    fine = submit(limits, clock, log, "fine", flow="bulk", max_wait=0.5)
    await clock.advance(1.0)
    assert fine.result() == "fine"
    assert tags(log) == ["first", "fine"]


# -- priority across lanes when shared budgets bind ----------------------------------------


async def test_priority_goes_first_when_the_ip_budget_binds(clock: LoopClock) -> None:
    """Twenty lanes wait for IP tokens; a high-priority request on another lane goes next."""
    limits = make(ip_budget=IPBudget(rate=10.0, policy=IPPolicy.EVEN))
    log: Log = []
    for k in range(20):
        for n in range(3):
            submit(limits, clock, log, (k, n), FIVE, f"bulk{k}")
    await clock.advance(0.55)
    arrived = clock.now
    before = len(log)
    submit(limits, clock, log, "urgent", TEN, "vip", priority=1)
    await clock.advance(1.0)
    # the IP token after it arrived is its own (the next is due within 1/rate)
    assert sent_at(log, "urgent") - arrived <= 0.1 + 1e-9
    assert tags(log)[before] == "urgent"
    # and the IP's spacing held throughout
    stamps = times(log)
    assert all(b - a >= 0.1 - 1e-9 for a, b in itertools.pairwise(stamps[1:]))


async def test_priority_on_an_already_waiting_lane_moves_it_ahead(clock: LoopClock) -> None:
    """A lane filed among the ready ones with bulk at its head moves up for an urgent one."""
    limits = make(ip_budget=IPBudget(rate=10.0, policy=IPPolicy.EVEN))
    log: Log = []
    for k in range(20):
        submit(limits, clock, log, k, FIVE, f"bulk{k}")
    submit(limits, clock, log, "queued-bulk", FIVE, "bulk19")
    await clock.advance(0.25)
    arrived = clock.now
    submit(limits, clock, log, "urgent", FIVE, "bulk19", priority=1)
    await clock.advance(3.0)
    assert sent_at(log, "urgent") - arrived <= 0.1 + 1e-9
    assert tags(log).index("urgent") < tags(log).index(17)


async def test_priority_goes_first_when_in_flight_permits_bind(clock: LoopClock) -> None:
    """With every permit taken, the next one freed goes to the highest priority waiting."""
    limits = make(max_in_flight=2)
    log: Log = []

    def slow(tag: Any) -> Any:
        async def send() -> Any:
            log.append((clock.now, tag))
            await asyncio.sleep(1.0)
            return tag

        return send

    tasks = [asyncio.create_task(limits.run(f"bulk{k}", FIVE, slow(k))) for k in range(6)]
    await clock.advance(0.5)
    tasks.append(asyncio.create_task(limits.run("vip", TEN, slow("urgent"), priority=3)))
    await clock.advance(5.0)
    assert all(task.done() for task in tasks)
    assert tags(log) == [0, 1, "urgent", 2, 3, 4, 5]
    assert sent_at(log, "urgent") == pytest.approx(START + 1.0)


# -- IP policies ---------------------------------------------------------------------------


async def test_rolling_lets_the_limit_go_at_once_then_waits_for_the_window(
    clock: LoopClock,
) -> None:
    limits = make(ip_budget=IPBudget(limit=5, window=60.0, policy=IPPolicy.ROLLING))
    log: Log = []
    for k in range(7):
        submit(limits, clock, log, k, FIVE, f"u{k}")
    await clock.advance(59.0)
    assert times(log) == pytest.approx([0.0] * 5)
    await clock.advance(2.0)
    assert times(log) == pytest.approx([0.0] * 5 + [60.0, 60.0])


async def test_the_default_ip_budget_is_rolling_at_5700_a_minute(clock: LoopClock) -> None:
    """200 requests on 200 lanes go at once: no per-second pace holds them."""
    assert DEFAULT_IP_BUDGET.policy is IPPolicy.ROLLING
    assert (DEFAULT_IP_BUDGET.limit, DEFAULT_IP_BUDGET.window) == (5700, 60.0)
    limits = RateLimitScheduler()
    log: Log = []
    for k in range(200):
        submit(limits, clock, log, k, FIVE, f"u{k}")
    await clock.settle()
    assert times(log) == [0.0] * 200


@pytest.mark.parametrize("policy", [IPPolicy.ROLLING, IPPolicy.EVEN])
async def test_share_halves_the_budget(clock: LoopClock, policy: IPPolicy) -> None:
    budget = IPBudget(rate=10.0, limit=10, window=60.0, policy=policy, share=0.5)
    assert (budget.effective_rate, budget.effective_limit) == (5.0, 5)
    limits = make(ip_budget=budget)
    log: Log = []
    for k in range(7):
        submit(limits, clock, log, k, FIVE, f"u{k}")
    await clock.advance(61.0)
    if policy is IPPolicy.ROLLING:
        assert times(log) == pytest.approx([0.0] * 5 + [60.0, 60.0])
    else:
        # 5/s with one token of tolerance, and still at most 5 in the minute
        assert times(log) == pytest.approx([0.0, 0.0, 0.2, 0.4, 0.6, 60.0, 60.0])


# -- default_policy ------------------------------------------------------------------------


async def test_default_policy_applies_where_policies_name_nothing(clock: LoopClock) -> None:
    limits = make(default_policy=Policy.SLIDING, policies={ONE.name: Policy.SPACING})
    log: Log = []
    for k in range(6):
        submit(limits, clock, log, k, FIVE)
    submit(limits, clock, log, "one-a", ONE)
    submit(limits, clock, log, "one-b", ONE)
    await clock.advance(2.0)
    stats = limits.statistics()
    five, one = stats.lane("u1", FIVE.name), stats.lane("u1", ONE.name)
    assert five is not None
    assert one is not None
    assert (five.policy, one.policy) == (Policy.SLIDING, Policy.SPACING)
    assert [at for at, tag in log if isinstance(tag, int)] == pytest.approx(
        [START] * 5 + [START + 1.05]
    )
    assert resolved_options(limits)["default_policy"] is Policy.SLIDING


def test_default_policy_is_spacing_and_carries_to_the_redis_scheduler() -> None:
    assert resolved_options(RateLimitScheduler())["default_policy"] is Policy.SPACING
    redis = RedisRateLimitScheduler(backend=FakeSlots(), default_policy=Policy.SLIDING)
    options = resolved_options(redis)
    assert options["default_policy"] is Policy.SLIDING
    assert set(options) == set(resolved_options(RateLimitScheduler()))


def test_default_policy_must_be_a_policy() -> None:
    with pytest.raises(ConfigurationError, match="default_policy must be a Policy"):
        RateLimitScheduler(default_policy="sliding")  # type: ignore[arg-type]


# -- mixed load ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
async def test_mixed_flows_priorities_and_cancels_keep_every_rule(
    clock: LoopClock, seed: int
) -> None:
    """
    Random flows, priorities, arrivals and cancellations over three lanes sharing an even
    IP budget: every request not cancelled is sent once, each (flow, priority) in the order
    of its calls, and no lane ever sends more than N in a window.
    """
    rng = random.Random(seed)
    limits = make(
        ip_budget=IPBudget(rate=12.0, policy=IPPolicy.EVEN),
        default_policy=rng.choice(list(Policy)),
        max_in_flight=3,
    )
    log: Log = []
    tasks: dict[tuple[Any, ...], asyncio.Task[Any]] = {}
    for step in range(120):
        endpoint = rng.choice([FIVE, TEN, ONE])
        flow, priority = rng.choice("abc"), rng.choice([0, 0, 1, 2])
        tag = (endpoint.name, flow, priority, step)
        tasks[tag] = submit(limits, clock, log, tag, endpoint, flow=flow, priority=priority)
        if rng.random() < 0.1:
            rng.choice(list(tasks.values())).cancel()
        await clock.advance(rng.choice([0.0, 0.0, 0.05, 0.3]))
    await clock.advance(200.0)
    assert all(task.done() for task in tasks.values())
    sent = tags(log)
    assert len(sent) == len(set(sent))
    assert set(sent) == {tag for tag, task in tasks.items() if not task.cancelled()}
    # the load did contend: some calls were cancelled, and some overtook earlier ones
    assert any(task.cancelled() for task in tasks.values())
    assert any(
        later[3] < earlier[3] and later[0] == earlier[0]
        for earlier, later in itertools.combinations(sent, 2)
    )
    for key in {tag[:3] for tag in sent}:
        steps = [tag[3] for tag in sent if tag[:3] == key]
        assert steps == sorted(steps), key
    for endpoint in (FIVE, TEN, ONE):
        stamps = [at for at, tag in log if tag[0] == endpoint.name]
        assert densest(stamps) <= endpoint.rate, endpoint.name
    # the IP's even pace with its one token of tolerance: never three within 1/rate
    stamps = times(log)
    assert all(c - a >= 1 / 12 - 1e-9 for a, c in zip(stamps, stamps[2:], strict=False))


def densest(stamps: list[float], window: float = 1.0) -> int:
    """The most stamps in any [t, t+window), t running over the stamps."""
    ordered = sorted(stamps)
    return max(
        (bisect.bisect_left(ordered, at + window) - i for i, at in enumerate(ordered)), default=0
    )
