"""
Rotation in process, on the loop's fake clock: a new key is verified only once Bitget
knows it (the emulator's ``key_propagation_ms``), and nothing is promoted before.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from bitget_keys import Client, ClientConfig, Credentials, RateLimitScheduler
from bitget_keys._gate import DispatchGate
from bitget_keys.lifecycle.rotation import RotationEvent, RotationSettings
from bitget_keys.lifecycle.rotation_journal import RotationJournal, Step
from bitget_keys.lifecycle.rotation_run import (
    Selector,
    held_records,
    master_contexts,
    run_rotations,
    survey,
)
from bitget_keys.provision.apply import apply_plan
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.ledger import Ledger
from bitget_keys.provision.plan import loads_plan
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, Limits, LoopClock
from tests.lifecycle.rotation_harness import VAULT_KEY, Mode, environment, masters, plan_toml

#: The exchange's wall clock at the loop's zero.
WALL = 1_800_000_000_000
PROPAGATION_MS = 5_000


@pytest.mark.parametrize("mode", ["classic", "unified"])
async def test_verification_waits_until_the_new_keys_have_propagated(
    tmp_path: Path, clock: LoopClock, mode: Mode
) -> None:
    accounts = masters(mode, 1, base=6_700_000_000)
    loop = asyncio.get_running_loop()

    def wall() -> int:
        return WALL + int(loop.time() * 1000)

    limits = Limits(ip_limit=None, key_propagation_ms=PROPAGATION_MS)
    emulator = Emulator(accounts, limits=limits, wall_clock=wall)
    plan = loads_plan(plan_toml(accounts, 1, 2), environ=environment(accounts))
    scheduler = RateLimitScheduler(ip_budget=None)
    gate = DispatchGate()
    made: list[Client] = []

    def client(credentials: Credentials) -> Client:
        made.append(
            Client(
                credentials,
                # From the address the plan's whitelist names, so the new keys answer.
                transport=emulator.transport(client_ip="203.0.113.7"),
                scheduler=scheduler,
                config=ClientConfig(sync_clock=False),
                clock_ms=wall,
                gate=gate,
            )
        )
        return made[-1]

    masters_clients = {account.name: client(account.credentials) for account in plan.accounts}
    vault = SecretsVault.open(tmp_path / "keys.vault", VAULT_KEY)
    events: list[RotationEvent] = []
    with (
        Journal(tmp_path / "keys.state") as journal,
        contextlib.closing(RotationJournal(tmp_path / "keys.state")) as rotations,
    ):
        made_keys = asyncio.create_task(
            apply_plan(
                plan, clients=lambda a: masters_clients[a.name], vault=vault, journal=journal
            )
        )
        await clock.advance(30.0)
        assert made_keys.done()
        context = master_contexts(
            ledger=Ledger(vault, journal),
            journal=rotations,
            settings=RotationSettings(grace=0.0),
            key_client=lambda _, credentials: client(credentials),
            on_event=events.append,
            audit=None,
            gate=gate,
            records=held_records(vault.records()),
        )

        async def rotate() -> list[RotationEvent]:
            found = await survey(
                plan,
                context,
                lambda a: masters_clients[a.name],
                selectors=[Selector("*", "*", "*")],
                due=False,
                finish=False,
                journal_unfinished=rotations.unfinished,
            )
            return await run_rotations(found)

        started = loop.time()
        rotating = asyncio.create_task(rotate())
        await clock.advance(60.0)
        assert rotating.done()
        assert {event.outcome for event in rotating.result()} == {"done"}
        assert {r.step for r in rotations.rotations()} == {Step.DONE}
    for each in made:
        await each.aclose()
    # Each key was verified only after Bitget knew it, and asked before (40006).
    info = "account_info_v3" if mode == "unified" else "account_info"
    creates = (
        "create_uta_subaccount_api_key"
        if mode == "unified"
        else "create_virtual_subaccount_api_key"
    )
    created = sorted(
        at
        for (_, name), lane in emulator.audit.lanes.items()
        if name == creates
        for at in lane.accepted
        if at >= started * 1000
    )
    answered = sorted(
        at
        for (_, name), lane in emulator.audit.lanes.items()
        if name == info
        for at in lane.accepted
    )
    unknown = sum(lane.rejected for (_, name), lane in emulator.audit.lanes.items() if name == info)
    assert len(created) == len(answered) == 2
    assert unknown >= 2
    assert all(a - c >= PROPAGATION_MS for c, a in zip(created, answered, strict=True))
    promoted = [e for e in events if e.step == "promoted"]
    assert len(promoted) == 2
    assert loop.time() - started >= PROPAGATION_MS / 1000
