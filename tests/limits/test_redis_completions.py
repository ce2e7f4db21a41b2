"""
`RedisRateLimitScheduler` across processes: windows counted from completions (the lane's
shared dispatch log, its leases) and the IP budget's policies and share per egress.

The scripts run on a real redis-server with the testing hook for Redis time, so the
arithmetic is checked without sleeping; one test runs two schedulers (two processes'
worth of state) against one lane in real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from bitget_keys.limits import IPBudget, IPPolicy, Policy
from bitget_keys.limits.redis import RedisBackend, RedisLane, RedisRateLimitScheduler
from bitget_keys.limits.redis.backend import lane_keys
from bitget_keys.limits.redis.scripts import COMPLETE
from bitget_keys.testing._redis_server import RedisServer
from tests.limits.conftest import require_redis
from tests.limits.scheduling import FIVE, ONE, TEN
from tests.limits.test_redis_limits import NOW, SECOND, backend_of, reserve


def lane_of(
    prefix: str, uid: str, endpoint: Any = ONE, policy: Policy = Policy.SPACING
) -> RedisLane:
    return RedisLane(uid, endpoint, policy, 0.05, lane_keys(prefix, "default", uid, endpoint))


async def complete(backend: RedisBackend, lane: RedisLane, seq: int, at: int) -> int:
    """Record dispatch ``seq`` completed at ``at`` (Redis µs); 1 if it was recorded."""
    reply = await backend.run(COMPLETE, [lane.key, lane.log_key], [seq, 5000, "", str(at)])
    return reply[0]


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def limits(redis_server: RedisServer, prefix: str) -> AsyncIterator[RedisRateLimitScheduler]:
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as made:
        yield made


# -- the lane's dispatch log -----------------------------------------------------------------


async def test_a_slot_waits_for_the_completion_n_back(limits: RedisRateLimitScheduler) -> None:
    """
    A 1/s lane: while dispatch 0 is in flight the next reservation is blocked (nothing is
    written); once it completed, the next slot is W after the completion.
    """
    backend = backend_of(limits)
    lane = lane_of(limits._prefix, "201")
    first = await reserve(backend, lane)
    assert (first.granted, first.blocked, first.seq, first.wait) == (True, False, 0, 0.0)
    blocked = await reserve(backend, lane, NOW + SECOND // 2)
    assert blocked.blocked
    assert blocked.seq is None
    # The earliest it could come: the spacing's 1.05 s after dispatch 0's slot.
    assert blocked.wait == pytest.approx(0.55)
    # Still blocked after that while the answer has not come (a slow answer) ...
    assert (await reserve(backend, lane, NOW + 2 * SECOND)).blocked
    # ... until the completion, 2.5 s after the slot: the next slot is 1 s after it.
    assert await complete(backend, lane, 0, NOW + 5 * SECOND // 2) == 1
    granted = await reserve(backend, lane, NOW + 3 * SECOND)
    assert (granted.granted, granted.blocked, granted.seq) == (True, False, 1)
    assert granted.wait == pytest.approx(0.5)


async def test_a_late_send_holds_the_dispatch_n_later(limits: RedisRateLimitScheduler) -> None:
    """
    A 5/s lane: dispatch 0 was granted for its slot but its process sent it 3 s late (so
    it completed late); dispatches 1-4 completed on time. Dispatch 5 waits for 0's
    completion however long, then goes W after it.
    """
    backend = backend_of(limits)
    lane = lane_of(limits._prefix, "202", FIVE)
    slots = [(await reserve(backend, lane)).wait for _ in range(5)]
    assert slots == pytest.approx([0.0, 0.21, 0.42, 0.63, 0.84])
    for seq in range(1, 5):
        assert await complete(backend, lane, seq, NOW + int((slots[seq] + 0.01) * SECOND)) == 1
    assert (await reserve(backend, lane, NOW + 2 * SECOND)).blocked
    await complete(backend, lane, 0, NOW + 3 * SECOND)
    fifth = await reserve(backend, lane, NOW + 3 * SECOND)
    assert fifth.seq == 5
    assert fifth.wait == pytest.approx(1.0)
    # Dispatch 6 counts from dispatch 1's completion (0.22 s), and keeps the spacing.
    sixth = await reserve(backend, lane, NOW + 3 * SECOND)
    assert sixth.wait == pytest.approx(1.0 + 0.21)


async def test_sliding_counts_a_window_with_its_margin_from_completions(
    limits: RedisRateLimitScheduler,
) -> None:
    """A sliding lane goes N at once, then W·(1+m) after each completion N back."""
    backend = backend_of(limits)
    lane = lane_of(limits._prefix, "203", FIVE, Policy.SLIDING)
    assert [(await reserve(backend, lane)).wait for _ in range(5)] == [0.0] * 5
    for seq in range(5):
        await complete(backend, lane, seq, NOW + SECOND // 10)
    assert (await reserve(backend, lane, NOW + SECOND // 10)).wait == pytest.approx(1.05)


async def test_a_crashed_process_costs_its_lease(redis_server: RedisServer, prefix: str) -> None:
    """
    A dispatch never reported completed (its process crashed) blocks the dispatch N after
    it until its lease ends, then counts as completed there.
    """
    async with RedisRateLimitScheduler(
        redis_server.url, prefix=prefix, ip_budget=None, lease=10.0
    ) as limits:
        backend = backend_of(limits)
        lane = lane_of(prefix, "204")
        crashed = await reserve(backend, lane)
        # The caller must send within the first half of the lease (5 s after its slot).
        assert crashed.lease == pytest.approx(5.0, abs=0.05)
        assert (await reserve(backend, lane, NOW + 9 * SECOND)).blocked
        after = await reserve(backend, lane, NOW + 10 * SECOND)
        assert (after.granted, after.seq) == (True, 1)
        assert after.wait == pytest.approx(1.0)


async def test_a_completion_is_recorded_once_and_only_for_its_own_dispatch(
    limits: RedisRateLimitScheduler, redis_client: aioredis.Redis
) -> None:
    """
    Completions of dispatches that left the log, of unknown numbers or recorded already
    change nothing; the log keeps N entries.
    """
    backend = backend_of(limits)
    lane = lane_of(limits._prefix, "205", FIVE)
    for _ in range(5):
        await reserve(backend, lane)
    for seq in range(5):
        assert await complete(backend, lane, seq, NOW + SECOND) == 1
    assert await complete(backend, lane, 2, NOW + 2 * SECOND) == 0
    assert await complete(backend, lane, 9, NOW + 2 * SECOND) == 0
    await reserve(backend, lane, NOW + 2 * SECOND)
    assert await redis_client.llen(lane.log_key) == 5
    assert await complete(backend, lane, 0, NOW + 3 * SECOND) == 0


async def test_a_completion_claims_the_time_it_was_seen(
    limits: RedisRateLimitScheduler,
) -> None:
    """
    The caller's bound on when the answer came is recorded, not the (later) time the
    script ran; a claim later than the script's own time is capped at it.
    """
    backend = backend_of(limits)
    lane = lane_of(limits._prefix, "206")
    await reserve(backend, lane)
    claimed = str(NOW + SECOND // 10)
    keys = [lane.key, lane.log_key]
    await backend.run(COMPLETE, keys, [0, 5000, claimed, str(NOW + SECOND // 2)])
    # W after the claimed 0.1 s (the script ran at 0.5 s, which would give 1.5 s).
    assert (await reserve(backend, lane, NOW + SECOND // 2)).wait == pytest.approx(0.6)
    # That was dispatch 1, at 1.1 s; its completion claims 9 s, recorded at 2 s.
    await backend.run(COMPLETE, keys, [1, 5000, str(NOW + 9 * SECOND), str(NOW + 2 * SECOND)])
    assert (await reserve(backend, lane, NOW + 2 * SECOND)).wait == pytest.approx(1.0)


async def test_two_schedulers_count_from_each_others_completions(
    redis_server: RedisServer, prefix: str
) -> None:
    """
    Two schedulers (as two processes would) on one 1/s lane: the first's answer takes
    0.3 s, so the second sends no earlier than 1 s after that answer, not 1.05 s after
    the first's slot. It asked while the first was in flight, was told the lane is
    blocked, and learnt of the completion by asking again.
    """
    loop = asyncio.get_running_loop()
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    in_flight = asyncio.Event()

    def sender(name: str, duration: float) -> Any:
        async def send() -> None:
            sent[name] = loop.time()
            in_flight.set()
            await asyncio.sleep(duration)
            answered[name] = loop.time()

        return send

    async with (
        RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as first,
        RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as second,
    ):
        running = asyncio.create_task(first.run("207", ONE, sender("a", 0.3)))
        await in_flight.wait()
        await second.run("207", ONE, sender("b", 0.0))
        await running
        stats = second.statistics()
    # Within what the clock estimate can be off (half a loopback round trip).
    assert sent["b"] >= answered["a"] + 1.0 - 0.005
    assert sent["b"] < answered["a"] + 1.3
    assert stats.blocked >= 1


# -- the IP budget per egress --------------------------------------------------------------------


async def test_rolling_ip_budget_counts_without_pacing(
    redis_server: RedisServer, prefix: str
) -> None:
    """IPPolicy.ROLLING: the limit goes at once, across lanes, then a window after the first."""
    budget = IPBudget(limit=3, window=60.0, policy=IPPolicy.ROLLING)
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=budget) as limits:
        backend = backend_of(limits)
        waits = [(await reserve(backend, lane_of(prefix, uid, TEN))).wait for uid in "1234"]
        assert waits == pytest.approx([0.0, 0.0, 0.0, 60.0])
        later = await reserve(backend, lane_of(prefix, "5", TEN), NOW + 30 * SECOND)
        assert later.wait == pytest.approx(30.0 + 1e-6, abs=1e-5)


async def test_ip_budget_share_per_egress(redis_server: RedisServer, prefix: str) -> None:
    """
    A share of the budget: EVEN spaces 1/(rate·share); ROLLING counts limit·share. Each
    egress name has its own budget.
    """
    even = IPBudget(rate=10.0, limit=600, window=60.0, policy=IPPolicy.EVEN, share=0.5)
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=even) as limits:
        backend = backend_of(limits)
        waits = [(await reserve(backend, lane_of(prefix, uid, TEN))).wait for uid in "123"]
        assert waits == pytest.approx([0.0, 0.2, 0.4])
    rolling = IPBudget(limit=4, window=60.0, policy=IPPolicy.ROLLING, share=0.5)
    for egress in ("eu-1", "eu-2"):
        async with RedisRateLimitScheduler(
            redis_server.url, prefix=prefix, egress=egress, ip_budget=rolling
        ) as limits:
            backend = backend_of(limits)
            lanes = [lane_of(prefix, f"{egress}-{i}", TEN) for i in range(3)]
            waits = [(await reserve(backend, lane, NOW + SECOND)).wait for lane in lanes]
            assert waits == pytest.approx([0.0, 0.0, 60.0])


async def test_even_ip_budget_keeps_slots_booked_ahead_apart(
    redis_server: RedisServer, prefix: str
) -> None:
    """
    IPPolicy.EVEN spaces the IP's slots, not its bookings: a lane booked a second ahead
    does not hold back another lane's slot now, and a slot near it moves past it.
    """
    budget = IPBudget(rate=10.0, limit=600, window=60.0, policy=IPPolicy.EVEN)
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=budget) as limits:
        backend = backend_of(limits)
        ahead = await reserve(backend, lane_of(prefix, "1", TEN), hold=1.0)
        now = await reserve(backend, lane_of(prefix, "2", TEN))
        near = await reserve(backend, lane_of(prefix, "3", TEN), hold=0.95)
        later = await reserve(backend, lane_of(prefix, "4", TEN), hold=0.05)
        assert [g.wait for g in (ahead, now, near, later)] == pytest.approx([1.0, 0.0, 1.1, 0.1])


async def test_rolling_ip_budget_under_cluster(prefix: str) -> None:
    """Under Redis Cluster the rolling count is its own call, in the IP's slot."""
    require_redis()
    budget = IPBudget(limit=2, window=60.0, policy=IPPolicy.ROLLING)
    with RedisServer(cluster=True) as server:
        async with RedisRateLimitScheduler(
            server.url, prefix=prefix, cluster=True, ip_budget=budget
        ) as limits:
            backend = backend_of(limits)
            waits = [(await reserve(backend, lane_of(prefix, uid, TEN))).wait for uid in "123"]
            assert waits == pytest.approx([0.0, 0.0, 60.0])
