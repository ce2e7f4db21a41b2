"""
`RedisRateLimitScheduler` shares a lane fairly within a process: by priority, then flows
in turn, each flow in call order (`bitget_keys.limits.flows.FlowQueue`); across
processes, background requests (negative priority) book their slot only shortly before
it. On a fake loop clock with the in-process fake backend, so nothing sleeps.
"""

from __future__ import annotations

import asyncio

import pytest

from bitget_keys.limits.redis import RedisRateLimitScheduler
from bitget_keys.testing import LoopClock
from tests.limits.fake_backend import FakeSlots
from tests.limits.scheduling import ONE, Log, recorder, times

#: A 1/s lane's interval at the default 5% margin, in seconds.
T1 = 1.05


def scheduler() -> RedisRateLimitScheduler:
    return RedisRateLimitScheduler(backend=FakeSlots(), ip_budget=None)


def queue(
    limits: RedisRateLimitScheduler,
    clock: LoopClock,
    log: Log,
    tag: str,
    *,
    flow: str,
    priority: int = 0,
) -> asyncio.Task[object]:
    return asyncio.create_task(
        limits.run("u1", ONE, recorder(clock, log, tag), flow=flow, priority=priority)
    )


async def test_flows_take_turns_on_a_lane(clock: LoopClock) -> None:
    """
    One flow queues five requests, another then two: after the first two (one sent at
    once, the next holding the lane's turn already), the flows alternate, the one that
    queued first first, each in its own call order, one slot apart.
    """
    limits = scheduler()
    log: Log = []
    for k in range(5):
        queue(limits, clock, log, f"a{k}", flow="a")
        await clock.settle()
    for k in range(2):
        queue(limits, clock, log, f"b{k}", flow="b")
        await clock.settle()
    await clock.advance(10.0)
    assert [tag for _, tag in log] == ["a0", "a1", "a2", "b0", "a3", "b1", "a4"]
    assert times(log) == pytest.approx([k * T1 for k in range(7)])


async def test_a_higher_priority_goes_at_the_next_turn(clock: LoopClock) -> None:
    """A priority request behind a bulk queue takes the next turn (one slot later)."""
    limits = scheduler()
    log: Log = []
    for k in range(20):
        queue(limits, clock, log, f"bulk{k}", flow="bulk")
    await clock.settle()
    await clock.advance(0.5)
    queue(limits, clock, log, "urgent", flow="ops", priority=5)
    await clock.advance(30.0)
    tags = [tag for _, tag in log]
    # bulk0 went at once and bulk1 held the next slot already: urgent is the next after.
    assert tags[:3] == ["bulk0", "bulk1", "urgent"]
    assert times(log)[2] == pytest.approx(2 * T1)
    assert tags[3:] == [f"bulk{k}" for k in range(2, 20)]


async def test_a_retry_keeps_its_flows_place(clock: LoopClock) -> None:
    """A cancelled waiter leaves its flow's turn to the flow's next request."""
    limits = scheduler()
    log: Log = []
    queue(limits, clock, log, "a0", flow="a")
    await clock.settle()
    gone = queue(limits, clock, log, "a1", flow="a")
    queue(limits, clock, log, "b0", flow="b")
    queue(limits, clock, log, "a2", flow="a")
    await clock.settle()
    # a1 holds the turn (it reserved the next slot); cancelling it wastes that slot.
    gone.cancel()
    await clock.advance(10.0)
    assert [tag for _, tag in log] == ["a0", "b0", "a2"]


async def test_a_completion_redis_missed_is_sent_once_it_answers(clock: LoopClock) -> None:
    """
    Redis went down while a request was in flight: its completion is recorded once
    Redis answers again, rather than holding the lane until the dispatch's lease ends.
    """
    slots = FakeSlots()
    limits = RedisRateLimitScheduler(backend=slots, ip_budget=None, recheck=1.0)
    log: Log = []

    async def sent_as_redis_fails() -> str:
        log.append((clock.now, "a"))
        slots.down = True
        return "a"

    await limits.run("u1", ONE, sent_as_redis_fails)
    await clock.settle()
    assert slots.completed == []
    slots.down = False
    await clock.advance(1.5)
    queue(limits, clock, log, "b", flow="a")
    await clock.advance(2.0)
    assert [tag for _, tag in log] == ["a", "b"]
    assert slots.completed == [0, 1]


@pytest.mark.parametrize("horizon", [0.05, None])
async def test_another_process_takes_a_slot_background_work_has_not_booked(
    clock: LoopClock, horizon: float | None
) -> None:
    """
    Two processes on one lane (two schedulers, one backend): process B queues a
    background request (priority -1) just after A's first request went; half a second
    later A queues a request of the default priority. B's request asks for its slot
    only shortly before it comes, so A's, booked meanwhile, takes it and B's goes one
    slot later. With ``horizon=None`` B had booked the slot at once and keeps it.
    """
    slots = FakeSlots()
    first = RedisRateLimitScheduler(backend=slots, ip_budget=None, horizon=horizon)
    second = RedisRateLimitScheduler(backend=slots, ip_budget=None, horizon=horizon)
    log: Log = []
    queue(first, clock, log, "a0", flow="a")
    await clock.advance(0.01)
    queue(second, clock, log, "b-background", flow="b", priority=-1)
    await clock.advance(0.5)
    queue(first, clock, log, "a1", flow="a")
    await clock.advance(5.0)
    tags = [tag for _, tag in log]
    if horizon is None:
        assert tags == ["a0", "b-background", "a1"]
        assert slots.deferred == 0
    else:
        assert tags == ["a0", "a1", "b-background"]
        assert slots.deferred >= 1
        assert second.statistics().deferred == slots.deferred
    assert times(log) == pytest.approx([0.0, T1, 2 * T1])


async def test_background_work_alone_loses_no_slot(clock: LoopClock) -> None:
    """Deferred bookings alone still go one slot apart: asking late costs no time."""
    slots = FakeSlots()
    limits = RedisRateLimitScheduler(backend=slots, ip_budget=None)
    log: Log = []
    for k in range(4):
        queue(limits, clock, log, f"bg{k}", flow="bg", priority=-1)
    await clock.advance(10.0)
    assert [tag for _, tag in log] == [f"bg{k}" for k in range(4)]
    assert times(log) == pytest.approx([k * T1 for k in range(4)])
    assert slots.deferred >= 3
