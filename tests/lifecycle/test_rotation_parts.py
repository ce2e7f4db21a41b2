"""The parts of rotation that need no exchange: durations, selectors, due keys, the journal, the shared list."""

from __future__ import annotations

import asyncio
import datetime as dt
import stat
from pathlib import Path

import pytest

from bitget_keys import models as m
from bitget_keys.errors import PlanError
from bitget_keys.lifecycle.rotation_journal import RotationJournal, Step
from bitget_keys.lifecycle.rotation_ops import SharedList
from bitget_keys.lifecycle.rotation_run import Selector, is_due
from bitget_keys.provision.durations import DURATION_RULE, format_duration, parse_duration
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.plan import KeySpec, parse_plan
from bitget_keys.provision.vault_records import VaultRecord

ENV = {"A_API_KEY": "bg_key", "A_SECRET_KEY": "secret-a", "A_PASSPHRASE": "Passphrase1"}


def test_durations() -> None:
    assert parse_duration("90d") == 90 * 86400
    assert parse_duration("12h") == 43200
    assert parse_duration("30m") == 1800
    assert parse_duration("0s") == 0
    for bad in ("90", "1.5h", "1w", "-1d", "90 d", ""):
        with pytest.raises(ValueError, match="must be a duration"):
            parse_duration(bad)
    assert [format_duration(s) for s in (3600, 90, 86400 * 2, 0)] == ["1h", "90s", "2d", "0s"]


def _plan(defaults: dict[str, object], key: dict[str, object]) -> dict[str, object]:
    return {
        "defaults": {"ip_list": ["203.0.113.7"], **defaults},
        "accounts": [
            {
                "name": "a",
                "credentials": "env:A",
                "subaccounts": [
                    {
                        "name": "abcdefgh",
                        "label": "s",
                        "keys": [
                            {"label": "k0", "permissions": ["read"]},
                            {"label": "k1", "permissions": ["read"], **key},
                        ],
                    }
                ],
            }
        ],
    }


def test_rotate_after_in_the_plan() -> None:
    plan = parse_plan(_plan({"rotate_after": "90d"}, {"rotate_after": "12h"}), environ=ENV)
    keys = plan.accounts[0].subaccounts[0].keys
    assert [key.rotate_after for key in keys] == [90 * 86400, 12 * 3600]
    plain = parse_plan(_plan({}, {}), environ=ENV)
    assert {key.rotate_after for key in plain.accounts[0].subaccounts[0].keys} == {None}
    with pytest.raises(PlanError) as raised:
        parse_plan(_plan({"rotate_after": "soon"}, {"rotate_after": 5}), environ=ENV)
    found = {(p.field, p.rule) for p in raised.value.problems}
    assert ("defaults.rotate_after", DURATION_RULE) in found
    assert any(field == "accounts[0].subaccounts[0].keys[1].rotate_after" for field, _ in found)


def test_a_zero_rotate_after_is_refused() -> None:
    """Zero would make the key due at every rotate --due; --grace 0s stays a valid wait."""
    with pytest.raises(PlanError) as raised:
        parse_plan(_plan({"rotate_after": "0d"}, {"rotate_after": "0s"}), environ=ENV)
    found = {p.field: p.rule for p in raised.value.problems}
    assert set(found) == {
        "defaults.rotate_after",
        "accounts[0].subaccounts[0].keys[1].rotate_after",
    }
    assert all(rule.startswith("must be longer than 0") for rule in found.values())
    assert parse_duration("0s") == 0


def test_selectors() -> None:
    selector = Selector.parse("main/*/*")
    assert selector.matches("main", "bots", "k1")
    assert not selector.matches("other", "bots", "k1")
    assert Selector.parse("*/bots/*").matches("x", "bots", "y")
    assert not Selector.parse("*/bots/k?").matches("x", "bots", "k10")
    for bad in ("main", "main/bots", "a/b/c/d", "a//c"):
        with pytest.raises(ValueError, match="ACCOUNT/SUBACCOUNT-LABEL/KEY-LABEL"):
            Selector.parse(bad)


def _record(*, held: bool, days: float) -> VaultRecord:
    made = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    return VaultRecord(
        kind="virtual_subaccount_key",
        account="a",
        master_uid="1",
        api_key="bg_x",
        secret_key="s3cret-value" if held else None,
        created_at=made.isoformat(),
    )


def test_due_keys() -> None:
    key = KeySpec(label="k", permissions=(m.Permission.READ,), ip_list=(), rotate_after=30 * 86400)
    now = dt.datetime.now(dt.UTC).timestamp()
    assert is_due(key, _record(held=True, days=31), now)
    assert not is_due(key, _record(held=True, days=29), now)
    # A key whose secret is not held (made elsewhere) is always due, as is one not in the vault.
    assert is_due(key, _record(held=False, days=1), now)
    assert is_due(key, None, now)
    never = KeySpec(label="k", permissions=(m.Permission.READ,), ip_list=())
    assert not is_due(never, _record(held=True, days=1000), now)


def test_the_journal_shares_apply_s_state_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.state"
    journal = RotationJournal(path)
    try:
        row = journal.start("a", "1", "2", "s/k", "k", "v2", "bg_old", 60.0)
        assert row.step is Step.PLANNED
        assert row.passphrase_ref.startswith("rotation-passphrase:")
        row = journal.advance(row, Step.CREATE_SENT)
        row = journal.advance(row, Step.CREATED, new_api_key="bg_new", orphans=("bg_lost",))
        assert (row.new_api_key, row.orphans) == ("bg_new", ("bg_lost",))
        assert [r.id for r in journal.unfinished("a")] == [row.id]
        journal.advance(row, Step.DONE)
        assert journal.unfinished() == []
    finally:
        journal.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Apply opens the file rotate made, and its own table is there.
    with Journal(path) as apply_journal:
        assert list(apply_journal.entries()) == []


async def test_readers_share_reads_and_wait_for_creates() -> None:
    reads: list[int] = []
    gate = asyncio.Event()

    async def read() -> tuple[m.VirtualSubaccountAPIKey, ...]:
        reads.append(len(reads))
        await gate.wait()
        return ()

    shared = SharedList(read)
    first = [asyncio.create_task(shared.read()) for _ in range(3)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # Asked while the first read is on its way: they share the next one.
    later = [asyncio.create_task(shared.read()) for _ in range(2)]
    gate.set()
    await asyncio.gather(*first, *later)
    assert shared.reads == 2
    # A read waits while a create of the sub-account is on its way.
    with shared.creating():
        waiting = asyncio.create_task(shared.read())
        await asyncio.sleep(0.01)
        assert shared.reads == 2
        assert not waiting.done()
    await waiting
    assert shared.reads == 3
