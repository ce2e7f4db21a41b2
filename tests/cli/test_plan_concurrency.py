"""``plan`` reads every master at once, one read of live state each, and prints in plan order."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Mapping

import pytest
import yarl

from bitget_keys import Client, ClientConfig
from bitget_keys._transport import RawResponse
from bitget_keys.cli.exits import AccountError
from bitget_keys.cli.plan import review_plan, show_changes
from bitget_keys.errors import APIError
from bitget_keys.provision.plan import AccountSpec, KeySpec, Plan, SubaccountSpec
from bitget_keys.testing import Emulator, EmulatorAccount, EmulatorTransport, Limits, Unpaced

MASTERS = [
    EmulatorAccount(
        uid=f"100000000{index}",
        api_key=f"bg_concurrent_{index}",
        secret_key=f"concurrent-secret-{index}",
        passphrase=f"Concurrent{index}",
    )
    for index in range(1, 5)
]


class Gathered:
    """
    Holds every sub-account list read until one has come from each master: reads made
    one master after another never get there (the test's timeout says so).
    """

    def __init__(self, transport: EmulatorTransport, masters: int) -> None:
        self.transport = transport
        self.barrier = asyncio.Barrier(masters)
        self.paths: Counter[str] = Counter()
        self.finished: list[str] = []

    async def send(
        self,
        method: str,
        url: yarl.URL,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        endpoint: str,
    ) -> RawResponse:
        self.paths[url.path] += 1
        if url.path.endswith("virtual-subaccount-list"):
            await self.barrier.wait()
        return await self.transport.send(method, url, headers, body, endpoint=endpoint)

    async def aclose(self) -> None:
        """Nothing to close."""


def plan_of(masters: list[EmulatorAccount]) -> Plan:
    key = KeySpec(label="trade", permissions=(), ip_list=("203.0.113.7",))
    return Plan(
        accounts=tuple(
            AccountSpec(
                name=f"desk-{index}",
                credentials=master.credentials,
                subaccounts=(
                    SubaccountSpec(name=f"bot{'abcd'[index]}bots", label=f"s{index}", keys=(key,)),
                ),
            )
            for index, master in enumerate(masters)
        )
    )


@pytest.fixture
async def clients() -> AsyncIterator[tuple[Gathered, dict[str, Client]]]:
    emulator = Emulator(MASTERS, limits=Limits(per_uid=False))
    gathered = Gathered(emulator.transport(), len(MASTERS))
    config = ClientConfig(sync_clock=False)
    made = {
        master.uid: Client(
            master.credentials, transport=gathered, scheduler=Unpaced(), config=config
        )
        for master in MASTERS
    }
    yield gathered, made
    for client in made.values():
        await client.aclose()


async def test_plan_reads_every_master_at_once_and_prints_in_plan_order(
    clients: tuple[Gathered, dict[str, Client]], capsys: pytest.CaptureFixture[str]
) -> None:
    gathered, made = clients
    plan = plan_of(MASTERS)

    def client_for(account: AccountSpec) -> Client:
        return made[account.credentials.uid or ""]

    async with asyncio.timeout(10):
        assert await show_changes(plan, client_for, vaulted_copy_keys=())
    # One sub-account list read per master: the read of live state happens once.
    assert gathered.paths["/api/v2/user/virtual-subaccount-list"] == len(MASTERS)
    heads = [line for line in capsys.readouterr().out.splitlines() if line.startswith("desk-")]
    assert heads == [f"desk-{index}:" for index in range(len(MASTERS))]


async def test_review_of_a_master_that_cannot_be_read_names_it(
    clients: tuple[Gathered, dict[str, Client]], capsys: pytest.CaptureFixture[str]
) -> None:
    """The account whose credentials Bitget refuses is named; the others are still read."""
    gathered, made = clients
    wrong = EmulatorAccount(
        uid=MASTERS[1].uid, api_key=MASTERS[1].api_key, secret_key="wrong", passphrase="Wrong1234"
    )
    plan = plan_of([MASTERS[0], wrong, MASTERS[2], MASTERS[3]])
    config = ClientConfig(sync_clock=False)
    async with Client(
        wrong.credentials, transport=gathered.transport, scheduler=Unpaced(), config=config
    ) as refused:

        def client_for(account: AccountSpec) -> Client:
            return refused if account.name == "desk-1" else made[account.credentials.uid or ""]

        gathered.barrier = asyncio.Barrier(3)
        async with asyncio.timeout(10):
            with pytest.raises(AccountError, match=r"^desk-1: .*code 400(09|12)") as raised:
                await review_plan(plan, client_for)
    assert isinstance(raised.value.error, APIError)
    assert "desk-1: its mode could not be told: " in capsys.readouterr().err
