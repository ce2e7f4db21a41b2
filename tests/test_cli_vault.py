"""`vault show` and `vault export`, the vault key prompt, and apply's confirmation."""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import json
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from bitget_keys import _endpoints as ep
from bitget_keys._vault import SecretsVault, VaultRecord
from bitget_keys.cli import main
from bitget_keys.testing import Emulator, EmulatorAccount, Limits

KEY = "a long vault passphrase"
MASTER = EmulatorAccount(
    uid="1000000001",
    api_key="bg_vault_master",
    secret_key="vault-master-secret",
    passphrase="VaultMaster1",
)
PLAN = """
[[accounts]]
name = "desk-a"
credentials = "env:DESK_A"

[[accounts.subaccounts]]
name = "alphabot"
label = "alpha"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["spot_trade"]
ip_list = ["203.0.113.7"]

[[accounts.subaccounts.keys]]
label = "read"
permissions = ["read"]
ip_list = ["203.0.113.8"]
"""
CREATE_LINE = "desk-a: create sub-account alpha (alphabot), 2 key(s)"


class Terminal(io.StringIO):
    """Stands in for stdin on a terminal: ``isatty()`` is true, reads give typed lines."""

    def isatty(self) -> bool:
        return True


@attrs.frozen
class Provisioned:
    """A vault filled by a real apply against the emulator."""

    vault: Path
    records: tuple[VaultRecord, ...]
    #: Every secret key and passphrase in the vault, in clear.
    secrets: tuple[str, ...]

    def record(self, label: str) -> VaultRecord:
        return next(r for r in self.records if r.qualified_label == label)


def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan's master credentials and the vault key, in the environment."""
    monkeypatch.setenv("DESK_A_API_KEY", MASTER.api_key)
    monkeypatch.setenv("DESK_A_SECRET_KEY", MASTER.secret_key.reveal())
    monkeypatch.setenv("DESK_A_PASSPHRASE", MASTER.passphrase.reveal())
    monkeypatch.setenv("DESK_A_UID", MASTER.uid)
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", KEY)


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    environment(monkeypatch)
    path = tmp_path / "plan.toml"
    path.write_text(PLAN)
    return path


async def cli(*argv: str) -> int:
    # The command runs its own event loop, so it runs in a thread beside the emulator's.
    return await asyncio.to_thread(main, list(argv))


def apply_args(plan: Path, emulator: Emulator, *extra: str) -> list[str]:
    directory = plan.parent
    return [
        "apply",
        str(plan),
        "--base-url",
        emulator.base_url,
        "--vault",
        str(directory / "keys.vault"),
        "--state",
        str(directory / "keys.state"),
        *extra,
    ]


def changes_sent(emulator: Emulator) -> list[str]:
    """The endpoints that accepted a POST (a create or a modify)."""
    return sorted(
        name
        for (_, name), lane in emulator.audit.lanes.items()
        if lane.accepted and ep.ENDPOINTS[name].method == "POST"
    )


async def _provision(directory: Path) -> Path:
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        plan = directory / "plan.toml"
        plan.write_text(PLAN)
        assert await cli(*apply_args(plan, emulator, "--yes")) == 0
        vault = directory / "keys.vault"
        for record in SecretsVault.open(vault, KEY).records():
            assert record.secret_key.reveal() == emulator.exchange.secret_of(record.api_key)
    return vault


@pytest.fixture(scope="module")
def provisioned_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real apply against the emulator per module (it takes seconds of pacing)."""
    with pytest.MonkeyPatch.context() as patch:
        environment(patch)
        return asyncio.run(_provision(tmp_path_factory.mktemp("provisioned")))


@pytest.fixture
def provisioned(
    provisioned_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Provisioned:
    """A copy of the provisioned vault, its key in the environment."""
    environment(monkeypatch)
    vault = tmp_path / "keys.vault"
    shutil.copy2(provisioned_vault, vault)
    records = tuple(SecretsVault.open(vault, KEY).records())
    assert len(records) == 2
    secrets = tuple(
        value.reveal()
        for record in records
        for value in (record.secret_key, record.passphrase)
        if value is not None
    )
    return Provisioned(vault, records, secrets)


def assert_no_secret(text: str, provisioned: Provisioned) -> None:
    leaked = [secret for secret in provisioned.secrets if secret in text]
    assert not leaked, f"{len(leaked)} secret(s) printed"


@attrs.define
class Prompts:
    """What getpass will answer, and the prompts it was called with."""

    answers: list[str] = attrs.Factory(list)
    asked: list[str] = attrs.Factory(list)


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Prompts]:
    """
    No vault key in the environment, stdin a terminal, getpass answering from a list.

    Request it after `plan` or `provisioned`, which put the key in the environment.
    """
    monkeypatch.delenv("BITGET_KEYS_VAULT_KEY", raising=False)
    prompts = Prompts()

    def fake_getpass(prompt: str = "Password: ", stream: object = None) -> str:
        prompts.asked.append(prompt)
        return prompts.answers.pop(0)

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    monkeypatch.setattr(sys, "stdin", Terminal(""))
    yield prompts
    assert not prompts.answers, "not every prepared answer was asked for"


# -- vault show ---------------------------------------------------------------------


def test_show_masks_secrets_without_reveal(
    provisioned: Provisioned, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without --reveal, show prints the record with ******** and no secret at all."""
    trade = provisioned.record("alphabot/trade")
    assert main(["vault", "show", "alphabot/trade", "--vault", str(provisioned.vault)]) == 0
    out, err = capfd.readouterr()
    assert_no_secret(out + err, provisioned)
    assert trade.api_key in out
    assert "secret_key:       ********" in out
    assert "passphrase:       ********" in out
    assert "subaccount_name:  alphabot" in out
    assert "ip_list:          203.0.113.7" in out
    assert (
        main(["vault", "show", "alphabot/trade", "--vault", str(provisioned.vault), "--json"]) == 0
    )
    out, err = capfd.readouterr()
    assert_no_secret(out + err, provisioned)
    shown = json.loads(out)
    assert shown["secret_key"] == shown["passphrase"] == "********"
    assert shown == trade.to_dict()


def test_show_reveal_prints_the_secret_and_passphrase(
    provisioned: Provisioned, capfd: pytest.CaptureFixture[str]
) -> None:
    """With --reveal, show prints the secret key and passphrase in clear, text or JSON."""
    trade = provisioned.record("alphabot/trade")
    secret, passphrase = trade.secret_key.reveal(), trade.passphrase
    assert passphrase is not None
    vault = str(provisioned.vault)
    assert main(["vault", "show", "alphabot/trade", "--vault", vault, "--reveal"]) == 0
    out = capfd.readouterr().out
    assert f"secret_key:       {secret}" in out
    assert f"passphrase:       {passphrase.reveal()}" in out
    assert main(["vault", "show", "alphabot/trade", "--vault", vault, "--reveal", "--json"]) == 0
    shown = json.loads(capfd.readouterr().out)
    assert shown["secret_key"] == secret
    assert shown["passphrase"] == passphrase.reveal()
    # The other key's secrets stay out of it.
    other = provisioned.record("alphabot/read").secret_key.reveal()
    assert other not in out


def test_show_by_api_key_and_by_account(
    provisioned: Provisioned, capfd: pytest.CaptureFixture[str]
) -> None:
    """An API key selects its record; --account narrows to one plan account."""
    read = provisioned.record("alphabot/read")
    vault = str(provisioned.vault)
    assert main(["vault", "show", read.api_key, "--vault", vault, "--json"]) == 0
    assert json.loads(capfd.readouterr().out)["label"] == "read"
    assert main(["vault", "show", "alphabot/read", "--vault", vault, "--account", "desk-a"]) == 0
    capfd.readouterr()
    assert main(["vault", "show", "alphabot/read", "--vault", vault, "--account", "desk-b"]) == 1
    out, err = capfd.readouterr()
    assert out == ""
    assert "'alphabot/read'" in err
    assert "'desk-b'" in err


def test_show_by_the_plans_labels(
    provisioned: Provisioned, capfd: pytest.CaptureFixture[str]
) -> None:
    """SUB-LABEL/KEY, as the plan and apply's output name a key, finds the same record."""
    vault = str(provisioned.vault)
    assert main(["vault", "show", "alpha/trade", "--vault", vault, "--json"]) == 0
    by_plan = json.loads(capfd.readouterr().out)
    assert main(["vault", "show", "alphabot/trade", "--vault", vault, "--json"]) == 0
    assert json.loads(capfd.readouterr().out) == by_plan
    assert by_plan["subaccount_label"] == "alpha"
    assert by_plan["secret_key"] == "********"


def test_show_unknown_label_exits_1_and_names_it(
    provisioned: Provisioned, capfd: pytest.CaptureFixture[str]
) -> None:
    """A label no record has exits 1, naming it."""
    assert main(["vault", "show", "alpha/nothing", "--vault", str(provisioned.vault)]) == 1
    out, err = capfd.readouterr()
    assert out == ""
    assert "no key 'alpha/nothing'" in err
    assert str(provisioned.vault) in err
    assert "SUBACCOUNT/KEY" in err


def test_show_ambiguous_label_exits_2_and_lists_the_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Two traders' copy keys are both "copy": exit 2 listing both; --account picks one."""
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", KEY)
    path = tmp_path / "keys.vault"
    vault = SecretsVault.open(path, KEY)
    for account, number in (("desk-a", 1), ("desk-b", 2)):
        vault.append(
            VaultRecord(
                kind="copy_key",
                account=account,
                master_uid=f"100000000{number}",
                api_key=f"bg_copy_{number}",
                secret_key=f"CopySecretValue{number}",
                passphrase=f"CopyPassphrase{number}",
                label="copy",
            )
        )
    assert main(["vault", "show", "copy", "--vault", str(path), "--reveal"]) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert "'copy' matches 2 keys" in err
    assert "bg_copy_1" in err
    assert "bg_copy_2" in err
    assert "CopySecretValue" not in err
    assert "CopyPassphrase" not in err
    assert main(["vault", "show", "copy", "--vault", str(path), "--account", "desk-b"]) == 0
    out = capfd.readouterr().out
    assert "bg_copy_2" in out
    assert "bg_copy_1" not in out
    assert "CopySecretValue2" not in out


def test_reading_a_missing_vault_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """list, show and export refuse a vault that does not exist, and leave no file."""
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", KEY)
    path = tmp_path / "absent.vault"
    for argv in (
        ["vault", "list", "--vault", str(path)],
        ["vault", "show", "x/y", "--vault", str(path)],
        ["vault", "export", "--vault", str(path), "--reveal"],
    ):
        assert main(argv) == 2
        assert "no vault here" in capfd.readouterr().err
    assert not path.exists()


# -- vault export -------------------------------------------------------------------


@pytest.mark.parametrize("form", ["json", "csv"])
def test_export_round_trip_to_a_private_file(
    provisioned: Provisioned, form: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """export --output writes a 0600 file whose secrets are the vault's; nothing is printed."""
    output = provisioned.vault.parent / f"export.{form}"
    argv = ["vault", "export", "--vault", str(provisioned.vault), "--output", str(output)]
    assert main([*argv, "--format", form]) == 0
    out, err = capfd.readouterr()
    assert_no_secret(out + err, provisioned)
    assert "exported 2 key(s)" in err
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    text = output.read_text()
    rows = json.loads(text) if form == "json" else list(csv.DictReader(io.StringIO(text)))
    assert [row["api_key"] for row in rows] == [r.api_key for r in provisioned.records]
    for row, record in zip(rows, provisioned.records, strict=True):
        assert row["secret_key"] == record.secret_key.reveal()
        assert record.passphrase is not None
        assert row["passphrase"] == record.passphrase.reveal()
        if form == "json":
            assert row == record.to_dict(reveal=True)
        else:
            assert row["permissions"] == " ".join(record.permissions)
    assert sorted(p.name for p in output.parent.iterdir() if p.name.startswith(".")) == []


def test_export_never_overwrites_without_force(
    provisioned: Provisioned, capfd: pytest.CaptureFixture[str]
) -> None:
    """An existing file is kept (exit 2) unless --force, which replaces it with a 0600 file."""
    output = provisioned.vault.parent / "export.json"
    output.write_text("keep me\n")
    output.chmod(0o644)
    argv = ["vault", "export", "--vault", str(provisioned.vault), "--output", str(output)]
    assert main(argv) == 2
    out, err = capfd.readouterr()
    assert_no_secret(out + err, provisioned)
    assert "export.json exists; pass --force" in err
    assert output.read_text() == "keep me\n"
    assert main([*argv, "--force"]) == 0
    assert stat.S_IMODE(output.stat().st_mode) == 0o600
    assert len(json.loads(output.read_text())) == 2


def test_export_to_stdout_needs_reveal(
    provisioned: Provisioned, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without --output, export refuses unless --reveal; with it, stdout has the secrets."""
    vault = str(provisioned.vault)
    assert main(["vault", "export", "--vault", vault]) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert_no_secret(err, provisioned)
    assert "--output FILE" in err
    assert "--reveal" in err
    assert main(["vault", "export", "--vault", vault, "--reveal"]) == 0
    rows = json.loads(capfd.readouterr().out)
    assert [row["secret_key"] for row in rows] == [
        r.secret_key.reveal() for r in provisioned.records
    ]


# -- the vault key ------------------------------------------------------------------


def test_wrong_vault_key_is_a_clear_error_and_shows_nothing(
    provisioned: Provisioned, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A wrong key stops every vault command with exit 2, whatever --reveal asks."""
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", "not the right passphrase")
    vault = str(provisioned.vault)
    output = provisioned.vault.parent / "export.json"
    for argv in (
        ["vault", "list", "--vault", vault],
        ["vault", "show", "alphabot/trade", "--vault", vault, "--reveal"],
        ["vault", "export", "--vault", vault, "--reveal"],
        ["vault", "export", "--vault", vault, "--output", str(output)],
    ):
        assert main(argv) == 2
        out, err = capfd.readouterr()
        assert out == ""
        assert "the vault key is wrong" in err
        assert_no_secret(err, provisioned)
        assert provisioned.records[0].api_key not in err
    assert not output.exists()


def test_no_key_and_no_terminal_names_the_variable(
    provisioned: Provisioned, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without the variable and without a terminal to ask on, the error names the variable."""
    monkeypatch.delenv("BITGET_KEYS_VAULT_KEY")
    assert main(["vault", "list", "--vault", str(provisioned.vault)]) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert "BITGET_KEYS_VAULT_KEY" in err


def test_prompted_key_opens_the_vault(
    provisioned: Provisioned, prompts: Prompts, capfd: pytest.CaptureFixture[str]
) -> None:
    """On a terminal without the variable, the key is asked for once; a wrong one fails."""
    vault = str(provisioned.vault)
    prompts.answers.append(KEY)
    assert main(["vault", "show", "alphabot/trade", "--vault", vault]) == 0
    assert provisioned.record("alphabot/trade").api_key in capfd.readouterr().out
    assert prompts.asked == [f"Passphrase of the vault {vault}: "]
    prompts.answers.append("a wrong passphrase")
    assert main(["vault", "show", "alphabot/trade", "--vault", vault, "--reveal"]) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert "the vault key is wrong" in err


async def test_new_vault_passphrase_is_asked_twice_and_must_match(
    plan: Path, prompts: Prompts, capfd: pytest.CaptureFixture[str]
) -> None:
    """
    Two different answers stop apply before anything is sent or created; a match goes on,
    and with --yes the plan is neither shown nor confirmed (stdin has no answer to read).
    """
    vault = plan.parent / "keys.vault"
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        prompts.answers.extend([KEY, KEY + "!"])
        assert await cli(*apply_args(plan, emulator, "--yes")) == 2
        assert "the two passphrases differ" in capfd.readouterr().err
        assert len(prompts.asked) == 2
        assert f"new vault {vault}" in prompts.asked[0]
        prompts.answers.append("too short")
        assert await cli(*apply_args(plan, emulator, "--yes")) == 2
        assert "at least 12 characters" in capfd.readouterr().err
        assert emulator.audit.accepted == 0
        assert not vault.exists()
        prompts.answers.extend([KEY, KEY])
        assert await cli(*apply_args(plan, emulator, "--yes")) == 0
        out, err = capfd.readouterr()
        assert CREATE_LINE not in out
        assert "[y/N]" not in err
        assert "desk-a: key alpha/read: created" in out
    assert len(SecretsVault.open(vault, KEY)) == 2


# -- apply's confirmation -----------------------------------------------------------


async def test_apply_declined_sends_no_create(
    plan: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """On a terminal, apply shows the plan and asks; anything but yes creates nothing."""
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        assert await cli(*apply_args(plan, emulator)) == 1
        out, err = capfd.readouterr()
        assert CREATE_LINE in out
        assert "[y/N]" in err
        assert "apply cancelled" in err
        assert changes_sent(emulator) == []
        assert emulator.exchange.subaccounts(MASTER.uid) == []
    assert not (plan.parent / "keys.vault").exists()
    assert not (plan.parent / "keys.state").exists()


async def test_apply_confirmed_creates(
    plan: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Answering y creates the keys; a re-run with nothing to do does not ask."""
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        assert await cli(*apply_args(plan, emulator)) == 0
        out, err = capfd.readouterr()
        assert CREATE_LINE in out
        assert "[y/N]" in err
        assert "desk-a: key alpha/read: created" in out
        assert changes_sent(emulator) == [
            "batch_create_virtual_subaccounts",
            "create_virtual_subaccount_api_key",
        ]
        assert len(emulator.exchange.subaccounts(MASTER.uid)[0]["keys"]) == 2
        # Nothing left to do: no question (stdin is empty now), exit 0.
        assert await cli(*apply_args(plan, emulator)) == 0
        out, err = capfd.readouterr()
        assert "desk-a: up to date" in out
        assert "[y/N]" not in err


async def test_apply_refuses_to_run_unconfirmed(
    plan: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Without --yes: stdin not a terminal, or --json even on one, exits 2 sending nothing."""
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        assert await cli(*apply_args(plan, emulator)) == 2
        err = capfd.readouterr().err
        assert "when stdin is not a terminal" in err
        assert "--yes" in err
        monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
        assert await cli(*apply_args(plan, emulator, "--json")) == 2
        out, err = capfd.readouterr()
        assert out == ""
        assert "with --json" in err
        assert emulator.audit.accepted == 0
    assert not (plan.parent / "keys.vault").exists()
