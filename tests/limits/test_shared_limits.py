"""Clients draw on their UID's budget through the scheduler, checked by the strict emulator."""

from __future__ import annotations

import asyncio

from bitget_keys import Client, ClientConfig, RateLimitScheduler
from bitget_keys._client import shared_scheduler
from bitget_keys.limits import default_scheduler
from bitget_keys.testing import Emulator, EmulatorAccount, Limits, LoopClock, Unpaced

MASTER = EmulatorAccount(
    uid="1000000001", api_key="bg_master", secret_key="master-secret-0001", passphrase="MasterPass1"
)
OTHER = EmulatorAccount(
    uid="1000000002", api_key="bg_other", secret_key="other-secret-0002", passphrase="OtherPass12"
)
CONFIG = ClientConfig(sync_clock=False)


async def test_two_clients_of_one_uid_share_one_budget() -> None:
    """Two clients of one UID, 12 list calls at 1/s: no 429, never two in a second."""
    with LoopClock(start=1000.0) as clock:
        emulator = Emulator([MASTER], limits=Limits(ip_limit=None))
        scheduler = RateLimitScheduler(ip_budget=None)
        clients = [
            Client(
                MASTER.credentials,
                transport=emulator.transport(),
                scheduler=scheduler,
                config=CONFIG,
            )
            for _ in range(2)
        ]
        tasks = [
            asyncio.create_task(client.list_virtual_subaccounts())
            for client in clients
            for _ in range(6)
        ]
        await clock.advance(14.0)
        assert all(task.done() and task.exception() is None for task in tasks)
        for client in clients:
            await client.aclose()
    lane = emulator.audit.lane(MASTER.uid, "list_virtual_subaccounts")
    assert len(lane.accepted) == 12
    assert lane.throttled == 0
    assert lane.max_in_window() == 1
    assert emulator.audit.violations() == {}


async def test_unpaced_clients_are_throttled() -> None:
    """The control: the same calls without pacing draw 429s from the emulator."""
    emulator = Emulator([MASTER], limits=Limits(ip_limit=None))
    client = Client(
        MASTER.credentials, transport=emulator.transport(), scheduler=Unpaced(), config=CONFIG
    )
    results = await asyncio.gather(
        *(client.list_virtual_subaccounts() for _ in range(3)), return_exceptions=True
    )
    await client.aclose()
    assert sum(isinstance(result, Exception) for result in results) == 2
    assert emulator.audit.lane(MASTER.uid, "list_virtual_subaccounts").throttled == 2


async def test_lanes_are_per_uid_and_endpoint() -> None:
    """Another UID, or another endpoint of the same UID, does not wait for a busy lane."""
    with LoopClock(start=1000.0) as clock:
        emulator = Emulator([MASTER, OTHER], limits=Limits(ip_limit=None))
        scheduler = RateLimitScheduler(ip_budget=None)
        master = Client(
            MASTER.credentials, transport=emulator.transport(), scheduler=scheduler, config=CONFIG
        )
        other = Client(
            OTHER.credentials, transport=emulator.transport(), scheduler=scheduler, config=CONFIG
        )
        busy = [asyncio.create_task(master.list_virtual_subaccounts()) for _ in range(5)]
        await clock.settle()
        started = clock.now
        second_uid = asyncio.create_task(other.list_virtual_subaccounts())
        second_endpoint = asyncio.create_task(master.list_virtual_subaccount_api_keys("1"))
        await clock.settle()
        assert second_uid.done()
        assert second_endpoint.done()  # answered at once (with 40066: no such sub-account)
        assert clock.now == started
        await clock.advance(6.0)
        assert all(task.done() for task in busy)
        await master.aclose()
        await other.aclose()


async def test_clients_share_the_loops_default_scheduler() -> None:
    """Clients given no scheduler share one per event loop."""
    first = Client(MASTER.credentials)
    second = Client(OTHER.credentials)
    assert first.scheduler is second.scheduler is shared_scheduler()
    assert isinstance(first.scheduler, RateLimitScheduler)


async def test_a_block_can_have_a_default_scheduler_of_its_own() -> None:
    """
    Inside `default_scheduler()` new clients share the block's scheduler; the loop's own
    comes back after it, and a client that already had one keeps it.
    """
    before = Client(MASTER.credentials)
    loops_own = before.scheduler
    mine = RateLimitScheduler(margin=0.1)
    with default_scheduler(mine) as chosen:
        inside = [Client(MASTER.credentials), Client(OTHER.credentials)]
        assert chosen is mine
        assert all(client.scheduler is mine for client in inside)
        assert before.scheduler is loops_own
        with default_scheduler() as fresh:
            assert fresh is not mine
            assert Client(MASTER.credentials).scheduler is fresh
        assert shared_scheduler() is mine
    assert shared_scheduler() is loops_own
    assert Client(OTHER.credentials).scheduler is loops_own


async def test_a_default_scheduler_set_first_is_dropped_after_its_block() -> None:
    """With no shared scheduler before the block, the next one after it is a new one."""
    loop = asyncio.get_running_loop()
    with default_scheduler() as scoped:
        assert shared_scheduler() is scoped
    assert loop is asyncio.get_running_loop()
    assert shared_scheduler() is not scoped


async def test_observed_jitter_comes_from_request_time() -> None:
    """Each answer's requestTime is reported to the scheduler against the send time."""
    emulator = Emulator([MASTER], limits=Limits(ip_limit=None))
    scheduler = Unpaced()
    async with Client(
        MASTER.credentials, transport=emulator.transport(), scheduler=scheduler, config=CONFIG
    ) as client:
        await client.list_virtual_subaccounts()
    ((uid, endpoint, sent_ms, request_time_ms),) = scheduler.observed
    assert (uid, endpoint) == (MASTER.uid, "list_virtual_subaccounts")
    assert abs(request_time_ms - sent_ms) < 1000
