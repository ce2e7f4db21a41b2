"""
`DispatchGate`: requests waiting for a slot are stopped, requests on the wire finish.

The emulator answers in process; a transport in front of it holds each request "on the
wire" until the test lets it through, and the scheduler runs on the fake loop clock, so
which request is waiting and which is on the wire is exact, never a race.
"""

from __future__ import annotations

import asyncio

import pytest
import yarl

from bitget_keys import (
    Client,
    ClientConfig,
    DispatchGate,
    GateState,
    RateLimitScheduler,
    Scheduler,
)
from bitget_keys import models as m
from bitget_keys._transport import RawResponse
from bitget_keys.errors import DispatchStoppedError, TransportError
from bitget_keys.testing import Emulator, EmulatorAccount, Limits, Unpaced
from bitget_keys.testing._clock import LoopClock

MASTER = EmulatorAccount(
    uid="1000000077", api_key="bg_gate", secret_key="gate-secret", passphrase="GatePass77"
)


class HeldTransport:
    """Passes requests to the emulator only when released; counts what it was given."""

    def __init__(self, emulator: Emulator) -> None:
        self.inner = emulator.transport()
        self.release = asyncio.Event()
        self.given: list[str] = []

    async def send(
        self,
        method: str,
        url: yarl.URL,
        headers: dict[str, str],
        body: bytes | None,
        *,
        endpoint: str,
    ) -> RawResponse:
        self.given.append(endpoint)
        await self.release.wait()
        return await self.inner.send(method, url, headers, body, endpoint=endpoint)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def emulator() -> Emulator:
    return Emulator([MASTER], limits=Limits(per_uid=False, ip_limit=None))


def key_request(label: str, uid: str = "1") -> m.CreateVirtualSubaccountAPIKeyRequest:
    return m.CreateVirtualSubaccountAPIKeyRequest(
        subaccount_uid=uid,
        passphrase="Passw0rd1234",
        label=label,
        permissions=["read"],
        ip_list=["203.0.113.7"],
    )


async def new_subaccount(emulator: Emulator) -> str:
    """A sub-account made by a client without a gate; its UID."""
    async with Client(
        MASTER.credentials, transport=emulator.transport(), config=ClientConfig(sync_clock=False)
    ) as client:
        await client.create_virtual_subaccounts(
            m.CreateVirtualSubaccountsRequest(names=["gatesubs"])
        )
        (sub,) = (await client.list_virtual_subaccounts()).subaccounts
        return sub.subaccount_uid


def gated_client(
    transport: HeldTransport, gate: DispatchGate, scheduler: Scheduler | None = None
) -> Client:
    return Client(
        MASTER.credentials,
        transport=transport,  # type: ignore[arg-type]
        scheduler=scheduler,
        config=ClientConfig(sync_clock=False),
        gate=gate,
    )


async def settle(clock: LoopClock) -> None:
    await clock.advance(0)


async def test_close_stops_waiting_changes_and_lets_the_one_on_the_wire_finish(
    clock: LoopClock, emulator: Emulator
) -> None:
    """
    Three creates on a 5/s lane with the first one held on the wire: close() stops the
    others at once (never sent), and the first gets its answer (its secret) afterwards.
    """
    transport = HeldTransport(emulator)
    gate = DispatchGate()
    scheduler = RateLimitScheduler()
    client = gated_client(transport, gate, scheduler=scheduler)
    uid = await new_subaccount(emulator)
    tasks = [
        asyncio.create_task(client.create_virtual_subaccount_api_key(key_request(f"key{i}", uid)))
        for i in range(3)
    ]
    # The first is on the wire; with the lane's 0.2 s spacing the others wait.
    await settle(clock)
    assert transport.given == ["/api/v2/user/create-virtual-subaccount-apikey"]
    assert gate.on_wire == ["POST /api/v2/user/create-virtual-subaccount-apikey"]
    gate.close("test stop")
    await settle(clock)
    for task in tasks[1:]:
        assert task.done()
        with pytest.raises(DispatchStoppedError, match="test stop"):
            task.result()
    assert not tasks[0].done()
    # Later slots come and go: nothing more is handed to the transport.
    await clock.advance(2.0)
    assert len(transport.given) == 1
    transport.release.set()
    await settle(clock)
    created = tasks[0].result()
    assert emulator.exchange.secret_of(created.api_key) == created.secret_key.reveal()
    assert gate.on_wire == []
    await client.aclose()


async def test_a_closed_gate_lets_reads_through_and_refuses_new_changes(
    clock: LoopClock, emulator: Emulator
) -> None:
    transport = HeldTransport(emulator)
    transport.release.set()
    gate = DispatchGate()
    client = gated_client(transport, gate)
    gate.close("closed for changes")
    assert gate.state is GateState.CLOSED
    read = asyncio.create_task(client.list_virtual_subaccounts())
    await clock.advance(1.0)
    assert read.result().subaccounts == ()
    with pytest.raises(DispatchStoppedError) as stopped:
        await client.create_virtual_subaccount_api_key(key_request("late"))
    assert "not sent" in str(stopped.value)
    assert "closed for changes" in str(stopped.value)
    assert transport.given == ["/api/v2/user/virtual-subaccount-list"]
    await client.aclose()


async def test_abort_abandons_the_wire_as_unknown_and_stops_waiting_reads(
    clock: LoopClock, emulator: Emulator
) -> None:
    transport = HeldTransport(emulator)
    gate = DispatchGate()
    client = gated_client(transport, gate)
    create = asyncio.create_task(client.create_virtual_subaccount_api_key(key_request("a")))
    await settle(clock)
    assert len(gate.on_wire) == 1
    gate.abort("operator gave up")
    await settle(clock)
    with pytest.raises(TransportError) as abandoned:
        create.result()
    assert abandoned.value.maybe_sent
    assert "operator gave up" in str(abandoned.value)
    with pytest.raises(DispatchStoppedError):
        await client.list_virtual_subaccounts()
    await client.aclose()


async def test_a_cancellation_that_is_not_the_gates_stays_a_cancellation(
    clock: LoopClock, emulator: Emulator
) -> None:
    """The gate converts only its own stops; a caller's cancel is not swallowed."""
    transport = HeldTransport(emulator)
    gate = DispatchGate()
    client = gated_client(transport, gate)
    create = asyncio.create_task(client.create_virtual_subaccount_api_key(key_request("a")))
    await settle(clock)
    create.cancel()
    await settle(clock)
    assert create.cancelled()
    assert gate.on_wire == []
    await client.aclose()


async def test_drain_waits_for_the_answers_on_the_wire(
    clock: LoopClock, emulator: Emulator
) -> None:
    transport = HeldTransport(emulator)
    gate = DispatchGate()
    client = gated_client(transport, gate, scheduler=Unpaced())
    uid = await new_subaccount(emulator)
    create = asyncio.create_task(client.create_virtual_subaccount_api_key(key_request("a", uid)))
    await settle(clock)
    gate.close("stopping")
    drained = asyncio.create_task(gate.drain())
    await clock.advance(5.0)
    assert not drained.done()
    transport.release.set()
    await settle(clock)
    assert drained.done()
    assert create.result().label == "a"
    assert gate.on_wire == []
    await client.aclose()
