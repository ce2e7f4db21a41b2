"""
Rotation in process, on the loop's fake clock: a new key is verified only once Bitget
knows it (the emulator's ``key_propagation_ms``), and nothing is promoted before.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bitget_keys.lifecycle.rotation_journal import Step
from bitget_keys.provision.plan import loads_plan
from bitget_keys.testing import Emulator, Limits, LoopClock
from tests.lifecycle.in_process import InProcess
from tests.lifecycle.rotation_harness import Mode, environment, masters, plan_toml

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
    run = InProcess(emulator, plan, tmp_path, wall=wall)
    made_keys = asyncio.create_task(run.apply())
    await clock.advance(30.0)
    assert made_keys.done()
    started = loop.time()
    rotating = asyncio.create_task(run.rotate("*/*/*"))
    await clock.advance(60.0)
    assert rotating.done()
    assert {event.outcome for event in rotating.result()} == {"done"}
    assert {r.step for r in run.rotations()} == {Step.DONE}
    await run.aclose()
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
    promoted = [e for e in run.events if e.step == "promoted"]
    assert len(promoted) == 2
    assert loop.time() - started >= PROPAGATION_MS / 1000
