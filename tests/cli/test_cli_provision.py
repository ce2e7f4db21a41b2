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
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # apply's default state file is relative: keep it out of the checkout.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DESK_A_API_KEY", MASTER.api_key)
    monkeypatch.setenv("DESK_A_SECRET_KEY", MASTER.secret_key.reveal())
    monkeypatch.setenv("DESK_A_PASSPHRASE", MASTER.passphrase.reveal())
    monkeypatch.setenv("DESK_A_UID", MASTER.uid)
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", "a long vault passphrase")


def names_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


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
        assert 'desk-a:\n  + sub-account alpha\n      name  = "alphabot"\n' in shown
        assert shown.endswith("\nPlan: 3 to create, 0 to change, 0 to revoke.\n")
        assert (
            await cli(
                "apply",
                str(plan),
                "--base-url",
                url,
                "--vault",
                vault,
                "--create-vault",
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
async def test_invalid_plan_exits_65_and_sends_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Every problem is printed with its location; exit code 65 (invalid input)."""
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
    assert code == 65
    # The plan is checked before the vault's and state's locks are taken.
    assert names_in(tmp_path) == ["plan.toml"]
    err = capfd.readouterr().err
    assert "accounts[0].subaccounts[0].name: must be exactly 8 English letters" in err
    assert "accounts[0].subaccounts[0].keys[1].permissions[0]" in err


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize(
    ("text", "location", "rule"),
    [
        pytest.param(
            PLAN.replace('permissions = ["read"]', 'permissions = ["read"]\nperm_type = 5'),
            "accounts[0].subaccounts[0].keys[1].perm_type",
            "must be a string, not int",
            id="perm-type-int",
        ),
        pytest.param(
            PLAN.replace("[defaults]\n", "[defaults]\nperm_type = 5\n"),
            "defaults.perm_type",
            "must be a string, not int",
            id="default-perm-type-int",
        ),
        pytest.param(
            PLAN.replace(
                'permissions = ["spot_trade"]', 'permissions = ["read"]\nperm_type = "readonly"'
            ),
            "accounts[0].subaccounts[0].keys[0].perm_type",
            "the first key is created with its sub-account by batch-create",
            id="first-key-perm-type",
        ),
        pytest.param(
            'accounts = "desk-a"\n', "accounts", "must be an array of tables", id="top-level"
        ),
    ],
)
@pytest.mark.parametrize("command", ["plan", "apply"])
async def test_plan_mistakes_exit_65_with_their_location(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    command: str,
    text: str,
    location: str,
    rule: str,
) -> None:
    """Wrong types and misplaced settings are located problems (exit 65), never tracebacks."""
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    async with Emulator([MASTER]) as emulator:
        extra = ["--vault", str(tmp_path / "v"), "--yes"] if command == "apply" else []
        code = await cli(command, str(plan), "--base-url", emulator.base_url, *extra)
        assert emulator.audit.accepted == 0
    err = capfd.readouterr().err
    assert code == 65, err
    assert f"\n  {location}: {rule}" in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize("command", ["plan", "apply"])
async def test_a_plan_that_is_not_utf8_exits_65(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], command: str
) -> None:
    """A plan saved in another encoding is named with the rule it breaks; nothing is sent."""
    plan = tmp_path / "plan.toml"
    plan.write_bytes(PLAN.replace('"alpha"', '"alph\xe4"').encode("latin-1"))
    extra = ["--vault", str(tmp_path / "v"), "--yes"] if command == "apply" else []
    assert await cli(command, str(plan), "--base-url", "http://127.0.0.1:9", *extra) == 65
    err = capfd.readouterr().err
    assert f"{plan}: not UTF-8 text" in err
    assert "Traceback" not in err


async def test_the_plan_preview_escapes_names_and_labels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Names and labels that bypassed plan checks (a library caller's specs) print escaped."""
    from bitget_keys import Client, ClientConfig
    from bitget_keys.cli.plan import show_changes as _show_changes
    from bitget_keys.provision.plan import AccountSpec, KeySpec, Plan, SubaccountSpec
    from bitget_keys.testing import Unpaced

    key = KeySpec(label="k\nfake", permissions=(), ip_list=())
    plan = Plan(
        accounts=(
            AccountSpec(
                name="desk-a\ndesk-z: up to date",
                credentials=MASTER.credentials,
                copy_api_key=True,
                subaccounts=(SubaccountSpec(name="alphabot", label="a\u202e\x1b[2J", keys=(key,)),),
            ),
        )
    )
    emulator = Emulator([MASTER], limits=Limits(per_uid=False))
    config = ClientConfig(sync_clock=False)
    async with Client(
        MASTER.credentials, transport=emulator.transport(), scheduler=Unpaced(), config=config
    ) as client:
        assert await _show_changes(plan, lambda _: client, vaulted_copy_keys=())
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "desk-a\\ndesk-z: up to date:",
        "  + sub-account a\\u202e\\x1b[2J",
        '      name  = "alphabot"',
        # Quoted as JSON: the escape character is \u001b there, escaped all the same.
        '      label = "a\\u202e\\u001b[2J"',
        "  + key a\\u202e\\x1b[2J/k\\nfake",
        '      label       = "k\\nfake"',
        "      permissions = []",
        "      perm_type   = (Bitget's default)",
        "      ip_list     = []",
        "  + copy key",
        "",
        "Plan: 3 to create, 0 to change, 0 to revoke.",
    ]


@pytest.mark.usefixtures("environment")
async def test_plan_names_each_account_pinned_to_the_wrong_mode_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """
    A pinned mode its master refutes is the plan's mistake: plan shows the other
    accounts, then names every such account at its ``mode`` line (exit 65), not a bare
    40084 without the account's name.
    """
    unified = EmulatorAccount(
        uid="1000000002",
        api_key="bg_cli_unified",
        secret_key="cli-unified-secret",
        passphrase="CliUnified2",
        mode="unified",
    )
    monkeypatch.setenv("DESK_B_API_KEY", unified.api_key)
    monkeypatch.setenv("DESK_B_SECRET_KEY", unified.secret_key.reveal())
    monkeypatch.setenv("DESK_B_PASSPHRASE", unified.passphrase.reveal())
    text = PLAN.replace(
        'credentials = "env:DESK_A"', 'credentials = "env:DESK_A"\nmode = "unified"'
    )
    second = PLAN.split("[[accounts]]", 1)[1]
    text += "\n[[accounts]]" + second.replace('"desk-a"', '"desk-b"').replace(
        "env:DESK_A", "env:DESK_B"
    ).replace("alphabot", "betabots")
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    async with Emulator([MASTER, unified], limits=Limits(per_uid=False)) as emulator:
        code = await cli("plan", str(plan), "--base-url", emulator.base_url)
        assert emulator.exchange.subaccounts(MASTER.uid) == []
    out, err = capfd.readouterr()
    assert code == 65, err
    assert 'desk-b:\n  + sub-account alpha\n      name  = "betabots"\n' in out
    assert (
        '  accounts[0].mode: the plan pins mode = "unified" for desk-a, but this master is '
        "classic (Bitget: 40084, "
    ) in err
    assert 'pin mode = "classic" or leave mode out (line 8)' in err
    assert "Traceback" not in err


@pytest.mark.usefixtures("environment")
async def test_plan_names_the_account_whose_mode_cannot_be_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A master that refuses the key (wrong secret) is named, not just Bitget's code."""
    monkeypatch.setenv("DESK_A_SECRET_KEY", "not-the-right-secret")
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        code = await cli("plan", str(plan), "--base-url", emulator.base_url)
    out, err = capfd.readouterr()
    assert code == 78
    assert "desk-a: its mode could not be told: " in err
    assert "40009" in err
    assert "not-the-right-secret" not in out + err
