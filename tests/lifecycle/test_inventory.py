"""
``bitget-keys inventory`` over loopback: every key of the plan's masters, planned or
not, with its rights, family, age and its source, whether the vault holds its secret,
the policy findings and exit status 6; never a secret.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import time
from pathlib import Path

import attrs
import pytest

from bitget_keys.cli.exits import ExitCode
from bitget_keys.lifecycle.first_seen import FirstSeen
from bitget_keys.lifecycle.rotation_journal import RotationJournal, Step
from bitget_keys.provision.vault import SecretsVault, VaultRecord
from bitget_keys.provision.vault_records import Stage
from bitget_keys.testing import Emulator, Limits
from tests.lifecycle.seeding import (
    CLASSIC,
    HAND_PASSPHRASE,
    PLAN_HEAD,
    UNIFIED,
    VAULT_KEY,
    cli,
    environ,
    hand_made_classic,
    hand_made_unified,
)

PLAN = PLAN_HEAD
DAY = 86_400


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environ(monkeypatch, tmp_path)


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN)
    return path


async def seeded(emulator: Emulator, plan: Path) -> dict[str, str]:
    """The plan applied, then keys and a key-less sub-account made by hand."""
    url = emulator.base_url
    assert await cli("apply", str(plan), "--base-url", url, "--yes", "--create-vault") == 0
    alpha = next(s["uid"] for s in emulator.exchange.subaccounts(CLASSIC.uid))
    made = await hand_made_classic(emulator, alpha)
    made |= {f"u:{k}": v for k, v in (await hand_made_unified(emulator, None)).items()}
    # Made in the web UI: a key that may withdraw, and a sub-account without keys.
    payout = emulator.exchange.add_key(
        CLASSIC.uid,
        alpha,
        label="payout",
        permissions=["spot_trade", "wallet_withdraw"],
        ip_list=["198.51.100.9"],
        passphrase=HAND_PASSPHRASE,
        perm_type="read_and_write",
    )
    made["alpha/payout"] = payout["api_key"]
    emulator.exchange.add_subaccount(CLASSIC.uid, "emptysub", "")
    return made


def secrets_of(emulator: Emulator, *masters: str) -> list[str]:
    return [
        secret
        for uid in masters
        for sub in emulator.exchange.subaccounts(uid)
        for _, api_key in sub["keys"]
        if (secret := emulator.exchange.secret_of(api_key)) is not None
    ]


async def test_inventory_json_csv_findings_and_exit_status(
    plan: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    async with Emulator([CLASSIC, UNIFIED], limits=Limits(per_uid=False)) as emulator:
        made = await seeded(emulator, plan)
        trade = next(
            key
            for sub in emulator.exchange.subaccounts(CLASSIC.uid)
            for label, key in sub["keys"]
            if label == "alpha"  # batch-create gives the first key its sub-account's label
        )
        # The tool saw alpha/manual 100 days ago: older than --max-age 30d.
        with FirstSeen(tmp_path / "bitget-keys.state") as seen:
            seen.backdate({made["alpha/manual"]: time.time() - 100 * DAY})
        capfd.readouterr()
        url = emulator.base_url
        status = await cli("inventory", str(plan), "--base-url", url, "--json", "--max-age", "30d")
        out, _ = capfd.readouterr()
        assert status == ExitCode.FINDINGS
        document = json.loads(out)
        rows = {(r["account"], r["subaccount_label"], r["label"]): r for r in document["keys"]}
        assert rows["desk-c", "alpha", "alpha"] | {"created": None, "age_seconds": None} == {
            "account": "desk-c",
            "family": "v2",
            "master_uid": CLASSIC.uid,
            "subaccount_uid": rows["desk-c", "alpha", "alpha"]["subaccount_uid"],
            "subaccount_name": "alphabot",
            "subaccount_label": "alpha",
            "frozen": False,
            "api_key": trade,
            "label": "alpha",
            "permissions": ["spot_trade"],
            "ip_list": ["203.0.113.7"],
            "perm_type": None,
            "state": "active",
            "created": None,
            "age_seconds": None,
            "age_source": "first_seen",
            "secret": "held",
            "vault_stage": "current",
            "findings": [],
        }
        assert rows["desk-c", "alpha", "alpha"]["age_seconds"] < 3600
        manual = rows["desk-c", "alpha", "manual"]
        assert manual["age_source"] == "first_seen"
        assert 100 * DAY - 3600 < manual["age_seconds"] < 100 * DAY + 3600
        assert manual["secret"] == "absent"
        assert manual["vault_stage"] is None
        assert manual["findings"] == ["too_old", "secret_not_held"]
        assert rows["desk-c", "alpha", "payout"]["findings"] == [
            "withdraw_permission",
            "secret_not_held",
        ]
        assert rows["desk-c", "hand", "bot"]["findings"] == ["empty_whitelist", "secret_not_held"]
        assert rows["desk-c", "hand", "bot"]["ip_list"] == []
        empty = rows["desk-c", "", None]
        assert (empty["api_key"], empty["findings"], empty["age_source"]) == (None, [], "bitget")
        watch = rows["desk-u", "hand", "watch"]
        assert (watch["family"], watch["permissions"]) == ("v3", ["uta_trade"])
        assert document["summary"]["keys"] == 7
        assert document["summary"]["findings"] == {
            "withdraw_permission": 1,
            "empty_whitelist": 2,
            "too_old": 1,
            "secret_not_held": 6,
            "previous_not_revoked": 0,
            "revoked_but_usable": 0,
        }
        # CSV: a header, one row per key and per key-less sub-account.
        assert await cli("inventory", str(plan), "--base-url", url, "--csv") == ExitCode.FINDINGS
        csv_out, _ = capfd.readouterr()
        table = list(csv.DictReader(io.StringIO(csv_out)))
        assert len(table) == 8
        bot = next(r for r in table if r["label"] == "bot")
        assert (bot["permissions"], bot["ip_list"], bot["secret"]) == ("spot_trade", "", "absent")
        assert bot["findings"] == "empty_whitelist secret_not_held"
        # Without the vault, whether a secret is held is unknown, never a finding.
        assert (
            await cli("inventory", str(plan), "--base-url", url, "--json", "--no-vault")
            == ExitCode.FINDINGS
        )
        unknown = json.loads(capfd.readouterr().out)
        assert {row["secret"] for row in unknown["keys"] if row["api_key"]} == {"unknown"}
        assert unknown["summary"]["findings"]["secret_not_held"] == 0
        # The table, plain off a terminal.
        assert await cli("inventory", str(plan), "--base-url", url) == ExitCode.FINDINGS
        text, _ = capfd.readouterr()
        assert "not held (not in vault)" in text
        assert "\x1b[" not in text
        for secret in secrets_of(emulator, CLASSIC.uid, UNIFIED.uid):
            assert secret not in out + csv_out + text


async def test_inventory_exits_0_without_findings(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.split('[[accounts]]\nname = "desk-u"')[0])
    async with Emulator([CLASSIC], limits=Limits(per_uid=False)) as emulator:
        url = emulator.base_url
        assert await cli("apply", str(plan), "--base-url", url, "--yes", "--create-vault") == 0
        capfd.readouterr()
        assert await cli("inventory", str(plan), "--base-url", url, "--csv") == ExitCode.OK
    rows = list(csv.DictReader(io.StringIO(capfd.readouterr().out)))
    assert [(r["label"], r["secret"], r["findings"]) for r in rows] == [("alpha", "held", "")]


async def applied_one_key(plan: Path, url: str) -> tuple[SecretsVault, VaultRecord]:
    """The classic plan applied: its vault (in the working directory) and the one key's record."""
    assert await cli("apply", str(plan), "--base-url", url, "--yes", "--create-vault") == 0
    vault = SecretsVault.open(Path("bitget-keys.vault"), VAULT_KEY)
    (record,) = vault.records()
    return vault, record


async def test_a_key_this_tool_made_is_aged_from_its_vault_record(
    classic_plan: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A classic key stored 100 days ago, first listed today, is 100 days old: too_old."""
    async with Emulator([CLASSIC], limits=Limits(per_uid=False)) as emulator:
        url = emulator.base_url
        vault, record = await applied_one_key(classic_plan, url)
        stored = dt.datetime.now(dt.UTC) - dt.timedelta(days=100)
        vault.append(attrs.evolve(record, created_at=stored.isoformat(timespec="milliseconds")))
        capfd.readouterr()
        args = ("inventory", str(classic_plan), "--base-url", url, "--json", "--max-age", "30d")
        assert await cli(*args) == ExitCode.FINDINGS
    (row,) = json.loads(capfd.readouterr().out)["keys"]
    assert row["age_source"] == "first_seen"
    assert 100 * DAY - 3600 < row["age_seconds"] < 100 * DAY + 3600
    assert row["findings"] == ["too_old"]


UNIFIED_PLAN = (
    PLAN_HEAD.split("[[accounts]]")[0]
    + """[[accounts]]
name = "desk-u"
credentials = "env:UNIFIED"
mode = "unified"

[[accounts.subaccounts]]
name = "omegabot"
label = "omega"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["uta_trade"]
"""
)


async def test_unified_keys_are_aged_by_bitgets_creation_time(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """
    A unified key's age is Bitget's (its listed ``ts``): a key made by hand 100 days
    ago is too old; a frozen sub-account says so; withdraw on any key is a finding;
    after import the key's secret reads as imported, and the vault's stage is shown.
    """
    plan = tmp_path / "plan.toml"
    plan.write_text(UNIFIED_PLAN)
    shift = {"ms": 0}
    async with Emulator(
        [UNIFIED],
        limits=Limits(per_uid=False),
        wall_clock=lambda: time.time_ns() // 1_000_000 + shift["ms"],
    ) as emulator:
        url = emulator.base_url
        assert await cli("apply", str(plan), "--base-url", url, "--yes", "--create-vault") == 0
        exchange = emulator.exchange
        shift["ms"] = -100 * DAY * 1000
        old = exchange.add_subaccount(UNIFIED.uid, "oldtimer", "old")
        stale = exchange.add_key(
            UNIFIED.uid,
            old,
            label="stale",
            permissions=["uta_trade"],
            ip_list=["198.51.100.7"],
            passphrase=HAND_PASSPHRASE,
            perm_type="read_only",
        )
        payout = exchange.add_key(
            UNIFIED.uid,
            old,
            label="payout",
            permissions=["uta_trade", "withdraw"],
            ip_list=["198.51.100.8"],
            passphrase=HAND_PASSPHRASE,
            perm_type="read_write",
        )
        shift["ms"] = 0
        exchange.set_frozen(UNIFIED.uid, old, True)
        assert await cli("import", str(plan), "--base-url", url, "--out", str(plan)) == 0
        # Imported whole, frozen included: plan has nothing to change.
        assert await cli("plan", str(plan), "--base-url", url, "--detailed-exitcode") == 0
        # omega/trade was replaced by a rotation whose grace ended an hour ago.
        vault = SecretsVault.open(tmp_path / "bitget-keys.vault", VAULT_KEY)
        trade = next(r for r in vault.records() if r.label == "trade")
        vault.append(trade.staged(Stage.PREVIOUS))
        with contextlib.closing(RotationJournal(tmp_path / "bitget-keys.state")) as journal:
            rotation = journal.start(
                "desk-u", UNIFIED.uid, trade.subaccount_uid or "", "omega/trade", "trade", "v3",
                trade.api_key, 3600.0,
            )  # fmt: skip
            journal.advance(rotation, Step.PROMOTED, grace_until=time.time() - 3600)
        capfd.readouterr()
        status = await cli("inventory", str(plan), "--base-url", url, "--json", "--max-age", "30d")
        out, _ = capfd.readouterr()
    assert status == ExitCode.FINDINGS
    rows = {row["label"]: row for row in json.loads(out)["keys"]}
    assert rows["trade"]["age_source"] == "bitget"
    assert rows["trade"]["age_seconds"] < 3600
    assert rows["trade"]["findings"] == ["previous_not_revoked"]
    assert rows["trade"]["vault_stage"] == "previous"
    assert rows["trade"]["perm_type"] == "read_write"
    stale_row = rows["stale"]
    assert stale_row["api_key"] == stale["api_key"]
    assert (stale_row["family"], stale_row["frozen"], stale_row["perm_type"]) == (
        "v3",
        True,
        "read_only",
    )
    assert stale_row["age_source"] == "bitget"
    assert 100 * DAY - 3600 < stale_row["age_seconds"] < 100 * DAY + 3600
    # Imported: in the vault without its secret.
    assert (stale_row["secret"], stale_row["vault_stage"]) == ("imported", "current")
    assert stale_row["findings"] == ["too_old", "secret_not_held"]
    # withdraw has no plan name: not imported, so not in the vault at all.
    assert rows["payout"]["api_key"] == payout["api_key"]
    assert (rows["payout"]["secret"], rows["payout"]["vault_stage"]) == ("absent", None)
    assert rows["payout"]["findings"] == ["withdraw_permission", "too_old", "secret_not_held"]
    assert stale["secret_key"] not in out
    assert payout["secret_key"] not in out


@pytest.fixture
def classic_plan(tmp_path: Path) -> Path:
    path = tmp_path / "classic.toml"
    path.write_text(PLAN.split('[[accounts]]\nname = "desk-u"')[0])
    return path


async def test_a_neutralised_key_is_shown_so_and_is_neither_a_finding_nor_imported(
    classic_plan: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A classic key stripped of its rights and bound to 192.0.2.1 was revoked."""
    plan = classic_plan
    async with Emulator([CLASSIC], limits=Limits(per_uid=False)) as emulator:
        url = emulator.base_url
        assert await cli("apply", str(plan), "--base-url", url, "--yes", "--create-vault") == 0
        alpha = next(s["uid"] for s in emulator.exchange.subaccounts(CLASSIC.uid))
        revoked = emulator.exchange.add_key(
            CLASSIC.uid,
            alpha,
            label="retired",
            permissions=["spot_trade", "wallet_withdraw"],
            ip_list=[],
            passphrase=HAND_PASSPHRASE,
        )
        emulator.exchange.tamper_key(revoked["api_key"], permissions=[], ip_list=["192.0.2.1"])
        capfd.readouterr()
        assert await cli("inventory", str(plan), "--base-url", url, "--json") == ExitCode.OK
        rows = {row["label"]: row for row in json.loads(capfd.readouterr().out)["keys"]}
        assert (rows["retired"]["state"], rows["retired"]["findings"]) == ("neutralised", [])
        assert rows["retired"]["ip_list"] == ["192.0.2.1"]
        assert await cli("import", str(plan), "--base-url", url, "--json") == 0
        document = json.loads(capfd.readouterr().out)
    assert (document["keys"], document["subaccounts"], document["recorded"]) == ([], [], [])


async def test_a_revoked_key_that_bitget_lists_usable_is_a_finding(
    classic_plan: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Neutralised by a rotation, then given its rights back behind the plan's back."""
    async with Emulator([CLASSIC], limits=Limits(per_uid=False)) as emulator:
        url = emulator.base_url
        vault, record = await applied_one_key(classic_plan, url)
        vault.append(record.staged(Stage.REVOKED, revoked_how="neutralised"))
        emulator.exchange.tamper_key(record.api_key, permissions=[], ip_list=["192.0.2.1"])
        capfd.readouterr()
        assert await cli("inventory", str(classic_plan), "--base-url", url, "--json") == ExitCode.OK
        (row,) = json.loads(capfd.readouterr().out)["keys"]
        assert (row["state"], row["findings"]) == ("neutralised", [])
        emulator.exchange.tamper_key(
            record.api_key, permissions=["spot_trade"], ip_list=["203.0.113.7"]
        )
        assert (
            await cli("inventory", str(classic_plan), "--base-url", url, "--json")
            == ExitCode.FINDINGS
        )
        (row,) = json.loads(capfd.readouterr().out)["keys"]
    assert (row["state"], row["findings"]) == ("revoked", ["revoked_but_usable"])


async def test_without_a_vault_key_secrets_are_unknown_and_a_missing_vault_is_named(
    classic_plan: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    async with Emulator([CLASSIC], limits=Limits(per_uid=False)) as emulator:
        url = emulator.base_url
        assert (
            await cli("apply", str(classic_plan), "--base-url", url, "--yes", "--create-vault") == 0
        )
        capfd.readouterr()
        monkeypatch.delenv("BITGET_KEYS_VAULT_KEY")
        assert await cli("inventory", str(classic_plan), "--base-url", url, "--json") == 0
        out, err = capfd.readouterr()
        assert [row["secret"] for row in json.loads(out)["keys"]] == ["unknown"]
        assert "was not read (BITGET_KEYS_VAULT_KEY is unset)" in err
        monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", "a long vault passphrase")
        missing = ("--vault", "elsewhere.vault")
        assert await cli("inventory", str(classic_plan), "--base-url", url, *missing) == 66
        assert "--no-vault" in capfd.readouterr().err
