"""`bitget-keys plan`, `apply` and `vault list` against the emulator over loopback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bitget_keys.cli import main
from bitget_keys.testing import Emulator, EmulatorAccount, Limits

MASTER = EmulatorAccount(
    uid="1000000001",
    api_key="bg_cli_master",
    secret_key="cli-master-secret",
    passphrase="CliMaster1",
)
PLAN = """
[defaults]
ip_list = ["203.0.113.7"]

[[accounts]]
name = "desk-a"
credentials = "env:DESK_A"

[[accounts.subaccounts]]
name = "alphabot"
label = "alpha"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["spot_trade"]

[[accounts.subaccounts.keys]]
label = "read"
permissions = ["read"]
"""


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESK_A_API_KEY", MASTER.api_key)
    monkeypatch.setenv("DESK_A_SECRET_KEY", MASTER.secret_key.reveal())
    monkeypatch.setenv("DESK_A_PASSPHRASE", MASTER.passphrase.reveal())
    monkeypatch.setenv("DESK_A_UID", MASTER.uid)
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", "a long vault passphrase")


async def cli(*argv: str) -> int:
    # The command runs its own event loop, so it runs in a thread beside the emulator's.
    return await asyncio.to_thread(main, list(argv))


@pytest.mark.usefixtures("environment")
async def test_plan_apply_reapply_and_vault(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """plan shows the work, apply does it once, a re-apply creates nothing, vault lists it."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    vault, state = str(tmp_path / "v.vault"), str(tmp_path / "s.state")
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        url = emulator.base_url
        assert await cli("plan", str(plan), "--base-url", url) == 0
        shown = capfd.readouterr().out
        assert "desk-a: create sub-account alpha (alphabot), 2 key(s)" in shown
        assert (
            await cli(
                "apply",
                str(plan),
                "--base-url",
                url,
                "--vault",
                vault,
                "--state",
                state,
                "--json",
                "--yes",
            )
            == 0
        )
        out, err = capfd.readouterr()
        rows = [json.loads(line) for line in out.splitlines()]
        assert {(r["kind"], r["target"], r["status"]) for r in rows} >= {
            ("subaccount", "alpha", "created"),
            ("key", "alpha/trade", "created"),
            ("key", "alpha/read", "created"),
        }
        created = [r["api_key"] for r in rows if r["kind"] == "key"]
        secrets = [emulator.exchange.secret_of(key) or "" for key in created]
        assert all(secrets)
        for secret in [*secrets, MASTER.secret_key.reveal(), MASTER.passphrase.reveal()]:
            assert secret not in out + err
        assert (
            await cli(
                "apply", str(plan), "--base-url", url, "--vault", vault, "--state", state, "--yes"
            )
            == 0
        )
        again = capfd.readouterr().out
        assert "created" not in again
        assert "desk-a: key alpha/read: unchanged" in again
        assert await cli("vault", "list", "--vault", vault) == 0
        listed = capfd.readouterr().out
        assert all(key in listed for key in created)
        assert not any(secret in listed for secret in secrets if secret)
    assert len(emulator.exchange.subaccounts(MASTER.uid)[0]["keys"]) == 2


@pytest.mark.usefixtures("environment")
async def test_invalid_plan_exits_2_and_sends_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every problem is printed with its location; exit code 2."""
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.replace('"alphabot"', '"alpha"').replace('"read"]', '"withdraw"]'))
    async with Emulator([MASTER]) as emulator:
        code = await cli(
            "apply",
            str(plan),
            "--base-url",
            emulator.base_url,
            "--vault",
            str(tmp_path / "v"),
            "--yes",
        )
        assert emulator.audit.accepted == 0
    assert code == 2
    err = capfd.readouterr().err
    assert "accounts[0].subaccounts[0].name: must be exactly 8 English letters" in err
    assert "accounts[0].subaccounts[0].keys[1].permissions[0]" in err
