"""Over loopback: one clock measurement per loop, and one budget per account however its UID is known."""

from __future__ import annotations

import asyncio
import itertools

from bitget_keys import Client, ClientConfig, Credentials, ServerClock
from bitget_keys._client import shared_server_clock
from bitget_keys.testing import Emulator, Faults, Limits, Unpaced
from tests.testing.test_emulator import BROKER, MASTER, TRADER

ACCOUNTS = [MASTER, BROKER, TRADER]


def time_requests(emulator: Emulator) -> int:
    return sum(
        len(lane.accepted)
        for (_, name), lane in emulator.audit.lanes.items()
        if name == "server_time"
    )


async def test_clients_starting_together_measure_the_clock_once() -> None:
    """20 clients of the loop, one signed call each at once: one time request, one offset."""
    skewed = Emulator(ACCOUNTS, limits=Limits(per_uid=False), faults=Faults(clock_skew_ms=60_000))
    async with skewed:
        clients = [
            Client(account.credentials, base_url=skewed.base_url, scheduler=Unpaced())
            for account in itertools.islice(itertools.cycle(ACCOUNTS), 20)
        ]
        try:
            infos = await asyncio.gather(*(client.account_info() for client in clients))
        finally:
            for client in clients:
                await client.aclose()
    assert len(infos) == 20
    assert time_requests(skewed) == 1
    assert len({id(client.server_clock) for client in clients}) == 1
    assert all(59_000 < client.clock_offset_ms < 61_000 for client in clients)


async def test_a_client_on_its_own_clock_or_given_one_keeps_it() -> None:
    """Another ``clock_ms``, another base URL or an explicit clock: not the loop's."""

    def fixed_ms() -> int:
        return 1_700_000_000_000

    url = "http://127.0.0.1:9"
    default = [Client(MASTER.credentials, base_url=url) for _ in range(2)]
    own = [Client(MASTER.credentials, base_url=url, clock_ms=fixed_ms) for _ in range(2)]
    given = ServerClock()
    explicit = Client(MASTER.credentials, base_url=url, server_clock=given)
    elsewhere = Client(MASTER.credentials, base_url="http://127.0.0.1:10")
    assert default[0].server_clock is default[1].server_clock is shared_server_clock(url)
    assert own[0].server_clock is own[1].server_clock
    assert own[0].server_clock is not default[0].server_clock
    assert own[0].server_clock.now_ms() == 1_700_000_000_000
    assert explicit.server_clock is given
    assert elsewhere.server_clock is not default[0].server_clock
    for client in [*default, *own, explicit, elsewhere]:
        await client.aclose()


def test_two_event_loops_do_not_share_a_clock() -> None:
    """Each loop has its own: a clock's lock and offset belong to the loop that measured it."""
    url = "http://127.0.0.1:9"

    async def loops_clock() -> ServerClock:
        client = Client(MASTER.credentials, base_url=url)
        clock = client.server_clock
        await client.aclose()
        return clock

    first = asyncio.run(loops_clock())
    second = asyncio.run(loops_clock())
    assert first is not second
    assert (
        Client(MASTER.credentials, base_url=url).clock_offset_ms == 0
    )  # no loop: nothing measured


async def test_a_learned_uid_paces_with_the_key_over_loopback() -> None:
    """Real per-UID limits: `uid()` then `account_info()`, and two UID-less clients: no 429."""
    credentials = Credentials(MASTER.api_key, MASTER.secret_key, MASTER.passphrase)
    config = ClientConfig(sync_clock=False)
    async with Emulator([MASTER]) as emulator:
        async with Client(credentials, base_url=emulator.base_url, config=config) as client:
            assert await client.uid() == MASTER.uid
            assert (await client.account_info()).user_id == MASTER.uid
        lane = emulator.audit.lane(MASTER.uid, "account_info")
        gap = lane.min_gap()
        assert lane.throttled == 0
        assert gap is not None
        assert gap >= 1000
        clients = [Client(credentials, base_url=emulator.base_url, config=config) for _ in range(2)]
        try:
            await asyncio.gather(*(client.account_info() for client in clients for _ in range(2)))
        finally:
            for client in clients:
                await client.aclose()
    assert emulator.audit.throttled == 0
    assert len(lane.accepted) == 6
    assert lane.max_in_window() == 1
