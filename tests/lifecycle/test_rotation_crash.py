"""
`bitget-keys rotate` killed with SIGKILL at every step of a rotation, then run again.

The emulator serves on 127.0.0.1 from the test's event loop (so it outlives every
killed process), with its real per-UID limits. After one apply made the keys, each
trial rotates one key of its own sub-account: a ``rotate --json`` process is killed
right after its N-th step line (for every N), or from inside the emulator at the worst
moments (a create or a revoke carried out, its answer about to leave); the same command
is then run again to its end. Each time exactly one new key exists and works, its
secret is in the vault as current, the old key is revoked after the grace (unified:
deleted; classic: neutralised), and every other key a lost answer made is revoked.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from bitget_keys import _endpoints as ep
from bitget_keys.lifecycle.rotation_journal import Step
from bitget_keys.provision.vault_records import Stage
from bitget_keys.testing import Emulator, EmulatorAccount
from bitget_keys.testing._state import Answer
from tests.lifecycle.rotation_harness import (
    Folder,
    Mode,
    Process,
    apply,
    live_keys,
    rotate_argv,
    scenario,
)

#: The step lines of one rotation that waits out its grace, in order.
STEPS = (
    "passphrase stored",
    "creating",
    "created",
    "verified",
    "promoted",
    "waiting",
    "revoking",
    "revoked",
)
CREATES = {ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY.name, ep.CREATE_UTA_SUBACCOUNT_API_KEY.name}
REVOKES = {ep.MODIFY_VIRTUAL_SUBACCOUNT_API_KEY.name, ep.DELETE_UTA_SUBACCOUNT_API_KEY.name}
#: A kill after the N-th step line, or from the emulator once one of these took effect.
Kill = int | frozenset[str]
KILLS: tuple[Kill, ...] = (
    *range(1, len(STEPS)),
    frozenset(CREATES),
    frozenset(REVOKES),
)


class KillingEmulator(Emulator):
    """Kills a process once a request of the named endpoints took effect, before its answer."""

    def __init__(self, accounts: list[EmulatorAccount]) -> None:
        super().__init__(accounts, seed=17)
        self.victim: int | None = None
        self.endpoints: frozenset[str] = frozenset()

    async def process(self, **request: Any) -> tuple[Answer | None, bool]:
        answer, took_effect = await super().process(**request)
        endpoint = next((e for e in ep.ENDPOINTS.values() if e.path == request["path"]), None)
        if self.victim is not None and took_effect and endpoint and endpoint.name in self.endpoints:
            os.kill(self.victim, signal.SIGKILL)
            self.victim = None
            # Long enough for the kill to land before this answer is written.
            await asyncio.sleep(0.1)
        return answer, took_effect


def check_rotated(
    emulator: Emulator, folder: Folder, master: EmulatorAccount, sub: str, mode: Mode
) -> None:
    """Exactly one new key, working and held as current; the old one and orphans revoked."""
    (rotation,) = [r for r in folder.rotations() if r.target == f"{sub}/k0"]
    assert rotation.step is Step.DONE, rotation
    records = folder.records()
    live = live_keys(emulator, master.uid, sub)
    usable = [key for key in live if key.usable]
    assert [key.api_key for key in usable] == [rotation.new_api_key], (live, rotation)
    new = usable[0]
    assert new.api_key != rotation.old_api_key
    assert records[new.api_key].stage is Stage.CURRENT
    assert records[new.api_key].secret().reveal() == new.secret
    assert new.permissions
    assert new.ip_list == ("203.0.113.7",)
    old = records[rotation.old_api_key]
    assert old.stage is Stage.REVOKED
    if mode == "unified":
        # Deleted keys are gone; a lost answer's key was deleted too.
        assert [key.api_key for key in live] == [new.api_key]
        assert old.revoked_how == "deleted"
    else:
        assert old.revoked_how == "neutralised"
        assert rotation.old_api_key in {key.api_key for key in live}
        assert {key.api_key for key in live} == {
            new.api_key,
            rotation.old_api_key,
            *rotation.orphans,
        }
    for orphan in rotation.orphans:
        assert records[orphan].stage is Stage.REVOKED
        assert not records[orphan].held


@pytest.mark.parametrize("mode", ["classic", "unified"])
async def test_rotation_killed_at_every_step_then_resumed(tmp_path: Path, mode: Mode) -> None:
    accounts, env, folder = scenario(tmp_path, mode, len(KILLS), 1)
    async with KillingEmulator(accounts) as emulator:
        url = emulator.base_url
        await apply(url, folder, env)
        for trial, kill in enumerate(KILLS):
            argv = rotate_argv(url, folder, f"desk0/s{trial}/k0", options=("--grace", "1s"))
            first = await Process.start(argv, env)
            if isinstance(kill, int):
                await first.read_rows(kill)
                assert [row["step"] for row in first.rows] == list(STEPS[:kill]), first.rows
                status = await first.kill()
            else:
                emulator.victim, emulator.endpoints = first.process.pid, kill
                status = await first.finish()
            assert status == -signal.SIGKILL, (trial, first.stderr)
            again = await Process.start(argv, env)
            code = await again.finish()
            assert code == 0, (trial, again.stderr)
            check_rotated(emulator, folder, accounts[0], f"s{trial}", mode)
            if kill == frozenset(CREATES):
                # The key made by the create whose answer never came was found and revoked.
                (rotation,) = [r for r in folder.rotations() if r.target == f"s{trial}/k0"]
                assert len(rotation.orphans) == 1, rotation
            # Nothing secret on any output.
            output = again.stderr + str(again.rows) + first.stderr + str(first.rows)
            for key in live_keys(emulator, accounts[0].uid, f"s{trial}"):
                assert key.secret not in output
        assert emulator.audit.violations() == {}
