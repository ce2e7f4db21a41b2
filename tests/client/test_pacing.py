"""
A client's pacing: its flow and priority, `bitget_keys.pacing` blocks over them, and
what each request hands the scheduler; then one deadline end to end over loopback.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest

import bitget_keys
from bitget_keys import Client, ClientConfig, Credentials, RateLimitScheduler, pacing
from bitget_keys import _endpoints as ep
from bitget_keys.errors import ConfigurationError, RateLimitWaitTooLongError
from bitget_keys.testing import Emulator, Limits
from tests.testing.test_emulator import MASTER

T = TypeVar("T")


class Recording:
    """A scheduler that sends at once and keeps the keywords of every `run`."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    async def run(
        self,
        uid: str,
        endpoint: ep.Endpoint,
        send: Callable[[], Awaitable[T]],
        **pacing: Any,
    ) -> T:
        self.runs.append({"uid": uid, "endpoint": endpoint.name, **pacing})
        return await send()

    def observe(
        self, uid: str, endpoint: ep.Endpoint, *, sent_ms: int, request_time_ms: int
    ) -> None:
        pass


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emu:
        yield emu


def recorded_client(emulator: Emulator, **kwargs: Any) -> tuple[Client, Recording]:
    recording = Recording()
    client = Client(
        MASTER.credentials,
        transport=emulator.transport(),
        base_url=emulator.base_url,
        scheduler=recording,
        **kwargs,
    )
    return client, recording


def only_run(recording: Recording, endpoint: str = "list_virtual_subaccounts") -> dict[str, Any]:
    runs = [run for run in recording.runs if run["endpoint"] == endpoint]
    assert len(runs) == 1, recording.runs
    return runs[0]


async def test_a_client_is_its_own_flow_at_priority_zero(emulator: Emulator) -> None:
    client, recording = recorded_client(emulator)
    async with client:
        await client.list_virtual_subaccounts()
    run = only_run(recording)
    assert run["flow"] is client is client.flow
    assert (run["priority"], run["max_wait"], run["deadline"]) == (0, None, None)
    assert run["uid"] == MASTER.uid
    # The clock request is paced like any other: it belongs to the same caller.
    assert only_run(recording, "server_time")["flow"] is client


async def test_client_flow_priority_and_config_wait_reach_the_scheduler(
    emulator: Emulator,
) -> None:
    client, recording = recorded_client(
        emulator, flow="tenant-a", priority=3, config=ClientConfig(max_rate_limit_wait=2.5)
    )
    async with client:
        await client.list_virtual_subaccounts()
    run = only_run(recording)
    assert (run["flow"], run["priority"], run["max_wait"], run["deadline"]) == (
        "tenant-a",
        3,
        2.5,
        None,
    )


async def test_two_clients_of_one_uid_are_two_flows(emulator: Emulator) -> None:
    first, recording = recorded_client(emulator)
    second = Client(
        Credentials(MASTER.api_key, MASTER.secret_key, MASTER.passphrase, uid=MASTER.uid),
        transport=emulator.transport(),
        base_url=emulator.base_url,
        scheduler=recording,
    )
    async with first, second:
        await first.list_virtual_subaccounts()
        await second.list_virtual_subaccounts()
    flows = [run["flow"] for run in recording.runs if run["endpoint"] == "list_virtual_subaccounts"]
    assert flows == [first, second]
    assert first.flow != second.flow


async def test_a_block_overrides_the_client_for_every_method(emulator: Emulator) -> None:
    client, recording = recorded_client(
        emulator, priority=1, config=ClientConfig(max_rate_limit_wait=2.0)
    )
    async with client:
        await client.sync_clock()  # the clock first, outside the block
        loop = asyncio.get_running_loop()
        with pacing(priority=9, flow="urgent", max_wait=0.5, timeout=30.0) as applied:
            entered = loop.time()
            await client.list_virtual_subaccounts()
            await client.account_info()
        await client.account_info()
    inside = [run for run in recording.runs if run["endpoint"] != "server_time"][:2]
    for run in inside:
        assert (run["flow"], run["priority"], run["max_wait"]) == ("urgent", 9, 0.5)
        # The timeout is fixed on entry: one deadline for every call in the block.
        assert run["deadline"] == applied.deadline
        assert entered - 0.5 <= run["deadline"] - 30.0 <= entered
    after = recording.runs[-1]
    assert (after["flow"], after["priority"], after["max_wait"], after["deadline"]) == (
        client,
        1,
        2.0,
        None,
    )


async def test_blocks_nest_and_reach_tasks_started_inside(emulator: Emulator) -> None:
    client, recording = recorded_client(emulator, config=ClientConfig(max_rate_limit_wait=1.0))
    loop = asyncio.get_running_loop()
    far, near = loop.time() + 100.0, loop.time() + 50.0
    async with client:
        await client.sync_clock()
        with pacing(priority=2, deadline=near):
            # The inner deadline is later: the outer one still binds. math.inf lifts
            # the client's wait limit.
            with pacing(deadline=far, max_wait=math.inf):
                await asyncio.gather(client.list_virtual_subaccounts(), client.account_info())
            await client.list_virtual_subaccounts()
    runs = [run for run in recording.runs if run["endpoint"] != "server_time"]
    inner, outer = runs[:2], runs[2]
    for run in inner:
        assert (run["priority"], run["max_wait"], run["deadline"]) == (2, None, near)
    assert (outer["priority"], outer["max_wait"], outer["deadline"]) == (2, 1.0, near)
    assert bitget_keys.pacing is pacing  # the documented spelling


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"priority": "high"}, "priority"),
        ({"priority": True}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"flow": ["not", "hashable"]}, "flow"),
        ({"max_wait": 0}, "max_wait"),
        ({"max_wait": -1.0}, "max_wait"),
        ({"max_wait": math.nan}, "max_wait"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"deadline": math.nan}, "deadline"),
        ({"deadline": "soon"}, "deadline"),
    ],
)
async def test_pacing_refuses_bad_values_naming_the_field(
    kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigurationError, match=rf"pacing\({field}=\.\.\.\)"), pacing(**kwargs):
        pytest.fail("entered the block")


def test_a_timeout_needs_a_running_loop() -> None:
    with pytest.raises(ConfigurationError, match="running event loop"), pacing(timeout=1.0):
        pytest.fail("entered the block")
    with pacing(priority=1) as applied:  # nothing measured on a loop: fine without one
        assert applied.priority == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"priority": "1"}, "priority"), ({"priority": False}, "priority"), ({"flow": {}}, "flow")],
)
def test_client_refuses_bad_pacing_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"Client\({field}=\.\.\.\)"):
        Client(MASTER.credentials, **kwargs)


async def test_a_deadline_that_cannot_be_met_fails_at_once_over_loopback() -> None:
    """The real scheduler and aiohttp: the second list in one second cannot make it."""
    async with Emulator([MASTER]) as emulator:
        limits = RateLimitScheduler()
        async with Client(
            MASTER.credentials, base_url=emulator.base_url, scheduler=limits
        ) as client:
            await client.list_virtual_subaccounts()  # 1/s: takes this second's slot
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(RateLimitWaitTooLongError) as caught, pacing(timeout=0.2):
                await client.list_virtual_subaccounts()
            assert loop.time() - started < 0.2  # refused at once, not after waiting
            # The client's own flow and priority still pace the calls outside a block.
            with pacing(max_wait=5.0, priority=1):
                await client.list_virtual_subaccounts()
        lane = emulator.audit.lanes[(MASTER.uid, "list_virtual_subaccounts")]
    assert caught.value.endpoint == ep.LIST_VIRTUAL_SUBACCOUNTS.path
    assert caught.value.max_wait <= 0.2 < caught.value.wait
    assert (len(lane.accepted), lane.throttled) == (2, 0)
