"""
`bitget-keys rotate` over loopback, both modes: the 10-key refusal that sends nothing,
what it asks before it starts, --no-wait then --finish, and --due.
"""

from __future__ import annotations

import json
import signal
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from bitget_keys.lifecycle.rotation_journal import Step
from bitget_keys.provision.audit_log import audit_log_path, verify_audit_log
from bitget_keys.provision.vault_records import Stage
from bitget_keys.testing import Emulator
from tests.lifecycle.rotation_harness import (
    Mode,
    Process,
    apply,
    live_keys,
    plan_toml,
    rotate_argv,
    scenario,
)

CHANGES = frozenset(
    {
        "create_virtual_subaccount_api_key",
        "modify_virtual_subaccount_api_key",
        "create_uta_subaccount_api_key",
        "delete_uta_subaccount_api_key",
        "update_uta_subaccount_api_key",
    }
)


def changes_sent(emulator: Emulator) -> int:
    """Requests that create, change or revoke keys, as the exchange saw them arrive."""
    return sum(
        len(lane.accepted) + lane.throttled + lane.rejected
        for (_, name), lane in emulator.audit.lanes.items()
        if name in CHANGES
    )


@pytest.mark.parametrize("mode", ["classic", "unified"])
async def test_a_sub_account_with_ten_keys_is_refused_before_anything_is_sent(
    tmp_path: Path, mode: Mode
) -> None:
    accounts, env, folder = scenario(tmp_path, mode, 1, 10, base=6_200_000_000)
    async with Emulator(accounts) as emulator:
        await apply(emulator.base_url, folder, env)
        before = changes_sent(emulator)
        run = await Process.start(rotate_argv(emulator.base_url, folder, "desk0/s0/k3"), env)
        code = await run.finish()
        assert code == 1, run.stderr
        assert changes_sent(emulator) == before
        (row,) = run.rows
        assert row["outcome"] == "refused"
        assert "holds 10 keys" in row["detail"]
        assert "nothing was sent" in row["detail"]
        assert folder.rotations() == []
        assert len(live_keys(emulator, accounts[0].uid, "s0")) == 10


async def test_neutralised_classic_keys_still_count_towards_the_ten(tmp_path: Path) -> None:
    """Nine keys, one rotated (its old key neutralised, still listed): the next is refused."""
    accounts, env, folder = scenario(tmp_path, "classic", 1, 9, base=6_300_000_000)
    async with Emulator(accounts) as emulator:
        url = emulator.base_url
        await apply(url, folder, env)
        first = await Process.start(
            rotate_argv(url, folder, "desk0/s0/k4", options=("--grace", "0s")), env
        )
        assert await first.finish() == 0, first.stderr
        assert len(live_keys(emulator, accounts[0].uid, "s0")) == 10
        before = changes_sent(emulator)
        second = await Process.start(rotate_argv(url, folder, "desk0/s0/k5"), env)
        assert await second.finish() == 1, second.stderr
        assert changes_sent(emulator) == before
        (row,) = second.rows
        assert "1 of them neutralised classic keys, which still occupy a slot" in row["detail"]


@pytest.mark.parametrize("mode", ["classic", "unified"])
async def test_no_wait_leaves_the_old_keys_to_finish(tmp_path: Path, mode: Mode) -> None:
    """--no-wait promotes and stops; --finish leaves keys in their grace, revokes the rest."""
    accounts, env, folder = scenario(tmp_path, mode, 2, 2, base=6_400_000_000)
    async with Emulator(accounts) as emulator:
        url = emulator.base_url
        await apply(url, folder, env)
        old = {
            key.api_key for sub in ("s0", "s1") for key in live_keys(emulator, accounts[0].uid, sub)
        }
        run = await Process.start(
            rotate_argv(url, folder, "desk0/*/*", options=("--grace", "1h", "--no-wait")), env
        )
        assert await run.finish() == 0, run.stderr
        outcomes = [row["outcome"] for row in run.rows if row["outcome"]]
        assert outcomes == ["waiting"] * 4
        rotations = folder.rotations()
        assert {r.step for r in rotations} == {Step.PROMOTED}
        records = folder.records()
        assert {records[r.old_api_key].stage for r in rotations} == {Stage.PREVIOUS}
        assert {records[r.new_api_key or ""].stage for r in rotations} == {Stage.CURRENT}
        # Stored under the plan's names, as apply stores keys (a classic first key's
        # live label is its sub-account's), so `vault show SUB/KEY` finds the new key.
        assert {records[r.new_api_key or ""].plan_label for r in rotations} == {
            r.target for r in rotations
        }
        # Every old key still works during the grace.
        still = {
            key.api_key
            for sub in ("s0", "s1")
            for key in live_keys(emulator, accounts[0].uid, sub)
            if key.usable
        }
        assert old <= still
        # --finish (cron) revokes what is due and never waits out a grace.
        finish = rotate_argv(url, folder, options=("--finish",))
        early = await Process.start(finish, env)
        assert await early.finish() == 0, early.stderr
        assert {r.step for r in folder.rotations()} == {Step.PROMOTED}
        # An hour later (the journal's deadlines moved back, as time would move them).
        with sqlite3.connect(folder.state) as db:
            db.execute("UPDATE rotations SET grace_until = grace_until - 3600")
        late = await Process.start(rotate_argv(url, folder, options=("--finish",)), env)
        assert await late.finish() == 0, late.stderr
        assert {r.step for r in folder.rotations()} == {Step.DONE}
        left = {
            key.api_key
            for sub in ("s0", "s1")
            for key in live_keys(emulator, accounts[0].uid, sub)
            if key.usable
        }
        assert left.isdisjoint(old)
        assert len(left) == 4
        # Each step of each rotation is in the audit log, chained, and no secret is.
        log = audit_log_path(folder.state)
        assert verify_audit_log(log).ok
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        steps = Counter((e["operation"], e["outcome"]) for e in entries)
        assert steps == {
            (operation, "ok"): 4
            for operation in ("rotate.create", "rotate.verify", "rotate.promote", "rotate.revoke")
        }
        text = log.read_text()
        for sub in ("s0", "s1"):
            for key in live_keys(emulator, accounts[0].uid, sub):
                assert key.secret not in text
        # apply finds the plan as it is: every key there, its secret held, nothing made.
        again = await Process.start(
            ["apply", str(folder.plan), "--json", "--yes", *folder.common(url)], env
        )
        assert await again.finish() == 0, again.stderr
        assert {row["status"] for row in again.rows} == {"unchanged"}
        assert len(live_keys(emulator, accounts[0].uid, "s0")) == (2 if mode == "unified" else 4)


async def test_a_run_waits_only_for_the_rotations_it_was_asked_for(tmp_path: Path) -> None:
    """An earlier rotation still in its grace is left waiting; the one asked for is done."""
    accounts, env, folder = scenario(tmp_path, "unified", 1, 2, base=6_450_000_000)
    async with Emulator(accounts) as emulator:
        url = emulator.base_url
        await apply(url, folder, env)
        first = await Process.start(
            rotate_argv(url, folder, "desk0/s0/k0", options=("--grace", "1h", "--no-wait")), env
        )
        assert await first.finish() == 0, first.stderr
        # Without --no-wait, but asked only for the other key: it must not wait an hour
        # for the first rotation's grace (finish() gives up after 60 s).
        second = await Process.start(
            rotate_argv(url, folder, "desk0/s0/k1", options=("--grace", "0s")), env
        )
        assert await second.finish() == 0, second.stderr
        steps = {r.target: r.step for r in folder.rotations()}
        assert steps == {"s0/k0": Step.PROMOTED, "s0/k1": Step.DONE}


async def test_rotate_asks_unless_yes_and_refuses_without_a_terminal(tmp_path: Path) -> None:
    _, env, folder = scenario(tmp_path, "classic", 1, 1, base=6_500_000_000)
    argv = ["rotate", str(folder.plan), "desk0/*/*", *folder.common("http://127.0.0.1:9")]
    run = await Process.start(argv, env)
    assert await run.finish() == 64
    assert "--yes" in run.stderr
    nothing = await Process.start(
        ["rotate", str(folder.plan), "--yes", *folder.common("http://127.0.0.1:9")], env
    )
    assert await nothing.finish() == 64
    assert "--due" in nothing.stderr


async def test_an_old_classic_key_without_its_passphrase_is_left_to_the_web_ui(
    tmp_path: Path,
) -> None:
    """
    A key made by hand (its passphrase not held) is replaced, but only the web UI can
    revoke it: rotate says so, every later run lists it, and once it is seen stripped
    of its rights the rotation is done.
    """
    accounts, env, folder = scenario(tmp_path, "classic", 1, 1, base=6_800_000_000)
    async with Emulator(accounts) as emulator:
        url = emulator.base_url
        await apply(url, folder, env)
        (sub,) = emulator.exchange.subaccounts(accounts[0].uid)
        by_hand = emulator.exchange.add_key(
            accounts[0].uid,
            sub["uid"],
            label="k1",
            permissions=["spot_trade", "read"],
            ip_list=["203.0.113.7"],
            passphrase="MadeByHand1234",
        )["api_key"]
        folder.plan.write_text(plan_toml(accounts, 1, 2))
        argv = rotate_argv(url, folder, "desk0/s0/k1", options=("--grace", "0s"))
        first = await Process.start(argv, env)
        assert await first.finish() == 1, first.stderr
        assert first.rows[-1]["outcome"] == "manual"
        assert "web UI" in first.rows[-1]["detail"]
        assert folder.records()[by_hand].stage is Stage.PREVIOUS
        assert not folder.records()[by_hand].held
        # A later run for another key lists it first, and it is still to be done.
        other = rotate_argv(url, folder, "desk0/s0/k0", options=("--grace", "0s"))
        second = await Process.start(other, env)
        assert await second.finish() == 4, second.stderr
        assert f"revoke   desk0/s0/k1: {by_hand}" in second.stderr
        assert {row["outcome"] for row in second.rows if row["outcome"]} == {"done", "manual"}
        # Stripped in the web UI: the next run sees it and closes the rotation.
        emulator.exchange.tamper_key(by_hand, permissions=[])
        last = await Process.start(rotate_argv(url, folder, options=("--finish",)), env)
        assert await last.finish() == 0, last.stderr
        assert {r.step for r in folder.rotations()} == {Step.DONE}
        assert folder.records()[by_hand].stage is Stage.REVOKED


async def test_ctrl_c_while_waiting_out_the_grace_leaves_it_journaled(tmp_path: Path) -> None:
    accounts, env, folder = scenario(tmp_path, "unified", 1, 1, base=6_900_000_000)
    async with Emulator(accounts) as emulator:
        url = emulator.base_url
        await apply(url, folder, env)
        argv = rotate_argv(url, folder, "desk0/s0/k0", options=("--grace", "1h"))
        run = await Process.start(argv, env)
        await run.read_rows(6)
        assert run.rows[-1]["step"] == "waiting"
        run.process.send_signal(signal.SIGINT)
        assert await run.finish() == 130, run.stderr
        assert run.rows[-1]["step"] == "interrupted"
        (rotation,) = folder.rotations()
        assert rotation.step is Step.PROMOTED
        old = rotation.old_api_key
        assert any(key.api_key == old for key in live_keys(emulator, accounts[0].uid, "s0"))
        with sqlite3.connect(folder.state) as db:
            db.execute("UPDATE rotations SET grace_until = grace_until - 3600")
        again = await Process.start(rotate_argv(url, folder, options=("--finish",)), env)
        assert await again.finish() == 0, again.stderr
        assert [key.api_key for key in live_keys(emulator, accounts[0].uid, "s0")] == [
            rotation.new_api_key
        ]
