"""
The narrowest windows of a rotation, hit deterministically in process: the new key's
secret is in the vault but the journal does not say it was created yet (a crash between
the two writes), and creates that never get an answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bitget_keys.lifecycle.rotation import MAX_CREATES
from bitget_keys.lifecycle.rotation_journal import Rotation, RotationJournal, Step
from bitget_keys.provision.plan import loads_plan
from bitget_keys.provision.vault_records import Stage
from bitget_keys.testing import Emulator, EmulatorAccount, Faults, Limits
from tests.lifecycle.in_process import InProcess
from tests.lifecycle.rotation_harness import Mode, environment, live_keys, masters, plan_toml

CREATES = {"create_virtual_subaccount_api_key", "create_uta_subaccount_api_key"}


class Crash(BaseException):
    """The process dying: nothing after it runs (it is no `Exception`)."""


def creates(emulator: Emulator) -> int:
    return sum(
        len(lane.accepted) for (_, name), lane in emulator.audit.lanes.items() if name in CREATES
    )


async def crashed_at(
    crash: Step, folder: Path, monkeypatch: pytest.MonkeyPatch, mode: Mode, base: int
) -> tuple[InProcess, list[EmulatorAccount], int]:
    """One key applied, then its rotation crashed where the journal reaches ``crash``."""
    accounts = masters(mode, 1, base=base * 1_000_000)
    emulator = Emulator(accounts, limits=Limits(ip_limit=None))
    plan = loads_plan(plan_toml(accounts, 1, 1), environ=environment(accounts))
    run = InProcess(emulator, plan, folder)
    await run.apply()
    made = creates(emulator)
    advance = RotationJournal.advance

    def crashing(self: RotationJournal, rotation: Rotation, step: Step, **kw: Any) -> Rotation:
        if step is crash:
            raise Crash
        return advance(self, rotation, step, **kw)

    monkeypatch.setattr(RotationJournal, "advance", crashing)
    with pytest.raises(BaseExceptionGroup) as crashed:
        await run.rotate("desk0/s0/k0")
    assert crashed.group_contains(Crash)
    monkeypatch.setattr(RotationJournal, "advance", advance)
    return run, accounts, made


@pytest.mark.parametrize("mode", ["classic", "unified"])
async def test_a_crash_between_the_vault_and_the_journal_keeps_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: Mode
) -> None:
    run, accounts, made = await crashed_at(Step.CREATED, tmp_path, monkeypatch, mode, 7_100)
    emulator = run.emulator
    (rotation,) = run.rotations()
    assert rotation.step is Step.CREATE_SENT
    assert creates(emulator) == made + 1
    pending = [r for r in run.vault.records() if r.stage is Stage.PENDING and r.held]
    assert len(pending) == 1

    outcomes = await run.rotate("desk0/s0/k0")
    assert [event.outcome for event in outcomes] == ["done"]
    # The key the crashed run made, found in the vault: no second create, no orphan.
    assert creates(emulator) == made + 1
    (rotation,) = run.rotations()
    assert rotation.new_api_key == pending[0].api_key
    assert rotation.orphans == ()
    usable = [key for key in live_keys(emulator, accounts[0].uid, "s0") if key.usable]
    assert [key.api_key for key in usable] == [rotation.new_api_key]
    await run.aclose()


async def test_creates_that_never_answer_stop_the_rotation_until_the_next_run(
    tmp_path: Path,
) -> None:
    """
    While every create fails on Bitget's side (503), each is settled through the key list
    and tried again, at most `MAX_CREATES` times in one run; the rotation waits, journaled,
    and the next run completes it with one new key.
    """
    accounts = masters("unified", 1, base=7_200_000_000)
    emulator = Emulator(accounts, limits=Limits(ip_limit=None))
    plan = loads_plan(plan_toml(accounts, 1, 1), environ=environment(accounts))
    run = InProcess(emulator, plan, tmp_path)
    await run.apply()
    emulator.faults = Faults(server_error=1.0, endpoints=frozenset(CREATES))
    outcomes = await run.rotate("desk0/s0/k0")
    assert [event.outcome for event in outcomes] == ["failed"]
    assert len(emulator.server_errors) == MAX_CREATES
    (rotation,) = run.rotations()
    assert rotation.step is Step.PASSPHRASE_STORED
    emulator.faults = Faults()
    outcomes = await run.rotate("desk0/s0/k0")
    assert [event.outcome for event in outcomes] == ["done"]
    usable = [key for key in live_keys(emulator, accounts[0].uid, "s0") if key.usable]
    assert [key.api_key for key in usable] == [run.rotations()[0].new_api_key]
    await run.aclose()


@pytest.mark.parametrize("mode", ["classic", "unified"])
async def test_a_new_key_whose_vault_record_was_lost_is_revoked_and_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: Mode
) -> None:
    """Journaled as created, but the vault's last line (its secret) is gone: a stray."""
    run, accounts, made = await crashed_at(Step.VERIFIED, tmp_path, monkeypatch, mode, 7_200)
    emulator = run.emulator
    (rotation,) = run.rotations()
    lost = rotation.new_api_key
    assert rotation.step is Step.CREATED
    assert lost is not None
    vault_file = tmp_path / "keys.vault"
    lines = vault_file.read_bytes().splitlines(keepends=True)
    vault_file.write_bytes(b"".join(lines[:-1]))  # the pending key's record, lost
    assert lost not in {r.api_key for r in run.vault.records()}

    outcomes = await run.rotate("desk0/s0/k0")
    assert [event.outcome for event in outcomes] == ["done"]
    assert creates(emulator) == made + 2
    (rotation,) = run.rotations()
    assert rotation.orphans == (lost,)
    usable = [key for key in live_keys(emulator, accounts[0].uid, "s0") if key.usable]
    assert [key.api_key for key in usable] == [rotation.new_api_key]
    held = {r.api_key: r for r in run.vault.records()}
    assert rotation.new_api_key is not None
    assert held[rotation.new_api_key].stage is Stage.CURRENT
    assert held[lost].stage is Stage.REVOKED
    await run.aclose()
