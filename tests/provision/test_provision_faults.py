"""
`bitget-keys apply` against an emulator that loses answers and fails requests.

The emulator serves on 127.0.0.1 with its real per-UID and per-IP limits; the command
runs as a user runs it (`bitget_keys.cli.main`, in a thread with its own event loop).
Faults hit every endpoint, reads included, from one seeded generator: 10% of requests
are carried out and then their connection is cut, 5% get a 503 without effect. The same
run is made with classic masters (v2: batch-create, further keys) and with unified ones
(v3: create-sub, then create-sub-api for every key), whose mode apply asks first.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

import attrs
import pytest

from bitget_keys.cli import main
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import DroppedAnswer, Emulator, EmulatorAccount, Faults

VAULT_KEY = "a long vault passphrase"
LETTERS = "abcdefghijklmnopqrstuvwxyz"
MASTERS = [
    EmulatorAccount(
        uid=str(3_000_000_000 + i),
        api_key=f"bg_fault_master_{i:02d}",
        secret_key=f"fault-master-secret-{i:02d}",
        passphrase=f"FaultMaster{i:02d}",
    )
    for i in range(10)
]
SUBACCOUNTS = 20
CREATES = frozenset({"batch_create_virtual_subaccounts", "create_virtual_subaccount_api_key"})
UNIFIED_CREATES = frozenset({"create_uta_subaccount", "create_uta_subaccount_api_key"})
#: Per mode: the masters, their create endpoints, and their list endpoints.
MODES = {
    "classic": (
        MASTERS,
        CREATES,
        ("list_virtual_subaccounts", "list_virtual_subaccount_api_keys"),
    ),
    "unified": (
        [attrs.evolve(master, mode="unified") for master in MASTERS],
        UNIFIED_CREATES,
        ("list_uta_subaccounts", "list_uta_subaccount_api_keys"),
    ),
}


def plan_toml(masters: list[EmulatorAccount], subaccounts: int) -> str:
    """Each master gets ``subaccounts`` sub-accounts, each a first key and one extra key."""
    lines = ['[defaults]\nip_list = ["203.0.113.7"]\nperm_type = "read_and_write"\n']
    for a in range(len(masters)):
        lines.append(f'[[accounts]]\nname = "desk{a}"\ncredentials = "env:DESK{a}"\n')
        lines.extend(
            "[[accounts.subaccounts]]\n"
            f'name = "{LETTERS[a]}{LETTERS[s]}faults"\nlabel = "m{a}s{s}"\n'
            '[[accounts.subaccounts.keys]]\nlabel = "first"\npermissions = ["spot_trade"]\n'
            '[[accounts.subaccounts.keys]]\nlabel = "extra"\npermissions = ["read"]\n'
            for s in range(subaccounts)
        )
    return "\n".join(lines)


def planned_state(masters: list[EmulatorAccount], subaccounts: int) -> dict[str, Any]:
    """
    Master UID -> sub-account label -> (name, key labels as Bitget shows them): batch-create
    gives a classic first key its sub-account's label; a unified key has its own note.
    """
    return {
        master.uid: {
            f"m{a}s{s}": (
                f"{LETTERS[a]}{LETTERS[s]}faults",
                sorted(["first" if master.unified else f"m{a}s{s}", "extra"]),
            )
            for s in range(subaccounts)
        }
        for a, master in enumerate(masters)
    }


def emulated_state(emulator: Emulator) -> dict[str, Any]:
    """The same view of what the exchange holds; a label seen twice is kept twice."""
    state: dict[str, Any] = {}
    for master in emulator.accounts:
        subs = emulator.exchange.subaccounts(master.uid)
        labels = Counter(sub["label"] for sub in subs)
        assert all(count == 1 for count in labels.values()), f"duplicate sub-accounts: {labels}"
        state[master.uid] = {
            sub["label"]: (sub["name"], sorted(label for label, _ in sub["keys"])) for sub in subs
        }
    return state


def emulated_keys(emulator: Emulator) -> dict[str, str]:
    """Every sub-account key on the exchange: API key -> secret."""
    keys = {}
    for master in emulator.accounts:
        for sub in emulator.exchange.subaccounts(master.uid):
            for _, api_key in sub["keys"]:
                keys[api_key] = emulator.exchange.secret_of(api_key) or ""
    return keys


def environment(monkeypatch: pytest.MonkeyPatch, masters: list[EmulatorAccount]) -> None:
    for a, master in enumerate(masters):
        monkeypatch.setenv(f"DESK{a}_API_KEY", master.api_key)
        monkeypatch.setenv(f"DESK{a}_SECRET_KEY", master.secret_key.reveal())
        monkeypatch.setenv(f"DESK{a}_PASSPHRASE", master.passphrase.reveal())
        monkeypatch.setenv(f"DESK{a}_UID", master.uid)
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", VAULT_KEY)


async def apply(
    url: str, plan: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, Any]], str]:
    """Run `bitget-keys apply --json`; return its exit code, its result rows, and all output."""
    argv = ["apply", str(plan), "--base-url", url, "--json", "--yes", "--create-vault"]
    argv += ["--vault", str(tmp_path / "keys.vault"), "--state", str(tmp_path / "apply.state")]
    # The command runs its own event loop, so it runs in a thread beside the emulator's.
    code = await asyncio.to_thread(main, argv)
    out, err = capfd.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], out + err


def creates_accepted(emulator: Emulator) -> int:
    return sum(
        len(lane.accepted)
        for (_, name), lane in emulator.audit.lanes.items()
        if name in CREATES | UNIFIED_CREATES
    )


def dropped_keys(emulator: Emulator) -> set[str]:
    return {api_key for answer in emulator.dropped for api_key in answer.api_keys}


@pytest.mark.parametrize("mode", sorted(MODES))
async def test_faulty_exchange_ends_with_the_plan_every_delivered_secret_and_orphans_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], mode: str
) -> None:
    """
    10 masters x 20 sub-accounts x 2 keys, 10% of answers lost after the fact and 5% 503s
    on every endpoint: re-applied until complete, exactly the planned sub-accounts and
    keys exist once each, every key whose answer arrived has its secret in the vault, and
    each key whose answer was lost is reported as an orphan and never made again.
    """
    masters, creates, lists = MODES[mode]
    environment(monkeypatch, masters)
    expected = planned_state(masters, SUBACCOUNTS)
    # The faults come from one seeded stream, and which request draws which depends on
    # the order requests arrive in. A run whose faults happened to miss one of the
    # create endpoints (about 1 order in 70 draws no drop for any batch-create) did not
    # test what this test is for: it runs again, from nothing, with the next seed.
    for attempt in range(3):
        folder = tmp_path / f"run{attempt}"
        folder.mkdir()
        plan = folder / "plan.toml"
        plan.write_text(plan_toml(masters, SUBACCOUNTS))
        faults = Faults(drop_after_commit=0.10, server_error=0.05, seed=20261122 + attempt)
        async with Emulator(masters, faults=faults, seed=7 + attempt) as emulator:
            codes: list[int] = []
            for _ in range(4):
                code, rows, output = await apply(emulator.base_url, plan, folder, capfd)
                codes.append(code)
                if emulated_state(emulator) == expected:
                    break
            dropped = Counter(answer.endpoint for answer in emulator.dropped)
            hit = all(dropped[name] > 0 for name in creates)
            if attempt < 2 and not (hit and set(emulator.server_errors) >= creates):
                continue
            await _check_faulty_run(
                emulator, mode, (creates, lists), (plan, folder, capfd), (codes, rows, output)
            )
            return


async def _check_faulty_run(
    emulator: Emulator,
    mode: str,
    endpoints: tuple[Collection[str], Collection[str]],
    where: tuple[Path, Path, pytest.CaptureFixture[str]],
    outcome: tuple[list[int], list[dict[str, Any]], str],
) -> None:
    """The checks of one faulty run whose faults hit every create endpoint."""
    creates, lists = endpoints
    plan, tmp_path, capfd = where
    codes, rows, output = outcome
    masters = emulator.accounts
    statuses = Counter(row["status"] for row in rows)
    expected = planned_state(masters, SUBACCOUNTS)
    assert emulated_state(emulator) == expected, (
        f"not complete after {len(codes)} applies (exit codes {codes}, last: {statuses})"
    )
    # Faults really hit creates and reads alike.
    dropped = Counter(answer.endpoint for answer in emulator.dropped)
    assert all(dropped[name] > 0 for name in creates), dropped
    assert sum(dropped[name] for name in lists), dropped
    assert set(emulator.server_errors) >= set(creates)
    lost = dropped_keys(emulator)
    assert lost
    keys = emulated_keys(emulator)
    assert lost <= set(keys)
    delivered = set(keys) - lost

    # Every key whose answer arrived is in the vault, once, with the exchange's secret.
    vault = SecretsVault.open(tmp_path / "keys.vault", VAULT_KEY)
    records = list(vault.records())
    assert len(records) == len({record.api_key for record in records})
    stored = {record.api_key: record.secret().reveal() for record in records}
    assert set(stored) == delivered, (
        f"delivered, not stored: {sorted(delivered - set(stored))}; "
        f"stored, not delivered: {sorted(set(stored) - delivered)}"
    )
    assert all(stored[api_key] == keys[api_key] for api_key in delivered)
    assert {record.api_family for record in records} == {"v3" if mode == "unified" else "v2"}
    # Each record names the sub-account that holds its key (a first key's record has
    # no UID when the batch answer masked it, but always the sub-account's name).
    for record in records:
        owner = next(
            sub
            for sub in emulator.exchange.subaccounts(record.master_uid)
            if sub["name"] == record.subaccount_name
        )
        assert record.subaccount_uid in (owner["uid"], None)
        assert record.api_key in {api_key for _, api_key in owner["keys"]}

    # The last apply reported each lost key as an orphan, and nothing else as one.
    orphans = {row["api_key"] for row in rows if row["status"] == "orphan"}
    assert orphans == lost, (
        f"orphans whose answer arrived: {sorted(orphans - lost)}; "
        f"lost, not reported: {sorted(lost - orphans)}"
    )
    # Done, but with orphans: partial (4), not failed.
    assert codes[-1] == 4, codes
    for secret in [*keys.values(), *(m.secret_key.reveal() for m in masters)]:
        assert secret not in output

    # Once more: nothing is created again, the same orphans are reported.
    before = creates_accepted(emulator)
    emulator.faults = Faults()
    code, rows, _ = await apply(emulator.base_url, plan, tmp_path, capfd)
    assert creates_accepted(emulator) == before
    assert code == 4
    assert {row["api_key"] for row in rows if row["status"] == "orphan"} == lost
    assert {row["status"] for row in rows} == {"unchanged", "orphan"}
    assert emulator.audit.violations() == {}


def test_dropped_answer_names_the_keys_a_create_made() -> None:
    """A withheld create answer lists its new API keys; a withheld read lists none."""
    batch = json.dumps(
        {"code": "00000", "data": [{"subAccountApiKey": "bg_a"}, {"subAccountApiKey": "bg_b"}]}
    ).encode()
    single = json.dumps({"code": "00000", "data": {"subAccountApiKey": "bg_c"}}).encode()
    listed = json.dumps({"code": "00000", "data": [{"subAccountApiKey": "bg_d"}]}).encode()
    assert DroppedAnswer(
        endpoint="batch_create_virtual_subaccounts", status=200, body=batch
    ).api_keys == ("bg_a", "bg_b")
    assert DroppedAnswer(
        endpoint="create_virtual_subaccount_api_key", status=200, body=single
    ).api_keys == ("bg_c",)
    assert (
        DroppedAnswer(endpoint="list_virtual_subaccount_api_keys", status=200, body=listed).api_keys
        == ()
    )
    assert "bg_a" not in repr(DroppedAnswer(endpoint=None, status=200, body=batch))
