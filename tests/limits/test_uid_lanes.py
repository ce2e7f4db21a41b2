"""A key whose UID is learned paces as its UID: one budget per account, however it is known."""

from __future__ import annotations

import asyncio

from bitget_keys import Client, ClientConfig, Credentials, RateLimitScheduler
from bitget_keys import _endpoints as ep
from bitget_keys.limits import RedisRateLimitScheduler
from bitget_keys.testing import Emulator, EmulatorAccount, Limits, LoopClock
from tests.limits.fake_backend import FakeSlots
from tests.testing.test_emulator import MASTER, UNIFIED

CONFIG = ClientConfig(sync_clock=False)
KEY_LANE = f"key:{MASTER.api_key}"


def without_uid(account: EmulatorAccount) -> Credentials:
    return Credentials(account.api_key, account.secret_key, account.passphrase)


def client_of(
    emulator: Emulator, scheduler: RateLimitScheduler, account: EmulatorAccount
) -> Client:
    return Client(
        without_uid(account), transport=emulator.transport(), scheduler=scheduler, config=CONFIG
    )


async def test_uid_then_account_info_share_one_lane(clock: LoopClock) -> None:
    """`uid()` then `account_info()` at once: the second waits the UID's interval, no 429."""
    emulator = Emulator([MASTER], limits=Limits(ip_limit=None))
    scheduler = RateLimitScheduler(ip_budget=None)
    async with client_of(emulator, scheduler, MASTER) as client:
        task = asyncio.create_task(_uid_then_info(client))
        await clock.advance(3.0)
        assert task.result() == MASTER.uid
    lane = emulator.audit.lane(MASTER.uid, "account_info")
    assert lane.throttled == 0
    assert len(lane.accepted) == 2
    gap = lane.min_gap()
    assert gap is not None
    assert gap >= 1000
    assert [stats.uid for stats in scheduler.statistics().lanes] == [MASTER.uid]


async def _uid_then_info(client: Client) -> str:
    uid = await client.uid()
    return (await client.account_info()).user_id if uid else ""


async def test_two_clients_of_one_key_learning_its_uid_stay_in_one_budget(
    clock: LoopClock,
) -> None:
    """Two clients without the UID, each calling account-info twice at once: 1/s, no 429."""
    emulator = Emulator([MASTER], limits=Limits(ip_limit=None))
    scheduler = RateLimitScheduler(ip_budget=None)
    clients = [client_of(emulator, scheduler, MASTER) for _ in range(2)]
    tasks = [asyncio.create_task(client.account_info()) for client in clients for _ in range(2)]
    # Then `uid()` and a call under the UID it tells, which must queue behind the four.
    await clock.advance(0.5)
    late = asyncio.create_task(_uid_then_info(clients[1]))
    await clock.advance(8.0)
    assert all(task.result().user_id == MASTER.uid for task in tasks)
    assert late.result() == MASTER.uid
    for client in clients:
        await client.aclose()
    lane = emulator.audit.lane(MASTER.uid, "account_info")
    assert len(lane.accepted) == 6  # clients[1] had no answer yet at 0.5 s: uid() asks too
    assert lane.throttled == 0
    assert lane.max_in_window() == 1


async def test_a_unified_key_learns_its_uid_in_the_settings_lane(clock: LoopClock) -> None:
    """A unified key's settings call, then another at once: one lane, the UID's, no 429."""
    emulator = Emulator([UNIFIED], limits=Limits(ip_limit=None))
    scheduler = RateLimitScheduler(ip_budget=None)
    async with client_of(emulator, scheduler, UNIFIED) as client:
        task = asyncio.create_task(client.uid())
        await clock.advance(2.0)
        assert task.result() == UNIFIED.uid
        again = asyncio.create_task(client.account_settings())
        await clock.advance(2.0)
        assert again.result().uid == UNIFIED.uid
    lane = emulator.audit.lane(UNIFIED.uid, "account_settings")
    assert lane.throttled == 0
    assert lane.max_in_window() == 1
    assert {stats.uid for stats in scheduler.statistics().lanes} == {UNIFIED.uid}


async def test_alias_carries_a_finished_dispatch_into_a_new_uid_lane(clock: LoopClock) -> None:
    """The key's lane becomes the UID's: its next request waits the interval."""
    scheduler = RateLimitScheduler(ip_budget=None, margin=0.0)
    sent: list[float] = []
    loop = asyncio.get_running_loop()

    async def send() -> None:
        sent.append(loop.time())

    await scheduler.run(KEY_LANE, ep.ACCOUNT_INFO, send)
    scheduler.alias(KEY_LANE, MASTER.uid)
    first = asyncio.create_task(scheduler.run(MASTER.uid, ep.ACCOUNT_INFO, send))
    second = asyncio.create_task(scheduler.run(KEY_LANE, ep.ACCOUNT_INFO, send))
    await clock.advance(3.0)
    await asyncio.gather(first, second)
    assert [at - sent[0] for at in sent] == [0.0, 1.0, 2.0]
    assert [stats.uid for stats in scheduler.statistics().lanes] == [MASTER.uid]


async def test_alias_carries_history_into_a_busy_uid_lane(clock: LoopClock) -> None:
    """Both lanes busy: the UID's takes the key lane's dispatch into its next slot."""
    scheduler = RateLimitScheduler(ip_budget=None, margin=0.0)
    sent: list[tuple[str, float]] = []
    loop = asyncio.get_running_loop()
    release = asyncio.Event()

    def sender(name: str, *, hold: bool = False):  # type: ignore[no-untyped-def]
        async def send() -> None:
            sent.append((name, loop.time()))
            if hold:
                await release.wait()

        return send

    held = asyncio.create_task(scheduler.run(MASTER.uid, ep.ACCOUNT_INFO, sender("uid", hold=True)))
    await clock.advance(0.5)
    await scheduler.run(KEY_LANE, ep.ACCOUNT_INFO, sender("key"))
    scheduler.alias(KEY_LANE, MASTER.uid)
    release.set()
    await held
    after = asyncio.create_task(scheduler.run(MASTER.uid, ep.ACCOUNT_INFO, sender("after")))
    await clock.advance(3.0)
    await after
    times = dict(sent)
    # Without the key lane's dispatch the UID lane would let "after" go at 1.0.
    assert times["after"] - times["key"] >= 1.0
    assert times["after"] - times["uid"] == 1.5


async def test_alias_is_idempotent_and_ignores_a_name_for_itself(clock: LoopClock) -> None:
    """Aliasing twice, or a UID to itself, changes nothing."""
    del clock
    scheduler = RateLimitScheduler(ip_budget=None)

    async def send() -> None:
        return None

    await scheduler.run(MASTER.uid, ep.ACCOUNT_INFO, send)
    scheduler.alias(MASTER.uid, MASTER.uid)
    scheduler.alias(KEY_LANE, MASTER.uid)
    scheduler.alias(KEY_LANE, MASTER.uid)
    assert [stats.dispatched for stats in scheduler.statistics().lanes] == [1]


async def test_the_redis_scheduler_sends_an_aliased_key_to_the_uids_lanes(
    clock: LoopClock,
) -> None:
    """After `alias`, a request named by the key books the UID's lane, not the key's."""
    scheduler = RedisRateLimitScheduler(backend=FakeSlots(), ip_budget=None)

    async def send() -> None:
        return None

    before = asyncio.create_task(scheduler.run(KEY_LANE, ep.ACCOUNT_INFO, send))
    await clock.advance(0.1)
    scheduler.alias(KEY_LANE, MASTER.uid)
    after = asyncio.create_task(scheduler.run(KEY_LANE, ep.ACCOUNT_INFO, send))
    await clock.advance(3.0)
    await asyncio.gather(before, after)
    lanes = {(stats.uid, stats.dispatched) for stats in scheduler.statistics().lanes}
    assert lanes == {(KEY_LANE, 1), (MASTER.uid, 1)}
    await scheduler.aclose()
