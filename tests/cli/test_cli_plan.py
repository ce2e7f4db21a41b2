"""
``bitget-keys plan`` as Terraform's: attributes, summary, --json, --detailed-exitcode,
and ``plan --out`` then ``apply FILE``, against the emulator over loopback.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from bitget_keys import _endpoints as ep
from bitget_keys.cli import main
from bitget_keys.cli.plan import print_lines
from bitget_keys.provision.plan_render import Line
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, EmulatorAccount, Limits

MASTER = EmulatorAccount(
    uid="1000000001",
    api_key="bg_plan_master",
    secret_key="plan-master-secret",
    passphrase="PlanMaster1",
    broker=True,
    copy_trader="new",
)
OTHER = EmulatorAccount(
    uid="1000000002",
    api_key="bg_plan_other",
    secret_key="plan-other-secret",
    passphrase="PlanOther22",
)
SUB_UID = "5550001"
SUB_KEY = "bg_broker_sub"
SUB_PASS = "BrokerSub11"
VAULT_KEY = "a long vault passphrase"
PLAN = f"""
[defaults]
ip_list = ["203.0.113.7"]

[[accounts]]
name = "desk-a"
credentials = "env:DESK_A"
copy_api_key = true

[[accounts.subaccounts]]
name = "alphabot"
label = "alpha"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["spot_trade"]

[[accounts.subaccounts.keys]]
label = "read"
permissions = ["read"]
perm_type = "readonly"

[[accounts.broker_keys]]
sub_uid = "{SUB_UID}"
api_key = "{SUB_KEY}"
passphrase = "env:SUB_PASS"
permissions = ["spot_trade", "margin_trade"]
perm_type = "read_and_write"
ip_list = ["203.0.113.9"]

[[accounts]]
name = "desk-b"
credentials = "env:DESK_B"

[[accounts.subaccounts]]
name = "betabots"
label = "beta"

[[accounts.subaccounts.keys]]
label = "only"
permissions = ["read"]
"""


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for prefix, account in (("DESK_A", MASTER), ("DESK_B", OTHER)):
        monkeypatch.setenv(f"{prefix}_API_KEY", account.api_key)
        monkeypatch.setenv(f"{prefix}_SECRET_KEY", account.secret_key.reveal())
        monkeypatch.setenv(f"{prefix}_PASSPHRASE", account.passphrase.reveal())
        monkeypatch.setenv(f"{prefix}_UID", account.uid)
    monkeypatch.setenv("SUB_PASS", SUB_PASS)
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", VAULT_KEY)
    monkeypatch.delenv("NO_COLOR", raising=False)


def seeded(emulator: Emulator) -> Emulator:
    emulator.exchange.add_broker_subaccount(
        MASTER.uid,
        SUB_UID,
        {
            "api_key": SUB_KEY,
            "passphrase": SUB_PASS,
            "permissions": ["spot_trade"],
            "label": "old",
            "perm_type": "readonly",
        },
    )
    return emulator


async def cli(*argv: str) -> int:
    # The command runs its own event loop, so it runs in a thread beside the emulator's.
    return await asyncio.to_thread(main, list(argv))


def changes_sent(emulator: Emulator) -> int:
    """How many creates and modifies (POSTs) the emulator accepted."""
    return sum(
        len(lane.accepted)
        for (_, name), lane in emulator.audit.lanes.items()
        if ep.ENDPOINTS[name].method == "POST"
    )


async def apply_saved(saved: Path, url: str, folder: Path, *extra: str) -> int:
    """``apply SAVED`` with the test's vault and state, and no --yes."""
    files = ("--vault", str(folder / "v"), "--state", str(folder / "s"))
    return await cli("apply", str(saved), "--base-url", url, *files, "--create-vault", *extra)


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN)
    return path


async def test_plan_shows_every_change_with_its_attributes_and_a_summary(
    plan: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Creates with their attributes, a broker key's old -> new, the copy key, in order."""
    async with seeded(Emulator([MASTER, OTHER], limits=Limits(per_uid=False))) as emulator:
        assert await cli("plan", str(plan), "--base-url", emulator.base_url) == 0
        assert emulator.audit.accepted > 0
    out = capfd.readouterr().out
    assert out == (
        "desk-a:\n"
        "  + sub-account alpha\n"
        '      name  = "alphabot"\n'
        '      label = "alpha"\n'
        "  + key alpha/trade\n"
        '      label       = "trade"\n'
        '      permissions = ["spot_trade"]\n'
        "      perm_type   = (Bitget's default)\n"
        '      ip_list     = ["203.0.113.7"]\n'
        "  + key alpha/read\n"
        '      label       = "read"\n'
        '      permissions = ["read"]\n'
        '      perm_type   = "readonly"\n'
        '      ip_list     = ["203.0.113.7"]\n'
        f"  ~ broker key {SUB_UID}/{SUB_KEY}\n"
        '      permissions = ["spot_trade"] -> ["margin_trade", "spot_trade"]\n'
        '      perm_type   = "readonly" -> "read_and_write"\n'
        '      ip_list     = [] -> ["203.0.113.9"]\n'
        "  + copy key\n"
        "desk-b:\n"
        "  + sub-account beta\n"
        '      name  = "betabots"\n'
        '      label = "beta"\n'
        "  + key beta/only\n"
        '      label       = "only"\n'
        '      permissions = ["read"]\n'
        "      perm_type   = (Bitget's default)\n"
        '      ip_list     = ["203.0.113.7"]\n'
        "\n"
        "Plan: 6 to create, 1 to change, 0 to revoke.\n"
    )
    assert SUB_PASS not in out


async def test_plan_json_and_detailed_exit_codes(
    plan: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """--json is one document; --detailed-exitcode: 2 changes, 0 none, 1 an error."""
    vault = str(tmp_path / "v.vault")
    async with seeded(Emulator([MASTER, OTHER], limits=Limits(per_uid=False))) as emulator:
        url = emulator.base_url
        assert await cli("plan", str(plan), "--base-url", url, "--json", "--detailed-exitcode") == 2
        document = json.loads(capfd.readouterr().out)
        assert document["summary"] == {
            "create": 6,
            "change": 1,
            "revoke": 0,
            "orphans": 0,
            "conflicts": 0,
        }
        broker = next(c for c in document["changes"] if c["kind"] == "broker_key")
        assert broker == {
            "account": "desk-a",
            "action": "change",
            "kind": "broker_key",
            "address": f"{SUB_UID}/{SUB_KEY}",
            "attributes": {
                "permissions": {"old": ["spot_trade"], "new": ["margin_trade", "spot_trade"]},
                "perm_type": {"old": "readonly", "new": "read_and_write"},
                "ip_list": {"old": [], "new": ["203.0.113.9"]},
            },
        }
        assert [c["address"] for c in document["changes"] if c["account"] == "desk-a"] == [
            "alpha",
            "alpha/trade",
            "alpha/read",
            f"{SUB_UID}/{SUB_KEY}",
            "copy",
        ]
        apply = ("apply", str(plan), "--base-url", url, "--vault", vault, "--yes", "--create-vault")
        assert await cli(*apply, "--state", str(tmp_path / "s")) == 0
        capfd.readouterr()
        # The vault holds the copy key now: nothing is left to do.
        again = ("plan", str(plan), "--base-url", url, "--vault", vault, "--detailed-exitcode")
        assert await cli(*again) == 0
        out = capfd.readouterr().out
        assert "desk-a: up to date\ndesk-b: up to date\n" in out
        assert out.endswith("\nNo changes. Live state matches the plan.\n")
    # Bitget unreachable: an error is 1 under --detailed-exitcode (2 means changes).
    code = await cli("plan", str(plan), "--base-url", url, "--detailed-exitcode")
    assert code == 1
    assert "Traceback" not in capfd.readouterr().err


async def test_plan_foresees_orphans_of_the_vault_it_is_given(
    plan: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Live keys whose secrets another vault holds are orphans for this one; shown, not counted."""
    async with seeded(Emulator([MASTER, OTHER], limits=Limits(per_uid=False))) as emulator:
        url = emulator.base_url
        apply: tuple[str, ...] = ("apply", str(plan), "--base-url", url, "--yes", "--create-vault")
        apply += ("--state", str(tmp_path / "s"))
        assert await cli(*apply, "--vault", str(tmp_path / "v.vault")) == 0
        SecretsVault.open(tmp_path / "empty.vault", VAULT_KEY)
        capfd.readouterr()
        code = await cli(
            "plan", str(plan), "--base-url", url, "--vault", str(tmp_path / "empty.vault")
        )
        out = capfd.readouterr().out
    assert code == 0
    keys = {
        label: key
        for sub in emulator.exchange.subaccounts(MASTER.uid)
        for label, key in sub["keys"]
    }
    assert f"  ! orphan key alpha/trade ({keys['alpha']}): exists on Bitget" in out
    assert f"  ! orphan key alpha/read ({keys['read']}): exists on Bitget" in out
    # The copy key is in neither vault's records here, so apply with it would make one.
    assert "  + copy key\n" in out
    assert "Plan: 1 to create, 0 to change, 0 to revoke.\n" in out
    assert "Attention: 3 orphan key(s), 0 conflict(s)" in out


async def test_plan_reads_the_default_vault_when_its_key_is_at_hand(
    plan: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """bitget-keys.vault (apply's default) tells the copy key exists; without its key, plan says so."""
    async with seeded(Emulator([MASTER, OTHER], limits=Limits(per_uid=False))) as emulator:
        url = emulator.base_url
        assert await cli("apply", str(plan), "--base-url", url, "--yes", "--create-vault") == 0
        assert (tmp_path / "bitget-keys.vault").exists()
        capfd.readouterr()
        assert await cli("plan", str(plan), "--base-url", url) == 0
        assert capfd.readouterr().out.endswith("\nNo changes. Live state matches the plan.\n")
        monkeypatch.delenv("BITGET_KEYS_VAULT_KEY")
        assert await cli("plan", str(plan), "--base-url", url) == 0
        out, err = capfd.readouterr()
    assert "the vault bitget-keys.vault was not read (BITGET_KEYS_VAULT_KEY is unset)" in err
    # Whether the vault holds the copy key is unknown: it is not claimed as a create.
    assert out.endswith("\nNo changes. Live state matches the plan.\n")


async def test_a_mistyped_vault_is_an_error_not_an_empty_vault(
    plan: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.vault"
    assert (
        await cli("plan", str(plan), "--base-url", "http://127.0.0.1:9", "--vault", str(missing))
        != 0
    )
    assert "no vault here" in capfd.readouterr().err
    assert not missing.exists()


async def test_saved_plan_applies_exactly_what_was_reviewed(
    plan: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """plan --out writes 0600 with no secret; apply FILE needs no --yes and does it all."""
    saved = tmp_path / "reviewed.toml"  # told by its content, whatever its name
    async with seeded(Emulator([MASTER, OTHER], limits=Limits(per_uid=False))) as emulator:
        url = emulator.base_url
        assert await cli("plan", str(plan), "--base-url", url, "--out", str(saved)) == 0
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        text = saved.read_text()
        for secret in (SUB_PASS, VAULT_KEY, MASTER.secret_key.reveal(), MASTER.passphrase.reveal()):
            assert secret not in text
        assert "env:DESK_A" in text
        assert changes_sent(emulator) == 0
        capfd.readouterr()
        code = await apply_saved(saved, url, tmp_path, "--json")
        out, err = capfd.readouterr()
        assert code == 0, err
        assert "applying the saved plan" in err
        rows = {
            (row["kind"], row["target"], row["status"]) for row in map(json.loads, out.splitlines())
        }
        assert rows >= {
            ("subaccount", "alpha", "created"),
            ("key", "alpha/trade", "created"),
            ("key", "alpha/read", "created"),
            ("broker_key", f"{SUB_UID}/{SUB_KEY}", "modified"),
            ("copy_key", "copy", "created"),
            ("subaccount", "beta", "created"),
            ("key", "beta/only", "created"),
        }
        # Applied once, the saved plan no longer matches live state: refused.
        code = await apply_saved(saved, url, tmp_path)
        assert code == 1
        assert "live state changed since the plan was saved" in capfd.readouterr().err


async def test_a_saved_plan_is_refused_when_live_state_moved(
    plan: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Another apply between plan --out and apply FILE: refused, naming what moved; nothing sent."""
    saved = tmp_path / "plan.saved"
    async with seeded(Emulator([MASTER, OTHER], limits=Limits(per_uid=False))) as emulator:
        url = emulator.base_url
        assert await cli("plan", str(plan), "--base-url", url, "--out", str(saved)) == 0
        # Someone applies only desk-b's part meanwhile.
        only_b = tmp_path / "b.toml"
        only_b.write_text(
            PLAN.split("[[accounts]]", maxsplit=1)[0]
            + "[[accounts]]"
            + PLAN.rsplit("[[accounts]]", maxsplit=1)[-1]
        )
        state = ("--state", str(tmp_path / "s"))
        assert (
            await cli(
                "apply",
                str(only_b),
                "--base-url",
                url,
                "--vault",
                str(tmp_path / "o"),
                *state,
                "--yes",
                "--create-vault",
            )
            == 0
        )
        before = changes_sent(emulator)
        capfd.readouterr()
        code = await cli(
            "apply",
            str(saved),
            "--base-url",
            url,
            "--vault",
            str(tmp_path / "v"),
            *state,
            "--create-vault",
        )
        err = capfd.readouterr().err
        assert changes_sent(emulator) == before
    assert code == 1
    assert "bitget-keys: live state changed since the plan was saved" in err
    assert f"review it again with `bitget-keys plan {plan} --out {saved}`" in err
    assert "desk-b: sub-account 'beta' (" in err
    assert ") appeared" in err
    assert "desk-a:" not in err


async def test_a_damaged_saved_plan_is_refused(
    plan: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "plan.saved"
    async with seeded(Emulator([MASTER, OTHER], limits=Limits(per_uid=False))) as emulator:
        url = emulator.base_url
        assert await cli("plan", str(plan), "--base-url", url, "--out", str(saved)) == 0
        # An edit that keeps the JSON valid: another permission for a new key.
        saved.write_text(
            saved.read_text().replace(
                'permissions = [\\"read\\"]', 'permissions = [\\"spot_trade\\"]', 1
            )
        )
        capfd.readouterr()
        code = await apply_saved(saved, url, tmp_path)
        err = capfd.readouterr().err
        assert changes_sent(emulator) == 0
    assert code == 65  # an input file that breaks a rule
    assert "damaged saved plan (its sha256 does not match its content)" in err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stdout", "no_color", "coloured"),
    [
        pytest.param(Terminal, False, True, id="terminal"),
        pytest.param(Terminal, True, False, id="terminal-no-color"),
        pytest.param(io.StringIO, False, False, id="piped"),
    ],
)
def test_colour_only_on_a_terminal_without_no_color(
    monkeypatch: pytest.MonkeyPatch, stdout: type[io.StringIO], no_color: bool, coloured: bool
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    out = stdout()
    monkeypatch.setattr(sys, "stdout", out)
    print_lines([Line("  + key alpha/trade", "green"), Line("Plan: 1 to create.", "bold")])
    text = out.getvalue()
    assert ("\x1b[" in text) is coloured
    assert "  + key alpha/trade" in text
    assert "Plan: 1 to create." in text


async def test_a_saved_plan_never_goes_to_another_master(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    Two empty masters look alike: a plan saved with one master's credentials, applied
    once the same ``env:`` names give the other's, is refused naming both UIDs.
    """
    only_b = tmp_path / "b.toml"
    only_b.write_text(
        PLAN.split("[[accounts]]", maxsplit=1)[0]
        + "[[accounts]]"
        + PLAN.rsplit("[[accounts]]", maxsplit=1)[-1]
    )
    saved = tmp_path / "b.saved"
    async with Emulator([MASTER, OTHER], limits=Limits(per_uid=False)) as emulator:
        url = emulator.base_url
        assert await cli("plan", str(only_b), "--base-url", url, "--out", str(saved)) == 0
        for field, value in (
            ("API_KEY", MASTER.api_key),
            ("SECRET_KEY", MASTER.secret_key.reveal()),
            ("PASSPHRASE", MASTER.passphrase.reveal()),
            ("UID", MASTER.uid),
        ):
            monkeypatch.setenv(f"DESK_B_{field}", value)
        before = changes_sent(emulator)
        capfd.readouterr()
        code = await apply_saved(saved, url, tmp_path)
        err = capfd.readouterr().err
        assert changes_sent(emulator) == before
    assert code == 1
    assert f"master UID {MASTER.uid} (was {OTHER.uid})" in err


@pytest.mark.parametrize("where", ["before", "after", None])
async def test_plain_takes_the_colour_off_plan_on_a_terminal(
    plan: Path, monkeypatch: pytest.MonkeyPatch, where: str | None
) -> None:
    """``--plain`` before or after ``plan`` prints no escape code; without it, colour."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    async with seeded(Emulator([MASTER, OTHER], limits=Limits(per_uid=False))) as emulator:
        argv = ["plan", str(plan), "--base-url", emulator.base_url]
        argv = {"before": ["--plain", *argv], "after": [*argv, "--plain"], None: argv}[where]
        assert await cli(*argv) == 0
    assert "Plan: " in out.getvalue()
    assert ("\x1b[" in out.getvalue()) is (where is None)
    assert "NO_COLOR" not in os.environ  # the command gave the environment back
