"""
``bitget-keys import`` over loopback, on a classic and a unified master: keys made by
hand become plan entries that reproduce them (plan then shows no change), vault records
without a secret, and journal entries; a second import adds nothing.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from bitget_keys.provision.audit_chain import scan_audit_log
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, Limits
from tests.lifecycle.seeding import (
    CLASSIC,
    PLAN_HEAD,
    UNIFIED,
    VAULT_KEY,
    cli,
    environ,
    hand_made_classic,
    hand_made_unified,
)

PLAN = (
    PLAN_HEAD
    + """mode = "unified"

[[accounts.subaccounts]]
name = "omegabot"
label = "omega"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["uta_trade"]
"""
)


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environ(monkeypatch, tmp_path)


def uid_of(emulator: Emulator, master_uid: str, label: str) -> str:
    uid: str = next(
        s["uid"] for s in emulator.exchange.subaccounts(master_uid) if s["label"] == label
    )
    return uid


async def applied(emulator: Emulator, plan: Path) -> None:
    url = emulator.base_url
    assert await cli("apply", str(plan), "--base-url", url, "--yes", "--create-vault") == 0


async def test_import_then_plan_shows_no_change_in_both_modes(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    async with Emulator([CLASSIC, UNIFIED], limits=Limits(per_uid=False)) as emulator:
        await applied(emulator, plan)
        made = await hand_made_classic(emulator, uid_of(emulator, CLASSIC.uid, "alpha"))
        made |= {
            f"u:{k}": v
            for k, v in (
                await hand_made_unified(emulator, uid_of(emulator, UNIFIED.uid, "omega"))
            ).items()
        }
        capfd.readouterr()
        url = emulator.base_url
        assert await cli("import", str(plan), "--base-url", url, "--out", str(plan)) == 0
        out, err = capfd.readouterr()
        assert out == ""
        assert "imported 2 sub-account(s) and 6 key(s)" in err
        assert "bitget-keys rotate" in err
        text = plan.read_text()
        # The plan's own text and comments are kept, the entries added in their places.
        kept = iter(text.splitlines())
        assert all(line in kept for line in PLAN.splitlines())
        assert "# The planned classic sub-account." in text
        data = tomllib.loads(text)
        desk_c, desk_u = data["accounts"]
        assert desk_c["subaccounts"][0]["keys"][1] == {
            "label": "manual",
            "permissions": ["spot_trade", "margin_trade"],
            "ip_list": ["198.51.100.4"],
        }
        assert desk_c["subaccounts"][1] == {
            "name": "handmade",
            "label": "hand",
            "keys": [
                {
                    "label": "hand",
                    "permissions": ["read"],
                    "ip_list": ["198.51.100.5", "198.51.100.6"],
                },
                {"label": "bot", "permissions": ["spot_trade"], "ip_list": []},
            ],
        }
        assert desk_u["subaccounts"][0]["keys"][1] == {
            "label": "manual",
            "permissions": ["uta_trade"],
            "ip_list": ["198.51.100.4"],
        }
        hand_u = desk_u["subaccounts"][1]
        # Bitget masks a unified name: a stand-in begins with what it shows.
        assert hand_u["name"].startswith("han")
        assert hand_u["name"] != "handsome"
        assert "stand-in" in text
        assert hand_u["keys"] == [
            {"label": "watch", "permissions": ["read"], "ip_list": ["198.51.100.5"]},
            {"label": "admin", "permissions": ["uta_trade", "uta_mgt"], "ip_list": []},
        ]
        # Plan now shows no change; the imported keys are no orphans.
        assert await cli("plan", str(plan), "--base-url", url, "--detailed-exitcode") == 0
        assert "No changes." in capfd.readouterr().out
        # The vault holds each imported key without a secret.
        vault = SecretsVault.open(tmp_path / "bitget-keys.vault", VAULT_KEY)
        records = {r.api_key: r for r in vault.records()}
        for api_key in made.values():
            assert not records[api_key].held
            assert records[api_key].stage == "current"
        with Journal(tmp_path / "bitget-keys.state") as journal:
            imported = [e for e in journal.entries() if e.kind == "import"]
        assert {e.api_key for e in imported} == set(made.values())
        audit_path = tmp_path / "bitget-keys.state.audit.jsonl"
        scan = scan_audit_log(audit_path)
        assert scan.check.ok
        logged = [entry for _, entry in scan.entries if entry.operation == "import"]
        # Each says what this import did: the entries were written to the plan.
        assert {(e.account, e.target, e.outcome, e.detail.split(": ", 1)[1]) for e in logged} == {
            (*row, f"added to the plan {plan}")
            for row in {
                ("desk-c", "alpha/manual", "ok"),
                ("desk-c", "hand/hand", "ok"),
                ("desk-c", "hand/bot", "ok"),
                ("desk-u", "omega/manual", "ok"),
                ("desk-u", "hand/watch", "ok"),
                ("desk-u", "hand/admin", "ok"),
            }
        }
        # A second import adds nothing.
        count = len(vault.scan().entries)
        assert await cli("import", str(plan), "--base-url", url, "--out", str(plan)) == 0
        assert plan.read_text() == text
        assert (
            len(SecretsVault.open(tmp_path / "bitget-keys.vault", VAULT_KEY).scan().entries)
            == count
        )
        assert "nothing to import" in capfd.readouterr().err
        assert len(scan_audit_log(audit_path).entries) == len(scan.entries)
        for api_key in made.values():
            secret = emulator.exchange.secret_of(api_key)
            assert secret is not None
            assert secret not in text


async def test_import_prints_entries_and_names_what_it_cannot_plan(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """
    Without --out the entries are printed; an auto account on a unified master can't
    plan uta_mgt (classic rules), which is named; --json is one document.
    """
    plan = tmp_path / "plan.toml"
    defaults, _, desk_u = PLAN_HEAD.split("[[accounts]]")
    plan.write_text(f"{defaults}[[accounts]]{desk_u}")  # desk-u alone, mode auto
    async with Emulator([UNIFIED], limits=Limits(per_uid=False)) as emulator:
        made = await hand_made_unified(emulator, None)
        url = emulator.base_url
        assert await cli("import", str(plan), "--base-url", url, "--create-vault", "--json") == 0
        out, err = capfd.readouterr()
        for api_key in made.values():
            secret = emulator.exchange.secret_of(api_key)
            assert secret is not None
            assert secret not in out + err
        document = json.loads(out)
    assert plan.read_text().count("[[accounts") == 1
    (sub,) = document["subaccounts"]
    assert sub["label"] == "hand"
    assert [k["label"] for k in sub["keys"]] == ["watch"]
    (note,) = document["notes"]
    assert note["address"] == "hand/admin"
    assert document["recorded"] == [made["hand/watch"]]
    assert "[[accounts.subaccounts]]" in document["toml"]
    assert tomllib.loads(document["toml"])["accounts"]["subaccounts"][0]["keys"][0] == {
        "label": "watch",
        "permissions": ["read"],
        "ip_list": ["198.51.100.5"],
    }
