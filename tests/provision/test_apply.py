"""Applying plans against the emulator: creates what is missing, once, and keeps every secret."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bitget_keys import Client, ClientConfig, RateLimitScheduler
from bitget_keys.errors import VaultError
from bitget_keys.provision import retrying
from bitget_keys.provision.apply import ItemResult, Status, apply_plan, generate_passphrase
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.plan import AccountSpec, parse_plan
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, EmulatorAccount, Faults, Limits, LoopClock, Unpaced

MASTERS = [
    EmulatorAccount(
        uid=f"100000000{i}",
        api_key=f"bg_m{i}",
        secret_key=f"master-secret-{i}",
        passphrase=f"MasterPass{i}",
    )
    for i in range(1, 4)
]
ENV = {
    f"DESK{i}_{field.upper()}": value
    for i, account in enumerate(MASTERS, start=1)
    for field, value in (
        ("api_key", account.api_key),
        ("secret_key", account.secret_key.reveal()),
        ("passphrase", account.passphrase.reveal()),
        ("uid", account.uid),
    )
}
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def plan_data(accounts: int = 3, subaccounts: int = 7, keys: int = 2) -> dict[str, Any]:
    rows = []
    for a in range(accounts):
        subs = [
            {
                "name": f"{LETTERS[a]}{LETTERS[s]}subacc",
                "label": f"sub{a}x{s}",
                "keys": [
                    {"label": "first", "permissions": ["spot_trade"]},
                    *({"label": f"extra{k}", "permissions": ["read"]} for k in range(keys - 1)),
                ],
            }
            for s in range(subaccounts)
        ]
        rows.append(
            {"name": f"desk{a + 1}", "credentials": f"env:DESK{a + 1}", "subaccounts": subs}
        )
    return {
        "defaults": {"ip_list": ["203.0.113.7"], "perm_type": "read_and_write"},
        "accounts": rows,
    }


async def run_apply(
    emulator: Emulator,
    tmp_path: Path,
    data: dict[str, Any],
    *,
    scheduler: RateLimitScheduler | None = None,
) -> list[ItemResult]:
    plan = parse_plan(data, environ=ENV)
    clients: dict[str, Client] = {}

    def client_for(account: AccountSpec) -> Client:
        if account.name not in clients:
            clients[account.name] = Client(
                account.credentials,
                transport=emulator.transport(),
                scheduler=scheduler or Unpaced(),
                config=ClientConfig(sync_clock=False),
            )
        return clients[account.name]

    vault = SecretsVault.open(tmp_path / "vault.bkv", "a long vault passphrase")
    with Journal(tmp_path / "state.db") as journal:
        results = await apply_plan(plan, clients=client_for, vault=vault, journal=journal)
    for client in clients.values():
        await client.aclose()
    return results


def created_keys(emulator: Emulator) -> dict[str, str]:
    """Every virtual sub-account key on the exchange: API key -> secret."""
    keys = {}
    for account in MASTERS:
        for sub in emulator.exchange.subaccounts(account.uid):
            for _, api_key in sub["keys"]:
                secret = emulator.exchange.secret_of(api_key)
                assert secret is not None
                keys[api_key] = secret
    return keys


async def test_apply_creates_everything_and_rerun_creates_nothing(tmp_path: Path) -> None:
    """A three-master plan is applied whole; every secret is in the vault; a re-run sends no create."""
    emulator = Emulator(MASTERS, limits=Limits(per_uid=False, ip_limit=None))
    results = await run_apply(emulator, tmp_path, plan_data())
    assert {r.status for r in results} == {Status.CREATED}
    assert sum(r.kind == "key" for r in results) == 3 * 7 * 2
    keys = created_keys(emulator)
    assert len(keys) == 3 * 7 * 2
    vault = SecretsVault.open(tmp_path / "vault.bkv", "a long vault passphrase")
    stored = {record.api_key: record.secret().reveal() for record in vault.records()}
    assert stored == keys
    creates_before = _creates(emulator)
    again = await run_apply(emulator, tmp_path, plan_data())
    assert {r.status for r in again} == {Status.UNCHANGED}
    assert _creates(emulator) == creates_before


def _creates(emulator: Emulator) -> int:
    return sum(
        len(lane.accepted)
        for (uid, name), lane in emulator.audit.lanes.items()
        if name in ("batch_create_virtual_subaccounts", "create_virtual_subaccount_api_key")
    )


async def test_dropped_answers_become_orphans_not_duplicates(tmp_path: Path) -> None:
    """With every create's answer lost, nothing is created twice and the lost keys are reported."""
    faults = Faults(
        drop_after_commit=0.3,
        endpoints=frozenset(
            {"batch_create_virtual_subaccounts", "create_virtual_subaccount_api_key"}
        ),
        seed=3,
    )
    emulator = Emulator(MASTERS, limits=Limits(per_uid=False, ip_limit=None), faults=faults)
    results = await run_apply(emulator, tmp_path, plan_data(subaccounts=6))
    keys = created_keys(emulator)
    # Exactly the planned keys exist, no more, whatever was dropped.
    assert len(keys) == 3 * 6 * 2
    vault = SecretsVault.open(tmp_path / "vault.bkv", "a long vault passphrase")
    stored = {record.api_key for record in vault.records()}
    orphans = {r.api_key for r in results if r.status is Status.ORPHAN}
    assert orphans, "the seed drops some answers"
    assert stored | orphans == set(keys)
    assert not stored & orphans


def test_generated_passphrases_are_valid() -> None:
    """Generated passphrases are 24 letters and digits with at least one of each."""
    for _ in range(200):
        text = generate_passphrase().reveal()
        assert len(text) == 24
        assert text.isalnum()
        assert text.isascii()
        assert any(c.isdigit() for c in text)
        assert any(c.isalpha() for c in text)


async def test_one_failing_account_does_not_stop_the_others(tmp_path: Path) -> None:
    """A master whose key Bitget refuses fails alone; the other masters are provisioned."""
    emulator = Emulator([MASTERS[0], MASTERS[2]], limits=Limits(per_uid=False, ip_limit=None))
    results = await run_apply(emulator, tmp_path, plan_data(subaccounts=2))
    failed = [r for r in results if r.status is Status.FAILED]
    assert [r.account for r in failed] == ["desk2"]
    assert "40006" in failed[0].detail
    assert sum(r.status is Status.CREATED and r.kind == "key" for r in results) == 2 * 2 * 2


def _accepted(emulator: Emulator, endpoint: str) -> list[float]:
    return sorted(
        at
        for (_, name), lane in emulator.audit.lanes.items()
        if name == endpoint
        for at in lane.accepted
    )


async def test_further_keys_start_before_the_last_batch(tmp_path: Path, clock: LoopClock) -> None:
    """
    Under real per-UID limits, a new sub-account's further keys go out while later batches
    wait: the first batch's five further keys all leave before the third batch, which a
    run that sent every batch first would send before any key.
    """
    emulator = Emulator(MASTERS[:1], limits=Limits(ip_limit=None))
    scheduler = RateLimitScheduler(ip_budget=None)
    run = asyncio.create_task(
        run_apply(emulator, tmp_path, plan_data(accounts=1, subaccounts=15), scheduler=scheduler)
    )
    # Three batches at 1/s and fifteen keys at 5/s take about four seconds.
    await clock.advance(10.0)
    assert run.done()
    assert {r.status for r in run.result()} == {Status.CREATED}
    batches = _accepted(emulator, "batch_create_virtual_subaccounts")
    keys = _accepted(emulator, "create_virtual_subaccount_api_key")
    assert len(batches) == 3
    assert len(keys) == 15
    assert keys[4] < batches[2]
    assert emulator.audit.throttled == 0


async def test_plan_accounts_of_one_master_start_keys_after_one_list_interval(
    tmp_path: Path, clock: LoopClock
) -> None:
    """
    Two plan accounts on one master: the sub-account list read that learns the first
    batch's UIDs (which its further keys wait for) goes ahead of the other account's
    first read, so the first further key leaves one list interval after the start,
    before the master's third list read, not after it; and the forty further keys then
    follow one another at the key lane's pace.
    """
    emulator = Emulator(MASTERS[:1], limits=Limits(ip_limit=None))
    data = plan_data(accounts=2, subaccounts=10, keys=3)
    data["accounts"][1]["credentials"] = "env:DESK1"
    run = asyncio.create_task(
        run_apply(emulator, tmp_path, data, scheduler=RateLimitScheduler(ip_budget=None))
    )
    await clock.advance(30.0)
    assert run.done()
    assert {r.status for r in run.result()} == {Status.CREATED}
    lists = _accepted(emulator, "list_virtual_subaccounts")
    batches = _accepted(emulator, "batch_create_virtual_subaccounts")
    keys = _accepted(emulator, "create_virtual_subaccount_api_key")
    assert (len(batches), len(keys)) == (4, 40)
    # Audit times are in milliseconds; the loopback transport answers at once.
    assert lists[1] <= keys[0] < lists[2]
    # One list interval, then 39 key intervals (5/s at the 5% margin), and no gap.
    assert (keys[-1] - lists[0]) / 1000 == pytest.approx(1.05 + 39 * 0.21, abs=0.05)
    assert emulator.audit.throttled == 0


async def test_a_round_without_unknowns_reads_no_key_list(tmp_path: Path) -> None:
    """When every answer arrives, the sub-account list is read to learn new UIDs, and nothing else."""
    emulator = Emulator(MASTERS, limits=Limits(per_uid=False, ip_limit=None))
    results = await run_apply(emulator, tmp_path, plan_data(subaccounts=7))
    assert {r.status for r in results} == {Status.CREATED}
    assert _accepted(emulator, "list_virtual_subaccount_api_keys") == []
    # Per master: the first read, then at most one read per batch.
    assert 3 * 2 <= len(_accepted(emulator, "list_virtual_subaccounts")) <= 3 * 3


async def test_clear_uids_in_the_batch_answer_need_no_list(tmp_path: Path) -> None:
    """When the batch answer shows the new UIDs, keys start without a list read, and the vault keeps the UIDs."""
    emulator = Emulator(
        MASTERS, limits=Limits(per_uid=False, ip_limit=None, mask_batch_names=False)
    )
    results = await run_apply(emulator, tmp_path, plan_data(subaccounts=7))
    assert {r.status for r in results} == {Status.CREATED}
    assert len(_accepted(emulator, "list_virtual_subaccounts")) == 3
    vault = SecretsVault.open(tmp_path / "vault.bkv", "a long vault passphrase")
    uids = {sub["uid"] for m in MASTERS for sub in emulator.exchange.subaccounts(m.uid)}
    assert {record.subaccount_uid for record in vault.records()} == uids


async def test_masked_uids_are_not_written_to_the_vault(tmp_path: Path) -> None:
    """
    A first key's vault record, written when the batch answer masked its UID, has none
    (never the mask); the record stored again once the UID is known has the real one.
    """
    emulator = Emulator(MASTERS[:1], limits=Limits(per_uid=False, ip_limit=None))
    await run_apply(emulator, tmp_path, plan_data(accounts=1, subaccounts=2))
    vault = SecretsVault.open(tmp_path / "vault.bkv", "a long vault passphrase")
    scan = vault.require_intact()
    written = [e.record.subaccount_uid for e in scan.entries if e.record.label == "first"]
    assert written.count(None) == 2
    assert all(uid is None or uid.isdigit() for uid in written)
    by_label = {record.label: record.subaccount_uid for record in scan.records}
    assert by_label["first"] is not None
    assert by_label["first"].isdigit()
    assert by_label["extra0"] is not None
    assert by_label["extra0"].isdigit()


async def test_failed_reads_are_tried_again(tmp_path: Path) -> None:
    """Half of all reads fail (503 or a cut connection); every account is still provisioned."""
    reads = frozenset({"list_virtual_subaccounts", "list_virtual_subaccount_api_keys"})
    faults = Faults(server_error=0.3, drop_after_commit=0.3, endpoints=reads, seed=11)
    emulator = Emulator(MASTERS, limits=Limits(per_uid=False, ip_limit=None), faults=faults)
    results = await run_apply(emulator, tmp_path, plan_data(subaccounts=6))
    assert emulator.server_errors
    assert emulator.dropped
    assert {r.status for r in results} == {Status.CREATED}
    assert len(created_keys(emulator)) == 3 * 6 * 2


async def test_an_unknown_key_create_rereads_only_its_sub_account(tmp_path: Path) -> None:
    """A key create whose answer was lost costs one read of that sub-account's keys, not a full read."""
    faults = Faults(
        drop_after_commit=1.0, endpoints=frozenset({"create_virtual_subaccount_api_key"})
    )
    emulator = Emulator(MASTERS[:1], limits=Limits(per_uid=False, ip_limit=None), faults=faults)
    results = await run_apply(emulator, tmp_path, plan_data(accounts=1, subaccounts=5))
    assert len(_accepted(emulator, "list_virtual_subaccount_api_keys")) == 5
    assert len(_accepted(emulator, "create_virtual_subaccount_api_key")) == 5
    orphans = {r.target for r in results if r.status is Status.ORPHAN}
    assert orphans == {f"sub0x{s}/extra0" for s in range(5)}


async def test_a_vault_write_failure_stops_the_run_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret that cannot be stored stops the run with the vault's own error."""
    emulator = Emulator(MASTERS[:1], limits=Limits(per_uid=False, ip_limit=None))

    def refuse(_self: SecretsVault, _record: object) -> None:
        raise VaultError("vault.bkv", "could not write: No space left on device")

    monkeypatch.setattr(SecretsVault, "append", refuse)
    with pytest.raises(VaultError, match="No space left"):
        await run_apply(emulator, tmp_path, plan_data(accounts=1, subaccounts=2))


async def test_a_read_that_keeps_failing_fails_its_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key lists that always get 503 are tried five times each, then the account fails, alone."""
    monkeypatch.setattr(retrying, "_READ_BACKOFF", 0.001)
    emulator = Emulator(MASTERS[:2], limits=Limits(per_uid=False, ip_limit=None))
    await run_apply(emulator, tmp_path, plan_data(accounts=2, subaccounts=3))
    emulator.faults = Faults(
        server_error=1.0, endpoints=frozenset({"list_virtual_subaccount_api_keys"})
    )
    results = await run_apply(emulator, tmp_path, plan_data(accounts=1, subaccounts=3))
    assert [(r.account, r.kind, r.status) for r in results] == [("desk1", "account", Status.FAILED)]
    assert "40015" in results[0].detail
    assert emulator.server_errors == ["list_virtual_subaccount_api_keys"] * 3 * 5


async def test_a_create_bitget_refuses_is_not_sent_again_in_later_rounds(tmp_path: Path) -> None:
    """
    A sub-account name is taken across Bitget (another master made it first): the batch
    is refused, a refusal that would come again, so it is sent once and its sub-account
    reported failed once, not once in every round.
    """
    emulator = Emulator(MASTERS[:2], limits=Limits(per_uid=False, ip_limit=None))
    first = plan_data(accounts=2, subaccounts=1, keys=1)
    name = first["accounts"][0]["subaccounts"][0]["name"]
    first["accounts"] = first["accounts"][1:]
    first["accounts"][0]["subaccounts"][0]["name"] = name
    (tmp_path / "other").mkdir()
    assert {r.status for r in await run_apply(emulator, tmp_path / "other", first)} == {
        Status.CREATED
    }
    batches = len(_accepted(emulator, "batch_create_virtual_subaccounts"))
    results = await run_apply(emulator, tmp_path, plan_data(accounts=1, subaccounts=1, keys=1))
    failed = [r for r in results if r.kind == "subaccount" and r.status is Status.FAILED]
    assert len(failed) == 1, results
    assert "40060" in failed[0].detail, failed[0].detail
    assert len(_accepted(emulator, "batch_create_virtual_subaccounts")) == batches + 1
