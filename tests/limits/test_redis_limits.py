"""
`RedisRateLimitScheduler`: its scripts against a real redis-server, its local logic on a
fake loop clock, and real-time runs of several OS processes against the emulator.

Every test that talks to Redis starts (and stops) its own ``redis-server`` on 127.0.0.1
on a free port; nothing here mocks Redis. The local FIFO, retry and fallback logic is
tested with a fake reservation source on a `LoopClock`, so those tests never sleep.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import logging
import pickle
import random
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from bitget_keys import Client, ClientConfig, RequestEvent
from bitget_keys import _endpoints as ep
from bitget_keys.cli import main
from bitget_keys.errors import (
    APIError,
    ConfigurationError,
    RateLimitBackendError,
    RateLimitExceededError,
)
from bitget_keys.limits import IPBudget, IPPolicy, Policy
from bitget_keys.limits.redis import (
    Grant,
    RedisBackend,
    RedisLane,
    RedisRateLimitScheduler,
    ip_key,
    lane_keys,
    mask_url,
)
from bitget_keys.limits.redis.backend import Offset, Placement
from bitget_keys.limits.redis.booking import _sleep_until_slot
from bitget_keys.provision.plan import load_plan, shard_plan
from bitget_keys.testing import Audit, Emulator, EmulatorAccount, LaneAudit, Limits, LoopClock
from bitget_keys.testing._redis_server import RedisServer
from tests.limits.conftest import require_redis
from tests.limits.fake_backend import FakeSlots
from tests.limits.scheduling import FIVE, ONE, TEN, Log, submit, times

#: A 5/s lane's interval at the default 5% margin, in seconds.
T5 = 0.21
#: An arbitrary Redis time for the scripts' testing hook, in µs.
NOW = 1_800_000_000_000_000
SECOND = 1_000_000
WORKER = Path(__file__).with_name("redis_worker.py")
CONFIG = ClientConfig(sync_clock=False)


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


def accounts(count: int, base: int = 3_000_000_000) -> list[EmulatorAccount]:
    return [
        EmulatorAccount(
            uid=str(base + i),
            api_key=f"bg_redis_{i:04d}",
            secret_key=f"redis-secret-{i:04d}",
            passphrase=f"RedisPass{i:04d}",
            broker=True,
            copy_trader="new",
        )
        for i in range(count)
    ]


def lane_of(
    prefix: str, uid: str, endpoint: ep.Endpoint = FIVE, policy: Policy = Policy.SPACING
) -> RedisLane:
    return RedisLane(uid, endpoint, policy, 0.05, lane_keys(prefix, "default", uid, endpoint))


def backend_of(scheduler: RedisRateLimitScheduler) -> RedisBackend:
    backend = scheduler._backend
    assert isinstance(backend, RedisBackend)
    return backend


async def reserve(backend: RedisBackend, lane: RedisLane, at: int = NOW, **options: Any) -> Grant:
    options.setdefault("margin", 0.05)
    options.setdefault("max_wait", None)
    options.setdefault("hold", 0.0)
    return await backend.reserve(lane, now_us=at, **options)


# -- the scripts, on a real server, with the testing hook for Redis time -------------------


async def test_spacing_reserves_one_interval_apart(redis_server: RedisServer, prefix: str) -> None:
    """A 5/s lane hands out 0, T, 2T; once idle past its bookings, the next goes at once."""
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as limits:
        backend = backend_of(limits)
        lane = lane_of(prefix, "101")
        waits = [(await reserve(backend, lane)).wait for _ in range(3)]
        assert waits == pytest.approx([0.0, T5, 2 * T5])
        later = NOW + 5 * SECOND
        assert (await reserve(backend, lane, later)).wait == 0.0
        # No burst after idling: the next one is a full interval later.
        assert (await reserve(backend, lane, later)).wait == pytest.approx(T5)
        assert backend.round_trips >= 5


async def test_a_refused_reservation_reserves_nothing(
    redis_server: RedisServer, prefix: str
) -> None:
    """A slot further away than max_wait is refused and leaves the lane as it was."""
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as limits:
        backend = backend_of(limits)
        lane = lane_of(prefix, "102")
        await reserve(backend, lane)
        refused = await reserve(backend, lane, max_wait=0.1)
        assert not refused.granted
        assert refused.wait == pytest.approx(T5)
        assert (await reserve(backend, lane)).wait == pytest.approx(T5)


async def test_a_deferred_reservation_reserves_nothing(
    redis_server: RedisServer, prefix: str
) -> None:
    """
    A slot further away than the horizon is deferred, with its wait, and leaves the lane
    as it was; one within the horizon is granted.
    """
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as limits:
        backend = backend_of(limits)
        lane = lane_of(prefix, "103")
        assert (await reserve(backend, lane, horizon=0.05)).seq == 0
        deferred = await reserve(backend, lane, horizon=0.05)
        assert (deferred.granted, deferred.deferred, deferred.seq) == (True, True, None)
        assert deferred.wait == pytest.approx(T5)
        near = NOW + int((T5 - 0.04) * SECOND)
        granted = await reserve(backend, lane, near, horizon=0.05)
        assert (granted.deferred, granted.seq) == (False, 1)
        assert granted.wait == pytest.approx(0.04, abs=1e-5)


async def test_sliding_log_is_exact(
    redis_server: RedisServer, prefix: str, redis_client: aioredis.Redis
) -> None:
    """A sliding lane grants N at once, then waits W·(1+m); the log keeps only N entries."""
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as limits:
        backend = backend_of(limits)
        lane = lane_of(prefix, "103", FIVE, Policy.SLIDING)
        waits = [(await reserve(backend, lane)).wait for _ in range(7)]
        assert waits == pytest.approx([0.0] * 5 + [1.05] * 2)
        assert await redis_client.llen(lane.log_key) == 5
        # Half a window later, the first five still count; 1.05 s after them, all is free.
        assert (await reserve(backend, lane, NOW + SECOND // 2)).wait == pytest.approx(0.55)
        assert (await reserve(backend, lane, NOW + 3 * SECOND)).wait == 0.0


async def test_hold_delays_the_slot(redis_server: RedisServer, prefix: str) -> None:
    """A hold (a pause known only here, or the end of a fallback) moves the slot, for all."""
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as limits:
        backend = backend_of(limits)
        lane = lane_of(prefix, "104")
        assert (await reserve(backend, lane, hold=0.5)).wait == pytest.approx(0.5)
        assert (await reserve(backend, lane)).wait == pytest.approx(0.5 + T5)


async def test_a_429_pauses_the_lane_for_every_process(
    redis_server: RedisServer, prefix: str
) -> None:
    """A 429 seen by one scheduler pauses the lane and widens its margin for another."""
    async with (
        RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as first,
        RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as second,
    ):
        lane = lane_of(prefix, "105")
        raised, paused = await backend_of(first).throttle(
            lane, margin=0.05, max_margin=0.5, pause=1.1, storm=False, now_us=NOW
        )
        assert raised == pytest.approx(0.075)
        assert paused == pytest.approx(1.1)
        grant = await reserve(backend_of(second), lane)
        assert grant.wait == pytest.approx(1.1)
        assert grant.margin == pytest.approx(0.075)
        assert grant.paused_for == pytest.approx(1.1)
        # The next slot is spaced with the raised margin ...
        nxt = await reserve(backend_of(second), lane)
        assert nxt.wait == pytest.approx(1.1 + 0.2 * 1.075)
        # ... which decays by 0.01 per quiet minute, back to the caller's margin.
        later = await reserve(backend_of(second), lane, NOW + 61 * SECOND)
        assert later.margin == pytest.approx(0.065)
        assert (await reserve(backend_of(second), lane, NOW + 3600 * SECOND)).margin == 0.05


async def test_a_storm_pauses_without_widening(redis_server: RedisServer, prefix: str) -> None:
    """A 429 flagged as part of a storm pauses the lane but keeps its margin."""
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as limits:
        lane = lane_of(prefix, "106")
        raised, paused = await backend_of(limits).throttle(
            lane, margin=0.05, max_margin=0.5, pause=1.0, storm=True, now_us=NOW
        )
        assert raised == pytest.approx(0.05)
        assert paused == pytest.approx(1.0)
        raised, _ = await backend_of(limits).throttle(
            lane, margin=0.4, max_margin=0.5, pause=1.0, storm=False, now_us=NOW
        )
        assert raised == 0.5  # capped at max_margin


async def test_keys_are_tagged_per_uid_and_expire(
    redis_server: RedisServer, prefix: str, redis_client: aioredis.Redis
) -> None:
    """Keys carry the UID as hash tag, never an API key, and expire once idle."""
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as limits:
        backend = backend_of(limits)
        plain = lane_of(prefix, "2000000001")
        keyed = lane_of(prefix, "key:bg_someones_api_key", ep.ACCOUNT_INFO)
        await reserve(backend, plain)
        await reserve(backend, keyed)
        names = sorted([key.decode() async for key in redis_client.scan_iter(f"{prefix}:*")])
        assert f"{prefix}:{{2000000001}}:create_virtual_subaccount_api_key" in names
        assert not any("bg_someones_api_key" in name for name in names)
        assert all(name.count("{") == 1 and name.count("}") == 1 for name in names)
        # Redis TIME has moved past NOW's µs, so the TTL is measured from the real clock:
        # it must be positive and no longer than the booked time plus a window plus 1 s.
        ttl = await redis_client.pttl(plain.key)
        assert ttl > 0


async def test_ttl_covers_the_reservation_and_the_decay(
    redis_server: RedisServer, prefix: str, redis_client: aioredis.Redis
) -> None:
    """
    A lane key lives one window past the lease of its newest dispatch (30 s after its
    slot); a raised margin, until it decays.
    """
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as limits:
        backend = backend_of(limits)
        lane = lane_of(prefix, "107")
        await backend.reserve(lane, margin=0.05, max_wait=None, hold=0.0)  # Redis TIME
        ttl = await redis_client.pttl(lane.key)
        # slot 0 + lease 30 s + one window W·(1+m) + 1 s of slack
        assert 30_000 < ttl <= 30_000 + 1050 + 1000 + 1
        assert await redis_client.pttl(lane.log_key) <= ttl
        await backend.throttle(lane, margin=0.05, max_margin=0.5, pause=1.0, storm=False)
        # 0.075 decays to 0.05 in three minutes.
        ttl = await redis_client.pttl(lane.key)
        assert 180_000 < ttl <= 180_000 + 1000 + 1075 + 1000 + 1


async def test_time_comes_from_redis(redis_server: RedisServer, prefix: str) -> None:
    """Without the testing hook, waits are computed from Redis TIME and come out relative."""
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=None) as limits:
        backend = backend_of(limits)
        lane = lane_of(prefix, "108")
        first = await backend.reserve(lane, margin=0.05, max_wait=None, hold=0.0)
        second = await backend.reserve(lane, margin=0.05, max_wait=None, hold=0.0)
        # Counted from the answer: the first slot was when the script ran, a moment ago.
        assert -0.1 < first.wait <= 0.0
        assert 0.1 < second.wait <= T5


async def test_ip_budget_spaces_every_lane_in_one_round_trip(
    redis_server: RedisServer, prefix: str
) -> None:
    """Two UIDs share the IP's GCRA in the same script; a pause of the IP holds every lane."""
    budget = IPBudget(rate=10.0, limit=600, window=60.0, policy=IPPolicy.EVEN)
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix, ip_budget=budget) as limits:
        backend = backend_of(limits)
        before = backend.round_trips
        waits = [(await reserve(backend, lane_of(prefix, uid))).wait for uid in ("1", "2", "3")]
        assert waits == pytest.approx([0.0, 0.1, 0.2])
        # The first call also loaded the five scripts.
        assert backend.round_trips - before == 3 + 5
        await backend.pause_ip(2.0, now_us=NOW)
        assert (await reserve(backend, lane_of(prefix, "4"))).wait == pytest.approx(2.0)


async def test_redis_cluster_keys_share_a_slot(prefix: str) -> None:
    """Against a one-node Redis Cluster every script's keys share a slot (no CROSSSLOT)."""
    require_redis()
    with RedisServer(cluster=True) as server:
        # A client that ignores Cluster is refused: the lane and IP keys are two slots.
        async with RedisRateLimitScheduler(server.url, prefix=prefix) as plain:
            with pytest.raises(RateLimitBackendError, match="same slot"):
                await plain.run("1", FIVE, _nothing)
        async with RedisRateLimitScheduler(server.url, prefix=prefix, cluster=True) as limits:
            backend = backend_of(limits)
            assert backend.cluster
            # What Cluster guarantees: slots at least one interval (0.105 s) apart in
            # Redis TIME, each sent no earlier than its wait after the answer (there the
            # wait counts from the answer). The gap between two sends is not one of them:
            # it also holds how late each caller woke, which a busy host can make the
            # earlier one and not the later.
            answers: list[tuple[int, float, float]] = []
            sent: list[tuple[float, tuple[int, float, float]]] = []
            loop = asyncio.get_running_loop()
            call_script = RedisBackend.call

            async def recorded(
                backend: RedisBackend, script: Any, keys: Any, args: Any
            ) -> tuple[list[int], float]:
                reply, sent_at = await call_script(backend, script, keys, args)
                if script.name == "reserve":
                    answers.append((reply[4] + reply[1], loop.time(), reply[1] / SECOND))
                return reply, sent_at

            async def send() -> None:
                # One lane, one reservation at a time: the latest answer is this slot's.
                sent.append((loop.time(), answers[-1]))

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(RedisBackend, "call", recorded)
                await asyncio.gather(*(limits.run("3", TEN, send) for _ in range(3)))
            assert len(sent) == 3
            slots = [slot for slot, _, _ in answers]
            assert all(b - a >= 105_000 for a, b in itertools.pairwise(slots)), slots
            assert all(at >= answered + wait for at, (_, answered, wait) in sent)
            # With the IP budget on, Cluster costs two round trips per acquire (and a
            # caller that woke too late for its slot books again), and one per completion.
            await limits._booking.drain()
            stats = limits.statistics()
            assert stats.round_trips == 5 + 2 * (3 + stats.missed_slots) + 3
            # Every script, on lanes of both policies (in Redis's future: the testing hook).
            lanes = [lane_of(prefix, uid, FIVE, policy) for uid in ("1", "2") for policy in Policy]
            for lane in lanes:
                assert (await reserve(backend, lane)).granted
            await backend.throttle(
                lanes[0], margin=0.05, max_margin=0.5, pause=1.0, storm=False, now_us=NOW
            )
            await backend.pause_ip(0.5, now_us=NOW)
            assert (await reserve(backend, lanes[2])).wait == pytest.approx(0.5)


async def _nothing() -> None:
    return None


# -- the local side: FIFO, retries, max_wait, fallback, on a fake clock -------------------


def fake(**options: Any) -> tuple[RedisRateLimitScheduler, FakeSlots]:
    options.setdefault("ip_budget", None)
    slots = FakeSlots()
    scheduler = RedisRateLimitScheduler(backend=slots, **options)
    return scheduler, slots


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pauses after a 429 last exactly the backoff."""
    monkeypatch.setattr(random, "uniform", lambda low, _high: low)


async def test_fifo_and_spacing_within_a_process(clock: LoopClock) -> None:
    """Requests of one lane leave in call order, one interval apart, one reservation each."""
    limits, slots = fake()
    log: Log = []
    order = list(range(8))
    random.Random(5).shuffle(order)
    for tag in order:
        submit(limits, clock, log, tag)
        await clock.settle()
    await clock.advance(3.0)
    assert [tag for _, tag in log] == order
    assert times(log) == pytest.approx([k * T5 for k in range(8)])
    assert slots.round_trips == 8
    stats = limits.statistics()
    assert stats.in_flight == 0
    lane = stats.lane("u1", FIVE.name)
    assert lane is not None
    assert (lane.dispatched, lane.queued) == (8, 0)


async def test_only_the_head_holds_a_reservation(clock: LoopClock) -> None:
    """While the head waits for its slot, nobody behind it has called Redis."""
    limits, slots = fake()
    log: Log = []
    for tag in range(5):
        submit(limits, clock, log, tag, ONE)
    await clock.settle()
    assert slots.round_trips == 2  # the first went at once; the second holds the next slot
    await clock.advance(1.05)
    assert slots.round_trips == 3


async def test_a_slot_waits_a_window_after_this_process_completion_n_back(
    clock: LoopClock,
) -> None:
    """
    As in memory: no slot before W after this process's dispatch N back completed.

    The first request's answer takes 0.5 s, so the second is booked no earlier than 1.5 s
    (the reservation alone would allow 1.05 s), and nobody calls Redis for it before the
    first has been answered.
    """
    limits, slots = fake()
    log: Log = []

    async def slow() -> str:
        log.append((clock.now, "a"))
        await asyncio.sleep(0.5)
        return "a"

    first = asyncio.create_task(limits.run("u1", ONE, slow))
    await clock.settle()
    second = submit(limits, clock, log, "b", ONE)
    await clock.advance(0.4)
    assert slots.round_trips == 1  # the second waits for the first's answer
    await clock.advance(2.0)
    await asyncio.gather(first, second)
    assert times(log) == pytest.approx([0.0, 1.5])


@pytest.mark.parametrize("delay", [0.02, 0.3, 2.0])
async def test_a_caller_late_for_its_slot_still_sends(clock: LoopClock, delay: float) -> None:
    """
    An answer that comes after its slot (a starved host) is still sent, however late
    within its lease: the dispatch N after it waits for its completion, in every process.
    """
    limits, slots = fake()
    slots.lease = 30.0
    slots.answer_delay = delay
    log: Log = []
    submit(limits, clock, log, "a", ONE)
    await clock.advance(5.0)
    assert times(log) == pytest.approx([delay])
    assert limits.statistics().missed_slots == 0
    assert (slots.round_trips, slots.completed) == (1, [0])


async def test_a_caller_past_its_lease_gives_the_slot_up(clock: LoopClock) -> None:
    """
    An answer later than half the lease after its slot is not sent: every process will
    count the slot completed at the lease's end. It is reported as given up (so nobody
    waits for the lease), and the caller books the next slot, which it keeps.
    """
    limits, slots = fake()
    slots.lease = 1.0
    slots.answer_delays = [0.6]
    log: Log = []
    submit(limits, clock, log, "a", ONE)
    await clock.advance(5.0)
    assert times(log) == pytest.approx([1.05])
    assert limits.statistics().missed_slots == 1
    assert (slots.round_trips, slots.completed) == (2, [0, 1])


async def test_a_sleeping_caller_wakes_at_the_slot_the_latest_estimate_places(
    clock: LoopClock,
) -> None:
    """
    The first answer puts Redis 20 ms off (its round trip took 80 ms); a fast one that
    comes while the caller sleeps corrects that, and the caller wakes at the true slot,
    not 20 ms before it.
    """
    start = clock.now
    true_offset = 4000.0
    offset = Offset()
    ran = start + 0.06 + true_offset  # the script ran 60 ms into an 80 ms round trip
    offset.sample(start, start + 0.08, ran)
    placed = Placement(offset, ran + 1.95, earliest=start + 1.95, latest=start + 2.03)
    assert placed.due() == pytest.approx(start + 1.99)
    grant = Grant(
        granted=True, wait=placed.due() - start, margin=0.05, paused_for=0.0, placed=placed
    )
    sleeper = asyncio.create_task(_sleep_until_slot(asyncio.get_running_loop(), grant, start))
    await clock.advance(1.0)
    offset.sample(clock.now, clock.now + 0.002, clock.now + 0.001 + true_offset)
    await clock.advance_to(start + 2.0)
    assert not sleeper.done()
    await clock.advance_to(start + 2.01)
    assert sleeper.done()
    assert sleeper.result() == pytest.approx(0.0)


async def test_cancelled_waiter_consumes_nothing(clock: LoopClock) -> None:
    """A caller cancelled while queued never reserves; one cancelled after reserving never sends."""
    limits, slots = fake()
    log: Log = []
    submit(limits, clock, log, "a", ONE)
    sleeping = submit(limits, clock, log, "b", ONE)  # holds the slot at 1.05 s
    queued = submit(limits, clock, log, "c", ONE)
    submit(limits, clock, log, "d", ONE)
    await clock.settle()
    queued.cancel()
    await clock.advance(0.5)
    sleeping.cancel()
    await clock.advance(5.0)
    assert [tag for _, tag in log] == ["a", "d"]
    # b's reservation (1.05 s) is not given back: d goes a slot later.
    assert times(log) == pytest.approx([0.0, 2.1])
    assert slots.round_trips == 3
    assert limits.statistics().in_flight == 0


async def test_fails_closed_while_redis_is_down(clock: LoopClock) -> None:
    """Redis down: RateLimitBackendError, nothing sent, Redis not called again until recheck."""
    limits, slots = fake(recheck=2.0)
    log: Log = []
    slots.down = True
    first = submit(limits, clock, log, "a")
    second = submit(limits, clock, log, "b")
    await clock.settle()
    for task in (first, second):
        with pytest.raises(RateLimitBackendError) as caught:
            task.result()
    assert "no request was sent" in str(caught.value)
    assert "redis://fake:6379/0" in str(caught.value)
    assert FIVE.path in str(caught.value)
    assert slots.round_trips == 1  # the second caller learned it without asking Redis
    await clock.advance(2.5)
    slots.down = False
    ok = submit(limits, clock, log, "c")
    await clock.advance(1.0)
    assert ok.result() == "c"
    assert [tag for _, tag in log] == ["c"]
    assert limits.statistics().backend_errors == 1


async def test_fallback_paces_locally_then_hands_back(
    clock: LoopClock, caplog: pytest.LogCaptureFixture
) -> None:
    """With fallback=0.5 a local scheduler takes over at half the rate, then Redis again."""
    caplog.set_level(logging.WARNING, "bitget_keys.redis_limits")
    limits, slots = fake(fallback=0.5, recheck=1.0)
    log: Log = []
    slots.down = True
    tasks = [submit(limits, clock, log, tag) for tag in range(5)]
    await clock.advance(0.9)
    assert limits.statistics().fallback_active
    # Half the rate: 0.2 s · (1.05 / 0.5) apart.
    assert times(log) == pytest.approx([0.0, 0.42, 0.84])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "pacing locally at 50%" in warnings[0]
    slots.down = False
    await clock.advance(3.0)
    assert all(task.done() for task in tasks)
    # At 1.0 s the outage window closed: what still waited in the fallback went back to
    # Redis, held one window W·(1+m) after the last local send, then one interval apart.
    assert [tag for _, tag in log] == [0, 1, 2, 3, 4]
    assert times(log)[3:] == pytest.approx([0.84 + 1.05, 0.84 + 1.05 + T5])
    assert slots.holds[0] == pytest.approx(0.84 + 1.05 - 1.0)
    stats = limits.statistics()
    assert not stats.fallback_active
    assert stats.fallback_dispatched == 3
    assert any("is back" in r.getMessage() for r in caplog.records)


async def test_pause_all_is_shared(clock: LoopClock) -> None:
    """pause_all holds every lane here and is written to the IP's key for the others."""
    limits, slots = fake()
    log: Log = []
    submit(limits, clock, log, "a")
    await clock.settle()
    limits.pause_all(5.0)
    await clock.settle()
    assert slots.ip_pauses == [5.0]
    submit(limits, clock, log, "b", TEN, uid="u2")
    await clock.advance(6.0)
    assert times(log) == pytest.approx([0.0, 5.0])


@pytest.mark.usefixtures("no_jitter")
async def test_storm_and_ip_lockout_rules(clock: LoopClock) -> None:
    """429s on three lanes at once are a storm; past ip_cap in a minute, every lane pauses."""
    limits, slots = fake(ip_cap=3, lockout=300.0, retries=0)
    log: Log = []

    async def throttled() -> None:
        raise RateLimitExceededError(429, "429", "Too Many Requests", FIVE.path)

    tasks = [asyncio.create_task(limits.run(f"u{i}", FIVE, throttled)) for i in range(4)]
    await clock.settle()
    assert all(isinstance(task.exception(), RateLimitExceededError) for task in tasks)
    assert [storm for _, storm in slots.throttles] == [False, False, True, True]
    # Four dispatches in a minute with a cap of three: the IP cap was breached.
    assert slots.ip_pauses == [300.0]
    submit(limits, clock, log, "later", TEN)
    await clock.advance(301.0)
    assert times(log) == pytest.approx([300.0])


# -- configuration, naming and the error ------------------------------------------------------


def test_public_names() -> None:
    """The module's __all__ names exist; the error is exported where errors live."""
    module = importlib.import_module("bitget_keys.redis_limits")
    assert all(hasattr(module, name) for name in module.__all__)
    assert "RateLimitBackendError" in importlib.import_module("bitget_keys.errors").__all__


def test_mask_url_hides_passwords() -> None:
    """Passwords in the user-info or the query never reach a message."""
    assert mask_url("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert mask_url("rediss://user:s3cret@host/1") == "rediss://user:***@host/1"
    assert mask_url("redis://token@host") == "redis://***@host"
    assert mask_url("unix:///run/redis.sock?db=2&password=s3cret") == (
        "unix:///run/redis.sock?db=2&password=***"
    )
    assert mask_url("redis://host:6379") == "redis://host:6379"
    # A password with an unencoded '/', '?' or '#' ends the host early when parsed: all
    # that stands before the last '@' is masked.
    assert mask_url("redis://:pa/ss@host:6379/0") == "redis://***@host:6379/0"
    assert mask_url("redis://u:pa?ss@host:6379/0") == "redis://***@host:6379/0"
    assert mask_url("redis://u:pa#ss@host/0") == "redis://***@host/0"
    assert mask_url("***@b") == "***@b"


def test_keys() -> None:
    """Lane keys tag the UID; IP-scoped endpoints and the budget share the IP's tag."""
    assert lane_keys("p", "eu1", "123", FIVE) == (
        "p:{123}:create_virtual_subaccount_api_key",
        "p:{123}:create_virtual_subaccount_api_key:log",
    )
    assert lane_keys("p", "eu1", "*", ep.SERVER_TIME)[0] == "p:{ip:eu1}:server_time"
    assert ip_key("p", "eu1") == "p:{ip:eu1}"
    hashed = lane_keys("p", "eu1", "key:bg_abc", ep.ACCOUNT_INFO)[0]
    assert "bg_abc" not in hashed
    assert hashed == lane_keys("p", "eu1", "key:bg_abc", ep.ACCOUNT_INFO)[0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fallback": 0.0}, "fallback"),
        ({"fallback": 1.5}, "fallback"),
        ({"egress": "a b"}, "egress"),
        ({"prefix": "{x}"}, "prefix"),
        ({"recheck": 0}, "recheck"),
        ({"horizon": -0.1}, "horizon"),
        ({"horizon": float("nan")}, "horizon"),
        ({"horizon": float("inf")}, "horizon"),
    ],
)
def test_bad_settings(options: dict[str, Any], message: str) -> None:
    """Settings out of range raise ConfigurationError before anything connects."""
    with pytest.raises(ConfigurationError, match=message):
        RedisRateLimitScheduler("redis://127.0.0.1:9/0", **options)


def test_missing_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis-py, the scheduler says which extra to install."""
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ConfigurationError, match=r"bitget-keys\[redis\]"):
        RedisRateLimitScheduler("redis://127.0.0.1:9/0")


def test_backend_error_pickles_and_reads_well() -> None:
    """The error survives pickling (it crosses process pools) and says nothing was sent."""
    error = RateLimitBackendError("redis://:***@h:6379/0", "TimeoutError", FIVE.path, "42")
    again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert str(again) == str(error)
    assert "for UID 42" in str(error)
    assert "no request was sent" in str(error)


# -- real time: clients, several OS processes, Redis stopped mid-run --------------------------


async def test_client_through_redis_against_the_emulator(
    redis_server: RedisServer, prefix: str
) -> None:
    """Two clients of one UID, each with its own scheduler on one Redis: 1 per s, no 429."""
    master = accounts(1)[0]
    emulator = Emulator([master], limits=Limits(ip_limit=None))
    async with (
        RedisRateLimitScheduler(redis_server.url, prefix=prefix) as first,
        RedisRateLimitScheduler(redis_server.url, prefix=prefix) as second,
    ):
        clients = [
            Client(
                master.credentials,
                transport=emulator.transport(),
                scheduler=scheduler,
                config=CONFIG,
            )
            for scheduler in (first, second)
        ]
        await asyncio.gather(
            clients[0].list_virtual_subaccounts(),
            clients[1].list_virtual_subaccounts(),
            clients[0].list_virtual_subaccounts(),
        )
        for client in clients:
            await client.aclose()
    lane = emulator.audit.lane(master.uid, "list_virtual_subaccounts")
    assert len(lane.accepted) == 3
    assert lane.throttled == 0
    assert lane.max_in_window() == 1


async def _spawn(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def _line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), 60)).decode().strip()


async def _say(process: asyncio.subprocess.Process, text: str) -> None:
    assert process.stdin is not None
    process.stdin.write(f"{text}\n".encode())
    await process.stdin.drain()


async def test_four_processes_share_ten_uids(tmp_path: Path, prefix: str) -> None:
    """
    4 OS processes, 10 UIDs, 4 seed endpoints, saturated through one redis-server: their
    sends never put N+1 into a window of a lane, the strict emulator's audit shows no
    window over N on any lane and no 429 to speak of (each lane gets four times its rate
    offered), and ≥ 90% of the physical maximum.
    """
    require_redis()
    uids, processes, duration, skip = 10, 4, 4.0, 0.5
    rows = [
        {
            "uid": a.uid,
            "api_key": a.api_key,
            "secret_key": a.secret_key.reveal(),
            "passphrase": a.passphrase.reveal(),
        }
        for a in accounts(uids)
    ]
    (tmp_path / "accounts.json").write_text(json.dumps(rows))
    with RedisServer() as server:
        # The emulator runs in a process of its own: its arrival stamps must not wait for
        # this test's (debug-mode) event loop.
        emulator = await _spawn("emulator", "--accounts", str(tmp_path / "accounts.json"))
        base_url = await _line(emulator)
        argv = ["load", "--redis", server.url, "--base-url", base_url, "--prefix", prefix]
        argv += ["--accounts", str(tmp_path / "accounts.json"), "--duration", str(duration)]
        workers = [await _spawn(*argv) for _ in range(processes)]
        for worker in workers:
            assert await _line(worker) == "ready"
        start = time.monotonic() + 0.2
        for worker in workers:
            await _say(worker, f"go {start}")
        outputs = [await asyncio.wait_for(worker.communicate(), 60) for worker in workers]
        await _say(emulator, "stop")
        audit_out, _ = await asyncio.wait_for(emulator.communicate(), 60)
    assert all(process.returncode == 0 for process in [*workers, emulator])
    reports = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    lanes = {
        tuple(key.split()): LaneAudit(accepted=lane["accepted"], throttled=lane["throttled"])
        for key, lane in json.loads(audit_out.splitlines()[-1]).items()
    }
    audit = Audit(lanes=lanes)
    # Every (UID, endpoint) lane, sent to by all four processes, kept to N per window.
    assert len(audit.lanes) == uids * 4
    for (_, name), lane in audit.lanes.items():
        assert lane.max_in_window() <= ep.ENDPOINTS[name].rate, name
        assert lane.max_in_window(closed=True) <= ep.ENDPOINTS[name].rate, name
    assert audit.violations() == {}
    # What the scheduler itself guarantees, however busy the host: the four processes'
    # sends, at the instant each was handed over to be sent, never put N+1 into a window
    # of a lane (slots are W·(1+m)/N apart and each is sent within m·W/2 of its own).
    sends: dict[str, list[float]] = defaultdict(list)
    for report in reports:
        for key, stamps in report["stamps"].items():
            sends[key].extend(stamps)
    assert len(sends) == uids * 4
    for key, stamps in sends.items():
        rate = ep.ENDPOINTS[key.split()[1]].rate
        assert LaneAudit(accepted=stamps).max_in_window(closed=True) <= rate, key
    # The processes really shared the budget: a limiter per process would offer each lane
    # four times its rate and draw a 429 for three requests in four. A rare outlier of
    # the delay between slot and arrival may draw one.
    accepted = audit.accepted
    assert audit.throttled <= max(3, accepted // 100), (audit.throttled, accepted, reports)
    # Every request the emulator saw was sent with a slot.
    assert accepted + audit.throttled <= sum(report["sent"] for report in reports)
    assert all(report["backend_errors"] == report["other_errors"] == 0 for report in reports)
    # Throughput inside the saturated window (after the first half second): ≥ 90% of the
    # physical maximum, less what the pauses after the 429s above took (each pauses its
    # lane for the backoff, 1 s, plus up to 20%, which costs up to 1.2 s of its rate).
    low, high = (start + skip) * 1000, (start + duration) * 1000
    inside = sum(1 for lane in audit.lanes.values() for at in lane.accepted if low <= at < high)
    physical = uids * sum(endpoint.rate for endpoint in (ONE, FIVE, ONE, TEN))
    paused = sum(
        lane.throttled * 1.2 * ep.ENDPOINTS[name].rate for (_, name), lane in audit.lanes.items()
    )
    share = inside / ((duration - skip) * physical - paused)
    missed = sum(report["missed_slots"] for report in reports)
    assert share >= 0.90, (share, audit.throttled, accepted, missed)


def _received(emulator: Emulator) -> int:
    """Every request that reached the emulator's rate limits (accepted or throttled)."""
    return sum(len(lane.accepted) + lane.throttled for lane in emulator.audit.lanes.values())


async def _keep_calling(
    client: Client,
    endpoint: ep.Endpoint,
    until: float,
    sent: list[float],
    errors: list[tuple[float, BaseException]],
) -> None:
    """Call ``endpoint`` until ``until``; record answers and scheduler errors."""
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        try:
            if endpoint is FIVE:
                await client.list_virtual_subaccount_api_keys("1")
            else:
                await client.list_broker_subaccount_api_keys("1")
            sent.append(loop.time())
        except APIError:
            sent.append(loop.time())  # refused after being counted: it was sent
        except RateLimitBackendError as exc:
            errors.append((loop.time(), exc))
            await asyncio.sleep(0.02)


async def test_stopping_redis_mid_run_sends_nothing_without_a_slot() -> None:
    """
    Redis stopped under load: every request the emulator received had a slot, nothing
    arrives once the slots granted before the stop are used, and every call after it fails
    with a clear error that names the server without its password.
    """
    require_redis()
    password = "redis-pass-0xA1"
    masters = accounts(3)
    emulator = Emulator(masters, limits=Limits(ip_limit=None))
    loop = asyncio.get_running_loop()
    sent: list[float] = []
    errors: list[tuple[float, BaseException]] = []
    with RedisServer(password=password) as server:
        limits = RedisRateLimitScheduler(server.url, ip_budget=None, recheck=0.2)
        clients = [
            Client(a.credentials, transport=emulator.transport(), scheduler=limits, config=CONFIG)
            for a in masters
        ]
        end = loop.time() + 2.5
        tasks = [
            asyncio.create_task(_keep_calling(client, endpoint, end, sent, errors))
            for client in clients
            for endpoint in (FIVE, ep.LIST_BROKER_SUBACCOUNT_API_KEYS)
            for _ in range(3)
        ]
        await asyncio.sleep(1.0)
        await asyncio.to_thread(server.stop)
        stopped = loop.time()
        before = _received(emulator)
        # Slots granted before the stop are at most one interval (0.21 s) away.
        await asyncio.sleep(0.5)
        settled = _received(emulator)
        await asyncio.gather(*tasks)
        stats = limits.statistics()
        for client in clients:
            await client.aclose()
        await limits.aclose()
    after = _received(emulator)
    assert before > 20
    # Only the head of each of the six lanes can hold a slot granted before the stop.
    assert settled - before <= 2 * len(clients)
    assert after == settled
    assert not [at for at in sent if at > stopped + 0.5]
    # Every request that reached the emulator was dispatched with a Redis slot.
    assert sum(lane.dispatched for lane in stats.lanes) == after
    late = [exc for at, exc in errors if at > stopped + 0.5]
    assert len(late) > 20
    assert all(isinstance(exc, RateLimitBackendError) for exc in late)
    text = str(late[-1])
    assert "no request was sent" in text
    assert f"127.0.0.1:{server.port}" in text
    assert password not in text
    assert stats.backend_errors >= 1


# -- the command line: apply --redis, --shard --------------------------------------------------


def _plan_text(names: list[str]) -> str:
    """A plan with one account per name, each with one sub-account and one key."""
    blocks = ['[defaults]\nip_list = ["203.0.113.7"]\n']
    for index, name in enumerate(names):
        letters = "".join(chr(ord("a") + int(digit)) for digit in f"{index:02d}")
        blocks.append(
            f'[[accounts]]\nname = "{name}"\ncredentials = "env:{name.upper()}"\n\n'
            f'[[accounts.subaccounts]]\nname = "shardx{letters}"\nlabel = "s{index}"\n\n'
            f'[[accounts.subaccounts.keys]]\nlabel = "trade"\npermissions = ["spot_trade"]\n'
        )
    return "\n".join(blocks)


def _plan_environment(names: list[str], masters: list[EmulatorAccount]) -> dict[str, str]:
    environ = {"BITGET_KEYS_VAULT_KEY": "a long vault passphrase"}
    for name, master in zip(names, masters, strict=True):
        prefix = name.upper()
        environ |= {
            f"{prefix}_API_KEY": master.api_key,
            f"{prefix}_SECRET_KEY": master.secret_key.reveal(),
            f"{prefix}_PASSPHRASE": master.passphrase.reveal(),
            f"{prefix}_UID": master.uid,
        }
    return environ


@pytest.mark.parametrize("shard", ["0/2", "3/2", "1-2", "a/b", "1/0", "2"])
def test_shard_syntax_is_checked(
    shard: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad --shard exits 64 with a message, before the plan is even read."""
    with pytest.raises(SystemExit) as exited:
        main(["apply", str(tmp_path / "missing.toml"), "--shard", shard, "--yes"])
    assert exited.value.code == 64
    assert "--shard" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--egress", "host-1"], "--egress names an IP budget shared through Redis"),
        (["--redis", "redis://:RedisPass99@127.0.0.1:1/0", "--egress", "eu nat"], "egress must"),
    ],
)
def test_egress_is_checked(
    options: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--egress without --redis, or a name Redis keys cannot hold, exits 64 or 78 with nothing sent."""
    names = ["deska"]
    for variable, value in _plan_environment(names, accounts(1)).items():
        monkeypatch.setenv(variable, value)
    (tmp_path / "plan.toml").write_text(_plan_text(names))
    vault = tmp_path / "keys.vault"
    # The state file (and its lock) default to the working directory.
    monkeypatch.chdir(tmp_path)
    argv = ["apply", str(tmp_path / "plan.toml"), "--vault", str(vault), "--create-vault"]
    code = main([*argv, "--yes", *options])
    assert code == 78
    out, err = capsys.readouterr()
    assert message in err
    assert "RedisPass99" not in out + err
    assert not vault.exists()


def test_shards_cover_the_plan_once(tmp_path: Path) -> None:
    """Shards 1/n .. n/n hold every account exactly once: position % n == i - 1."""
    names = [f"desk{letter}" for letter in "abcde"]
    (tmp_path / "plan.toml").write_text(_plan_text(names))
    plan = load_plan(tmp_path / "plan.toml", environ=_plan_environment(names, accounts(5)))
    for count in (1, 2, 3, 5, 7):
        shards = [shard_plan(plan, index, count) for index in range(1, count + 1)]
        seen = [account.name for shard in shards for account in shard.accounts]
        assert sorted(seen) == sorted(names)
        for index, shard in enumerate(shards, start=1):
            assert [a.name for a in shard.accounts] == names[index - 1 :: count]


async def test_two_shards_apply_through_one_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """
    Two apply processes split a plan by --shard and share their limits through --redis;
    with different --egress names, each has its own IP budget.
    """
    require_redis()
    names = ["deska", "deskb", "deskc"]
    masters = accounts(3, base=4_000_000_000)
    for variable, value in _plan_environment(names, masters).items():
        monkeypatch.setenv(variable, value)
    (tmp_path / "plan.toml").write_text(_plan_text(names))
    password = "apply-redis-pass"
    with RedisServer(password=password) as server:
        async with Emulator(masters) as emulator:

            def apply(index: int) -> int:
                return main(
                    [
                        "apply",
                        str(tmp_path / "plan.toml"),
                        "--base-url",
                        emulator.base_url,
                        "--redis",
                        server.url,
                        "--shard",
                        f"{index}/2",
                        "--egress",
                        f"host-{index}",
                        "--vault",
                        str(tmp_path / f"shard{index}.vault"),
                        "--create-vault",
                        "--state",
                        str(tmp_path / f"shard{index}.state"),
                        "--json",
                        "--yes",
                    ]
                )

            # Each command runs its own event loop (as a separate process would).
            codes = await asyncio.gather(*(asyncio.to_thread(apply, i) for i in (1, 2)))
        async with aioredis.Redis.from_url(server.url) as client:
            keys = {key.decode() async for key in client.scan_iter("bitget-keys:*")}
    assert codes == [0, 0]
    out, err = capfd.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    created = {(row["account"], row["kind"]) for row in rows if row["status"] == "created"}
    assert created == {(name, kind) for name in names for kind in ("subaccount", "key")}
    for master in masters:
        assert len(emulator.exchange.subaccounts(master.uid)) == 1
        assert f"bitget-keys:{{{master.uid}}}:batch_create_virtual_subaccounts" in keys
    # The IP budgets (and the lanes of IP-scoped endpoints) are per egress name.
    assert {key.split("}")[0] for key in keys if ":{ip:" in key} == {
        "bitget-keys:{ip:host-1",
        "bitget-keys:{ip:host-2",
    }
    assert {"bitget-keys:{ip:host-1}", "bitget-keys:{ip:host-2}"} <= keys
    assert emulator.audit.throttled == 0, {
        k: v.throttled for k, v in emulator.audit.lanes.items() if v.throttled
    }
    assert password not in out + err


async def test_fallback_paces_locally_while_redis_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With fallback=0.5, requests go on at half the rate while Redis is down, then share again."""
    require_redis()
    caplog.set_level(logging.WARNING, "bitget_keys.redis_limits")
    master = accounts(1)[0]
    emulator = Emulator([master], limits=Limits(ip_limit=None))
    loop = asyncio.get_running_loop()
    sent: list[float] = []
    errors: list[tuple[float, BaseException]] = []
    with RedisServer() as server:
        limits = RedisRateLimitScheduler(server.url, ip_budget=None, fallback=0.5, recheck=0.3)
        dispatched: list[float] = []

        def observe(event: RequestEvent) -> None:
            if event.endpoint == ep.LIST_VIRTUAL_SUBACCOUNT_API_KEYS.name and event.sent_at:
                dispatched.append(event.sent_at)

        client = Client(
            master.credentials,
            transport=emulator.transport(),
            scheduler=limits,
            config=CONFIG,
            observers=[observe],
        )
        end = loop.time() + 4.2
        tasks = [
            asyncio.create_task(_keep_calling(client, FIVE, end, sent, errors)) for _ in range(6)
        ]
        await asyncio.sleep(0.6)
        await asyncio.to_thread(server.stop)
        down = loop.time()
        await asyncio.sleep(1.8)
        await asyncio.to_thread(server.start)
        up = loop.time()
        await asyncio.gather(*tasks)
        stats = limits.statistics()
        await client.aclose()
        await limits.aclose()
    assert errors == []
    lane = emulator.audit.lane(master.uid, ep.LIST_VIRTUAL_SUBACCOUNT_API_KEYS.name)
    assert lane.throttled == 0
    assert lane.max_in_window() <= 5
    # While Redis was down: nothing within a window of the last Redis slot, then one
    # request per 0.2 s · 1.05 / 0.5 = 0.42 s at most. The local sends are the first after
    # the outage began (the slot booked before it goes within 0.25 s), and they go on
    # until the recheck after Redis is back (up to 0.3 s after `up`: not a fixed count).
    # Their spacing is the fallback's own doing, so it is measured where the fallback
    # dispatches them (the client's observers, on the loop clock): arrivals at the
    # emulator add delivery delays that vary by a millisecond or so on a busy machine,
    # while what Bitget must see (no window over 5, no 429) is checked on arrivals above.
    after = [at / 1000 for at in lane.accepted if at / 1000 >= down + 0.25]
    local = after[: stats.fallback_dispatched]
    assert len(local) >= 2
    assert local[0] < up
    local_sent = [at for at in dispatched if at >= down + 0.25][: stats.fallback_dispatched]
    assert len(local_sent) == len(local)
    assert min(b - a for a, b in itertools.pairwise(local_sent)) >= 0.42 - 1e-9
    # Shared again once Redis answered, a window after the last local send: full speed.
    assert after[len(local)] - local[-1] >= 1.0
    assert len([at for at in lane.accepted if at / 1000 >= end - 0.8]) >= 3
    assert not stats.fallback_active
    messages = [record.getMessage() for record in caplog.records]
    assert sum("pacing locally at 50%" in message for message in messages) == 1
    assert any("is back" in message for message in messages)
