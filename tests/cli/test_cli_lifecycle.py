"""
``plan`` as a drift check and ``apply --prune``, over loopback, for classic and unified
masters: drift behind the plan's back exits 2 under ``--detailed-exitcode`` and apply
restores it; ``apply --prune`` lists exactly what it will revoke and asks first.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

import attrs
import pytest

from bitget_keys import Client, ClientConfig, Credentials
from bitget_keys import models as m
from bitget_keys.cli import main
from bitget_keys.cli.exits import ExitCode
from bitget_keys.provision.audit_log import scan_audit_log
from bitget_keys.provision.family import Family, api_of_family
from bitget_keys.testing import Emulator, EmulatorAccount, Limits

MASTER = EmulatorAccount(
    uid="1000000001",
    api_key="bg_drift_master",
    secret_key="drift-master-secret",
    passphrase="DriftMaster1",
)
VAULT_KEY = "a long vault passphrase"
IP = "203.0.113.7"


def plan_text(*subs: str) -> str:
    text = (
        f'[defaults]\nip_list = ["{IP}"]\n\n[[accounts]]\nname = "desk"\ncredentials = "env:DESK"\n'
    )
    for letter in subs:
        text += (
            f'\n[[accounts.subaccounts]]\nname = "{letter * 3}botsx"\nlabel = "sub{letter}"\n'
            '\n[[accounts.subaccounts.keys]]\nlabel = "first"\npermissions = ["spot_trade"]\n'
            '\n[[accounts.subaccounts.keys]]\nlabel = "trade"\npermissions = ["spot_trade"]\n'
        )
    return text


class Terminal(io.StringIO):
    """Stands in for stdin on a terminal: ``isatty()`` is true, reads give typed lines."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DESK_API_KEY", MASTER.api_key)
    monkeypatch.setenv("DESK_SECRET_KEY", MASTER.secret_key.reveal())
    monkeypatch.setenv("DESK_PASSPHRASE", MASTER.passphrase.reveal())
    monkeypatch.setenv("DESK_UID", MASTER.uid)
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", VAULT_KEY)
    monkeypatch.setenv("NO_COLOR", "1")


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


def files(tmp_path: Path) -> tuple[str, ...]:
    return ("--vault", str(tmp_path / "v.vault"), "--state", str(tmp_path / "s.db"))


def owner(family: Family) -> EmulatorAccount:
    return MASTER if family == "v2" else attrs.evolve(MASTER, mode="unified")


async def live_keys(
    emulator: Emulator, family: Family, label: str
) -> list[m.VirtualSubaccountAPIKey]:
    (uid,) = [s["uid"] for s in emulator.exchange.subaccounts(MASTER.uid) if s["label"] == label]
    credentials = Credentials(
        api_key=MASTER.api_key,
        secret_key=MASTER.secret_key,
        passphrase=MASTER.passphrase,
        uid=MASTER.uid,
    )
    async with Client(
        credentials, base_url=emulator.base_url, config=ClientConfig(sync_clock=False)
    ) as client:
        return list(await api_of_family(client, family).list_keys(uid))


@pytest.mark.parametrize("family", ["v2", "v3"])
async def test_plan_detects_drift_with_exit_code_2_and_apply_restores_it(
    tmp_path: Path, family: Family, capfd: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text("a"))
    async with Emulator([owner(family)], limits=Limits(ip_limit=None)) as emulator:
        url = ("--base-url", emulator.base_url)
        assert await cli("apply", str(plan), *url, *files(tmp_path), "--yes", "--create-vault") == 0
        check = (
            "plan",
            str(plan),
            *url,
            "--vault",
            str(tmp_path / "v.vault"),
            "--detailed-exitcode",
        )
        assert await cli(*check) == 0
        capfd.readouterr()
        (trade,) = [k for k in await live_keys(emulator, family, "suba") if k.label == "trade"]
        emulator.exchange.tamper_key(trade.api_key, ip_list=[IP, "198.51.100.50"])
        assert await cli(*check) == 2
        out = capfd.readouterr().out
        assert "  ~ key suba/trade\n" in out
        assert f'      ip_list = ["198.51.100.50", "{IP}"] -> ["{IP}"]\n' in out
        assert out.endswith("Plan: 0 to create, 1 to change, 0 to revoke.\n")
        assert await cli(*check, "--json") == 2
        document = json.loads(capfd.readouterr().out)
        (change,) = document["changes"]
        assert change["attributes"]["ip_list"] == {"old": ["198.51.100.50", IP], "new": [IP]}
        assert await cli("apply", str(plan), *url, *files(tmp_path), "--yes") == 0
        capfd.readouterr()
        assert await cli(*check) == 0
        (trade,) = [k for k in await live_keys(emulator, family, "suba") if k.label == "trade"]
        assert trade.ip_list == (IP,)


@pytest.mark.parametrize("family", ["v2", "v3"])
async def test_apply_prune_lists_what_it_revokes_and_asks_first(
    tmp_path: Path,
    family: Family,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text("a", "b"))
    async with Emulator([owner(family)], limits=Limits(ip_limit=None)) as emulator:
        url = ("--base-url", emulator.base_url)
        assert await cli("apply", str(plan), *url, *files(tmp_path), "--yes", "--create-vault") == 0
        subb = {k.api_key for k in await live_keys(emulator, family, "subb")}
        audit = tmp_path / "s.db.audit.jsonl"
        # Opened before anything was sent; creates only: nothing in it.
        assert audit.read_bytes() == b""
        plan.write_text(plan_text("a"))
        capfd.readouterr()
        # Without --prune the plan's silence about subb changes nothing.
        assert (
            await cli(
                "plan", str(plan), *url, "--vault", str(tmp_path / "v.vault"), "--detailed-exitcode"
            )
            == 0
        )
        shown = ("plan", str(plan), *url, "--vault", str(tmp_path / "v.vault"), "--prune")
        assert await cli(*shown) == 0
        out = capfd.readouterr().out
        assert out.count("  - key subb/") == 2
        how = "neutralise (classic keys cannot be deleted)" if family == "v2" else "delete"
        assert f'how     = "{how}"' in out
        assert out.endswith("Plan: 0 to create, 0 to change, 2 to revoke.\n")
        # No one to ask, and no --yes: refused before anything is sent.
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))
        assert await cli("apply", str(plan), *url, *files(tmp_path), "--prune") == ExitCode.USAGE
        # Asked, and declined: nothing revoked.
        monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
        assert await cli("apply", str(plan), *url, *files(tmp_path), "--prune") == ExitCode.DECLINED
        captured = capfd.readouterr()
        assert "Create, change and revoke the above (2 to revoke)? [y/N]" in captured.err
        assert captured.out.count("  - key subb/") == 2
        assert {k.api_key for k in await live_keys(emulator, family, "subb")} == subb
        monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
        assert await cli("apply", str(plan), *url, *files(tmp_path), "--prune") == 0
        left = await live_keys(emulator, family, "subb")
        if family == "v3":
            assert left == []
        else:
            assert {k.api_key for k in left} == subb
            assert all(not k.permissions for k in left)
        entries = [entry for _, entry in scan_audit_log(audit).entries]
        assert sorted(e.target.split("/")[0] for e in entries) == ["subb", "subb"]
        assert {(e.operation, e.outcome, e.account) for e in entries} == {("revoke", "ok", "desk")}
        # suba is untouched.
        assert len(await live_keys(emulator, family, "suba")) == 2


async def test_a_saved_plan_carries_its_revokes_and_refuses_when_they_moved(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``plan --prune --out``: apply FILE prunes as reviewed, or refuses when keys moved."""
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text("a", "b"))
    saved = tmp_path / "saved.json"
    async with Emulator([owner("v3")], limits=Limits(ip_limit=None)) as emulator:
        url = ("--base-url", emulator.base_url)
        assert await cli("apply", str(plan), *url, *files(tmp_path), "--yes", "--create-vault") == 0
        plan.write_text(plan_text("a"))
        vault = ("--vault", str(tmp_path / "v.vault"))
        assert await cli("plan", str(plan), *url, *vault, "--prune", "--out", str(saved)) == 0
        document = json.loads(saved.read_text())
        revokes = [c for c in document["body"]["changes"] if c["action"] == "revoke"]
        assert [c["attributes"]["how"] for c in revokes] == ["delete", "delete"]
        assert document["body"]["summary"]["revoke"] == 2
        # A key of subb changed behind the plan's back since: the saved plan is refused.
        (one, *_) = await live_keys(emulator, "v3", "subb")
        emulator.exchange.tamper_key(one.api_key, ip_list=["198.51.100.51"])
        capfd.readouterr()
        assert await cli("apply", str(saved), *url, *files(tmp_path)) == ExitCode.FAILED
        assert "live state changed since the plan was saved" in capfd.readouterr().err
        assert len(await live_keys(emulator, "v3", "subb")) == 2
        # Reviewed again and applied as saved: exactly those two are deleted.
        assert await cli("plan", str(plan), *url, *vault, "--prune", "--out", str(saved)) == 0
        assert await cli("apply", str(saved), *url, *files(tmp_path)) == 0
        assert await live_keys(emulator, "v3", "subb") == []
        assert len(await live_keys(emulator, "v3", "suba")) == 2


@pytest.mark.parametrize("family", ["v2", "v3"])
async def test_apply_refuses_a_damaged_audit_log_before_sending_anything(
    tmp_path: Path, family: Family, capfd: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text("a"))
    audit = tmp_path / "s.db.audit.jsonl"
    audit.write_text('{"seq": 1, "torn')
    audit.chmod(0o600)
    async with Emulator([owner(family)], limits=Limits(ip_limit=None)) as emulator:
        url = ("--base-url", emulator.base_url)
        code = await cli("apply", str(plan), *url, *files(tmp_path), "--yes", "--create-vault")
        assert code == ExitCode.INVALID_INPUT
        assert "audit verify" in capfd.readouterr().err
        assert emulator.exchange.subaccounts(owner(family).uid) == []
