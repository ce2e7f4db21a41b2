"""
`bitget-keys rotate` of 200 keys across 10 masters against an exchange that loses
answers and fails requests.

The keys are made by one apply on a sound exchange; then 10% of requests (every
endpoint, the new keys' own signed checks included) are carried out and their
connection cut, and 5% get a 503 without effect, from one seeded generator. rotate
runs once with every key named, then ``rotate --finish`` until no rotation is left.
What is checked is the exchange's state and the vault, not rotate's report alone.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bitget_keys.cli import main
from bitget_keys.lifecycle.rotation_journal import Step
from bitget_keys.provision.vault_records import Stage
from bitget_keys.testing import Emulator, Faults
from tests.lifecycle.rotation_harness import (
    Folder,
    Mode,
    environment,
    live_keys,
    masters,
    plan_toml,
)

SUBACCOUNTS = 10
KEYS = 2
CREATES = {
    "classic": "create_virtual_subaccount_api_key",
    "unified": "create_uta_subaccount_api_key",
}
REVOKES = {
    "classic": "modify_virtual_subaccount_api_key",
    "unified": "delete_uta_subaccount_api_key",
}


async def cli(
    argv: list[str], capfd: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, Any]], str]:
    """Run the command line in a thread (it runs its own event loop, beside the emulator's)."""
    code = await asyncio.to_thread(main, argv)
    out, err = capfd.readouterr()
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return code, rows, out + err


@pytest.mark.parametrize("mode", ["classic", "unified"])
async def test_rotation_under_faults_leaves_one_held_key_each_and_every_old_key_revoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], mode: Mode
) -> None:
    accounts = masters(mode, 10, base=6_600_000_000)
    for name, value in environment(accounts).items():
        monkeypatch.setenv(name, value)
    folder = Folder(tmp_path)
    folder.plan.write_text(plan_toml(accounts, SUBACCOUNTS, KEYS))
    common = [*folder.common(""), "--json", "--yes"]
    async with Emulator(accounts, seed=5) as emulator:
        common[1] = emulator.base_url
        code, _, output = await cli(["apply", str(folder.plan), *common, "--create-vault"], capfd)
        assert code == 0, output
        subs = [(a.uid, f"s{s}") for a in accounts for s in range(SUBACCOUNTS)]
        before = {key.api_key for uid, sub in subs for key in live_keys(emulator, uid, sub)}
        assert len(before) == 200

        emulator.faults = Faults(drop_after_commit=0.10, server_error=0.05, seed=20261204)
        code, rows, output = await cli(
            ["rotate", str(folder.plan), "*/*/*", *common, "--grace", "0s"], capfd
        )
        runs, outputs = [rows], [output]
        # Every rotation this run did not finish was reported as such, with its reason.
        unfinished = {(r.account, r.target) for r in folder.rotations() if r.step is not Step.DONE}
        reported = {
            (row["account"], row["target"]) for row in rows if row["outcome"] not in (None, "done")
        }
        assert unfinished <= reported, unfinished - reported
        for _ in range(5):
            if not unfinished:
                break
            code, rows, output = await cli(["rotate", str(folder.plan), *common, "--finish"], capfd)
            runs.append(rows)
            outputs.append(output)
            unfinished = {
                (r.account, r.target) for r in folder.rotations() if r.step is not Step.DONE
            }
        assert not unfinished, f"left after {len(runs)} runs: {sorted(unfinished)}"
        assert code == 0, outputs[-1]

        # Faults really hit the creates, the revokes and the new keys' checks.
        dropped = Counter(answer.endpoint for answer in emulator.dropped)
        assert dropped[CREATES[mode]], dropped
        assert dropped[REVOKES[mode]], dropped
        assert CREATES[mode] in emulator.server_errors

        check_exchange(emulator, folder, mode, before)
        secrets = [k.secret for uid, sub in subs for k in live_keys(emulator, uid, sub)]
        for output in outputs:
            assert not [secret for secret in secrets if secret in output]
        assert emulator.audit.violations() == {}


def check_exchange(emulator: Emulator, folder: Folder, mode: Mode, before: set[str]) -> None:
    """
    What the exchange and the vault hold once every rotation is done: one working key
    per planned key, each a rotation's new key with its secret in the vault as
    current; every old key and every key of a lost create answer revoked.
    """
    subs = [(a.uid, f"s{s}") for a in emulator.accounts for s in range(SUBACCOUNTS)]
    rotations = folder.rotations()
    assert len(rotations) == 200
    assert len({(r.account, r.target) for r in rotations}) == 200, "a key rotated twice"
    records = folder.records()
    lost = {api_key for answer in emulator.dropped for api_key in answer.api_keys}
    orphans = {o for r in rotations for o in r.orphans}
    for uid, sub in subs:
        live = live_keys(emulator, uid, sub)
        usable = [key for key in live if key.usable]
        # No duplicate: one working key per planned key, each one a rotation's new key.
        assert len(usable) == KEYS, (sub, live)
        for key in usable:
            # No lost secret: every key that works has its secret in the vault.
            record = records[key.api_key]
            assert record.secret().reveal() == key.secret
            assert record.stage is Stage.CURRENT
            assert key.api_key not in before
        # Every old key and every key of a lost answer is revoked; nothing else is.
        working = {key.api_key for key in usable}
        assert not working & (before | lost)
        revoked = {key.api_key for key in live} - working
        assert revoked <= before | orphans, [
            (key, key.api_key in lost, records.get(key.api_key)) for key in live
        ]
        if mode == "unified":
            assert len(live) == KEYS
    for rotation in rotations:
        assert records[rotation.old_api_key].stage is Stage.REVOKED
        assert records[rotation.new_api_key or ""].stage is Stage.CURRENT
    # The orphans a lost create answer left were found and revoked, never kept.
    assert orphans <= lost
    assert orphans, "no create answer was lost: the faults missed what this test is for"
