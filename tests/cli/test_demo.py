"""`bitget-keys demo`: provisioning against the bundled emulator, end to end, as users run it."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any, Self

import pytest

from bitget_keys.cli import _demo, main
from bitget_keys.cli._demo import (
    DEMO_VAULT_KEY,
    DemoSize,
    example_plan,
    master_mode,
    subaccount_name,
)
from bitget_keys.provision.plan import parse_plan
from bitget_keys.provision.plan_modes import PlanMode
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator

ESCAPE = "\x1b"


@pytest.fixture
def emulators(monkeypatch: pytest.MonkeyPatch) -> list[Emulator]:
    """Every emulator the demo starts, kept for the test to inspect afterwards."""
    started: list[Emulator] = []

    class Recorded(Emulator):
        async def __aenter__(self) -> Self:
            started.append(self)
            return await super().__aenter__()

    monkeypatch.setattr(_demo, "Emulator", Recorded)
    return started


def held(emulator: Emulator) -> tuple[int, list[str]]:
    """The sub-accounts the emulator holds, and all their keys."""
    subaccounts = [
        sub for master in emulator.accounts for sub in emulator.exchange.subaccounts(master.uid)
    ]
    return len(subaccounts), [api_key for sub in subaccounts for _, api_key in sub["keys"]]


def secrets_of(emulator: Emulator, vault: SecretsVault) -> list[str]:
    """Every secret of the run: masters', created keys' (from the emulator) and the vault's."""
    found = [
        text
        for master in emulator.accounts
        for text in (master.secret_key.reveal(), master.passphrase.reveal())
    ]
    for record in vault.records():
        found.append(emulator.exchange.secret_of(record.api_key) or "missing")
        found.append(record.secret().reveal())
        if record.passphrase is not None:
            found.append(record.passphrase.reveal())
    return found


def accepted_of(emulator: Emulator, uid: str) -> int:
    """The requests of one master the emulator accepted."""
    return sum(
        len(lane.accepted)
        for (lane_uid, _), lane in emulator.audit.lanes.items()
        if lane_uid == uid
    )


def test_demo_json_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], emulators: list[Emulator]
) -> None:
    """
    Everything planned is made once, on a classic and a unified master, matches the
    emulator and the vault (each key with its master's API family); no secret shown.
    """
    workdir = tmp_path / "demo"
    argv = ["demo", "--accounts", "2", "--subaccounts", "6", "--keys", "2"]
    code = main([*argv, "--workdir", str(workdir), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    *items, last = [json.loads(line) for line in out.splitlines()]
    summary = last["summary"]
    statuses = [item["status"] for item in items]
    # Two masters x six sub-accounts: each sub-account and its two keys, made then found.
    assert statuses == ["created"] * 36 + ["unchanged"] * 36
    (emulator,) = emulators
    classic, unified = emulator.accounts
    assert (classic.mode, unified.mode) == ("classic", "unified")
    subaccounts, keys = held(emulator)
    assert (subaccounts, len(keys)) == (12, 24)
    assert summary["ok"] is True
    assert summary["created"] == {"subaccounts": 12, "keys": 24}
    # Half of it on each kind of master, through its own API family.
    assert summary["modes"] == {
        "classic": {
            "api": "v2",
            "masters": 1,
            "created": {"subaccounts": 6, "keys": 12},
            "requests": {"accepted": accepted_of(emulator, classic.uid), "refused": 1},
        },
        "unified": {
            "api": "v3",
            "masters": 1,
            "created": {"subaccounts": 6, "keys": 12},
            "requests": {"accepted": accepted_of(emulator, unified.uid), "refused": 0},
        },
    }
    assert summary["emulator"] == {"subaccounts": subaccounts, "keys": len(keys)}
    assert summary["rerun"] == {"changed": 0, "create_requests": 0}
    # The one refusal is the classic master's answer to the mode question.
    assert summary["requests"] == {
        "accepted": emulator.audit.accepted,
        "throttled": 0,
        "refused": 1,
        "refused_mode_probes": 1,
    }
    assert emulator.audit.throttled == 0
    busiest = summary["busiest_second"]
    assert busiest["batch_create_virtual_subaccounts"] == {"accepted": 1, "limit": 1}
    for v3_create in ("create_uta_subaccount", "create_uta_subaccount_api_key"):
        assert 1 <= busiest[v3_create]["accepted"] <= busiest[v3_create]["limit"] == 10
    assert all(row["accepted"] <= row["limit"] for row in busiest.values())
    vault = SecretsVault.open(workdir / "demo.vault", DEMO_VAULT_KEY)
    records = list(vault.records())
    assert summary["vault_records"] == len(records) == 24
    assert sorted(record.api_key for record in records) == sorted(keys)
    for record in records:
        assert record.secret().reveal() == emulator.exchange.secret_of(record.api_key)
    families = Counter((record.master_uid, record.api_family) for record in records)
    assert families == {(classic.uid, "v2"): 12, (unified.uid, "v3"): 12}
    for secret in secrets_of(emulator, vault):
        assert secret not in out + err
    assert ESCAPE not in out + err
    assert (workdir / "demo-plan.toml").read_text().startswith("# An example bitget-keys plan")
    assert f"work directory: {workdir}" in err  # the prose goes to stderr with --json


def test_demo_plain_output_in_a_pipe(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    emulators: list[Emulator],
) -> None:
    """Without a terminal: no escape codes, a readable summary, and a vault list that works."""
    workdir = tmp_path / "demo"
    code = main(
        ["demo", "--accounts", "3", "--subaccounts", "2", "--keys", "3", "--workdir", str(workdir)]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert ESCAPE not in out + err
    assert "first apply:   6 sub-accounts and 18 keys created, 0 failed" in out
    # Masters 1 and 3 classic, master 2 unified.
    assert "classic (v2):  2 masters: 4 sub-accounts and 12 keys created;" in out
    assert "unified (v3):  1 master: 2 sub-accounts and 6 keys created;" in out
    assert "second apply:  0 created or modified, 0 create requests" in out
    assert "emulator:      holds 6 sub-accounts and 18 keys" in out
    assert "0 answered 429, 2 refused (2 of them the mode question" in out
    assert ": created" not in out  # in a pipe the demo prints only items that went wrong
    command = next(line for line in out.splitlines() if "list them:" in line)
    vault_path = workdir / "demo.vault"
    assert command.split("list them:")[1].split() == [
        f"BITGET_KEYS_VAULT_KEY={DEMO_VAULT_KEY}",
        "bitget-keys",
        "vault",
        "list",
        "--vault",
        str(vault_path),
    ]
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", DEMO_VAULT_KEY)
    assert main(["vault", "list", "--vault", str(vault_path)]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 18
    (emulator,) = emulators
    vault = SecretsVault.open(vault_path, DEMO_VAULT_KEY)
    for secret in secrets_of(emulator, vault):
        assert secret not in out + err + "\n".join(listed)


def test_demo_refuses_a_workdir_that_holds_a_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], emulators: list[Emulator]
) -> None:
    """An earlier demo's vault is never appended to or overwritten; exit code 78."""
    (tmp_path / "demo.vault").write_text("earlier")
    assert main(["demo", "--workdir", str(tmp_path)]) == 78
    assert "already holds a demo (demo.vault)" in capsys.readouterr().err
    assert (tmp_path / "demo.vault").read_text() == "earlier"
    assert not emulators


@pytest.mark.parametrize("argv", [["--accounts", "0"], ["--subaccounts", "21"], ["--keys", "11"]])
def test_demo_sizes_stay_within_bitget_quotas(argv: list[str]) -> None:
    """Sizes the quotas forbid are refused before anything starts."""
    with pytest.raises(SystemExit) as raised:
        main(["demo", *argv])
    assert raised.value.code == 64


def test_example_plan_is_valid_at_the_largest_size() -> None:
    """The example plan passes the plan checks, up to 20 sub-accounts and 10 keys each."""
    size = DemoSize(accounts=5, subaccounts=20, keys=10)
    environ: dict[str, Any] = {}
    for index in range(1, 6):
        for field in ("API_KEY", "SECRET_KEY", "PASSPHRASE"):
            environ[f"DEMO_MASTER_{index}_{field}"] = f"demo-{field.lower()}-{index}"
    plan = parse_plan(tomllib.loads(example_plan(size)), environ=environ)
    assert len(plan.accounts) == 5
    # One plan for both kinds of master: apply asks each master's mode.
    assert {account.mode for account in plan.accounts} == {PlanMode.AUTO}
    assert [master_mode(index) for index in range(5)] == [
        "classic",
        "unified",
        "classic",
        "unified",
        "classic",
    ]
    assert plan.key_count == 1000
    names = {sub.name for account in plan.accounts for sub in account.subaccounts}
    assert len(names) == 100
    assert subaccount_name(0, 0) == "demoaaaa"
    assert subaccount_name(4, 19) == "demoaeat"
