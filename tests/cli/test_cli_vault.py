"""`vault show` and `vault export`, the vault key prompt, and apply's confirmation."""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
import json
import os
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from bitget_keys import _endpoints as ep
from bitget_keys.cli import main
from bitget_keys.provision.vault import SecretsVault, VaultRecord
from bitget_keys.provision.vault_records import PASSPHRASE_PLACEHOLDER_KIND, Stage
from bitget_keys.testing import Emulator, EmulatorAccount, Limits
from tests.cli_process import start_cli
from tests.provision.test_lock import ROOT, Holder
from tests.provision.test_vault import write_v1

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
CREATE_LINE = 'desk-a:\n  + sub-account alpha\n      name  = "alphabot"\n'


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
        "--create-vault",
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
            assert record.secret().reveal() == emulator.exchange.secret_of(record.api_key)
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
    secret, passphrase = trade.secret().reveal(), trade.passphrase
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
    other = provisioned.record("alphabot/read").secret().reveal()
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


def test_show_ambiguous_label_exits_64_and_lists_the_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Two traders' copy keys are both "copy": exit 64 (usage) listing both; --account picks one."""
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
    assert main(["vault", "show", "copy", "--vault", str(path), "--reveal"]) == 64
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
        assert main(argv) == 66
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
        assert row["secret_key"] == record.secret().reveal()
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
    """An existing file is kept (exit 64) unless --force, which replaces it with a 0600 file."""
    output = provisioned.vault.parent / "export.json"
    output.write_text("keep me\n")
    output.chmod(0o644)
    argv = ["vault", "export", "--vault", str(provisioned.vault), "--output", str(output)]
    assert main(argv) == 64
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
    assert main(["vault", "export", "--vault", vault]) == 64
    out, err = capfd.readouterr()
    assert out == ""
    assert_no_secret(err, provisioned)
    assert "--output FILE" in err
    assert "--reveal" in err
    assert main(["vault", "export", "--vault", vault, "--reveal"]) == 0
    rows = json.loads(capfd.readouterr().out)
    assert [row["secret_key"] for row in rows] == [r.secret().reveal() for r in provisioned.records]


# -- the vault key ------------------------------------------------------------------


def test_wrong_vault_key_is_a_clear_error_and_shows_nothing(
    provisioned: Provisioned, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A wrong key stops every vault command with exit 78, whatever --reveal asks."""
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", "not the right passphrase")
    vault = str(provisioned.vault)
    output = provisioned.vault.parent / "export.json"
    for argv in (
        ["vault", "list", "--vault", vault],
        ["vault", "show", "alphabot/trade", "--vault", vault, "--reveal"],
        ["vault", "export", "--vault", vault, "--reveal"],
        ["vault", "export", "--vault", vault, "--output", str(output)],
    ):
        assert main(argv) == 78
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
    assert main(["vault", "list", "--vault", str(provisioned.vault)]) == 78
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
    assert main(["vault", "show", "alphabot/trade", "--vault", vault, "--reveal"]) == 78
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
        assert await cli(*apply_args(plan, emulator, "--yes")) == 78
        assert "the two passphrases differ" in capfd.readouterr().err
        assert len(prompts.asked) == 2
        assert f"new vault {vault}" in prompts.asked[0]
        prompts.answers.append("too short")
        assert await cli(*apply_args(plan, emulator, "--yes")) == 78
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
        assert await cli(*apply_args(plan, emulator)) == 5
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
    """Without --yes: stdin not a terminal, or --json even on one, exits 64 sending nothing."""
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        assert await cli(*apply_args(plan, emulator)) == 64
        err = capfd.readouterr().err
        assert "when stdin is not a terminal" in err
        assert "--yes" in err
        monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
        assert await cli(*apply_args(plan, emulator, "--json")) == 64
        out, err = capfd.readouterr()
        assert out == ""
        assert "with --json" in err
        assert emulator.audit.accepted == 0
    assert not (plan.parent / "keys.vault").exists()


# -- damaged vaults: check, repair, and reading what is intact ---------------------------


def keys(count: int) -> list[VaultRecord]:
    """``count`` records of keys bg_key_00, bg_key_01, ..."""
    return [
        VaultRecord(
            kind="virtual_subaccount_key",
            account="desk-a",
            master_uid=MASTER.uid,
            api_key=f"bg_key_{n:02}",
            secret_key=f"StoredSecret{n:02}",
            passphrase=f"StoredPass{n:02}",
            label=f"k{n:02}",
            subaccount_name="alphabot",
            subaccount_label="alpha",
        )
        for n in range(count)
    ]


def stored(path: Path, count: int) -> list[VaultRecord]:
    """A vault of ``count`` keys (records on lines 3, 4, ...), written directly."""
    vault = SecretsVault.open(path, KEY)
    records = keys(count)
    for record in records:
        vault.append(record)
    return records


def damage(path: Path) -> None:
    """A flipped byte in record 3 (line 5), record 6 removed (line 8), the last line torn."""
    lines = path.read_bytes().splitlines(keepends=True)
    flipped = bytearray(lines[4])
    flipped[20] = ord("A") if flipped[20] != ord("A") else ord("B")
    lines[4] = bytes(flipped)
    del lines[7]
    path.write_bytes(b"".join(lines)[:-25])


#: What survives `damage` of an 8-record vault: records 1, 2, 4, 5 and 7.
INTACT = ["bg_key_00", "bg_key_01", "bg_key_03", "bg_key_04", "bg_key_06"]


@pytest.fixture
def damaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", KEY)
    path = tmp_path / "keys.vault"
    stored(path, 8)
    damage(path)
    return path


def test_check_reports_each_damaged_line_and_repair_recovers_every_intact_record(
    damaged: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """check exits 1 naming lines 5, 8, 9; repair keeps the original and recovers the rest."""
    original = damaged.read_bytes()
    assert main(["vault", "check", "--vault", str(damaged)]) == 1
    out, err = capfd.readouterr()
    assert f"{damaged}: line 5: does not decrypt" in out
    assert f"{damaged}: line 8: record 6 is missing before it (a line was removed)" in out
    assert f"{damaged}: line 9: torn (incomplete write)" in out
    assert "3 damaged line(s), 5 intact record(s)" in out
    assert "bitget-keys vault repair" in out
    assert "StoredSecret" not in out + err
    assert main(["vault", "repair", "--vault", str(damaged)]) == 0
    out, err = capfd.readouterr()
    assert "repaired: 5 intact record(s) kept" in out
    (kept,) = damaged.parent.glob("keys.vault.damaged-*")
    assert str(kept) in out
    assert kept.read_bytes() == original
    assert "line 5" in err
    records = SecretsVault.open(damaged, KEY).require_intact().records
    assert [r.api_key for r in records] == INTACT
    assert [r.secret().reveal() for r in records] == [f"StoredSecret{key[-2:]}" for key in INTACT]
    assert main(["vault", "check", "--vault", str(damaged)]) == 0
    assert "intact, 5 record(s)" in capfd.readouterr().out
    # Nothing more to repair: nothing is written or renamed.
    assert main(["vault", "repair", "--vault", str(damaged)]) == 0
    assert "nothing to repair" in capfd.readouterr().out
    assert len(list(damaged.parent.glob("keys.vault.damaged-*"))) == 1


def test_repair_to_an_output_path(damaged: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """--output writes the repaired vault there and leaves the damaged one as it is."""
    original = damaged.read_bytes()
    output = damaged.parent / "repaired.vault"
    assert main(["vault", "repair", "--vault", str(damaged), "--output", str(output)]) == 0
    assert f"5 intact record(s) written to {output}" in capfd.readouterr().out
    assert damaged.read_bytes() == original
    records = SecretsVault.open(output, KEY).require_intact().records
    assert [r.api_key for r in records] == INTACT
    assert main(["vault", "repair", "--vault", str(damaged), "--output", str(output)]) == 64
    assert "exists" in capfd.readouterr().err


def test_list_and_show_read_a_damaged_vault_and_say_so(
    damaged: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """list shows the intact keys; stderr names each damaged line and the repair command."""
    assert main(["vault", "list", "--vault", str(damaged)]) == 0
    out, err = capfd.readouterr()
    assert [line.split("\t")[3] for line in out.splitlines()] == INTACT
    assert "is damaged: 3 damaged line(s); using its 5 intact record(s)" in err
    assert "line 5: does not decrypt" in err
    assert "line 9: torn" in err
    assert f"`bitget-keys vault repair --vault {damaged}`" in err
    assert main(["vault", "show", "bg_key_04", "--vault", str(damaged), "--json"]) == 0
    out, err = capfd.readouterr()
    assert json.loads(out)["label"] == "k04"
    assert "bitget-keys vault repair" in err


def test_export_refuses_damage_unless_skip_damaged(
    damaged: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """export stops on damage (exit 65, with both ways out); --skip-damaged exports the rest."""
    output = damaged.parent / "export.json"
    argv = ["vault", "export", "--vault", str(damaged), "--output", str(output)]
    assert main(argv) == 65
    out, err = capfd.readouterr()
    assert "line 5: does not decrypt" in err
    assert "--skip-damaged" in err
    assert "bitget-keys vault repair" in err
    assert "StoredSecret" not in out + err
    assert not output.exists()
    assert main([*argv, "--skip-damaged"]) == 0
    err = capfd.readouterr().err
    assert "exported 5 key(s)" in err
    assert "line 8: record 6 is missing" in err
    assert [row["api_key"] for row in json.loads(output.read_text())] == INTACT


def test_both_headers_damaged_is_reported_as_damage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Not "wrong key": check exits 1 saying the header is damaged; list exits 65 saying so."""
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", KEY)
    path = tmp_path / "keys.vault"
    stored(path, 2)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[0] = lines[1] = lines[0].replace(b'"check":"', b'"check":"AAAA', 1)
    path.write_bytes(b"".join(lines))
    assert main(["vault", "check", "--vault", str(path)]) == 1
    out, err = capfd.readouterr()
    assert "the header (line 1) and its copy (line 2) are damaged" in out
    assert main(["vault", "list", "--vault", str(path)]) == 65
    err = capfd.readouterr().err
    assert "not a wrong vault key" in err
    assert "key is wrong" not in err


# -- bad paths: clear errors, early ------------------------------------------------------


def test_export_to_a_directory_fails_before_decrypting(
    provisioned: Provisioned, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """--output DIR --force is refused first: even a wrong vault key is not reached."""
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", "not the right passphrase")
    directory = provisioned.vault.parent / "exports"
    directory.mkdir()
    argv = ["vault", "export", "--vault", str(provisioned.vault), "--output", str(directory)]
    assert main([*argv, "--force"]) == 64
    err = capfd.readouterr().err
    assert f"--output {directory} is a directory" in err
    assert "key is wrong" not in err
    assert list(directory.iterdir()) == []
    missing = provisioned.vault.parent / "nowhere" / "keys.json"
    assert main(["vault", "export", "--vault", str(provisioned.vault), "-o", str(missing)]) == 64
    assert "does not exist" in capfd.readouterr().err


@pytest.mark.parametrize("command", ["list", "check", "repair", "export --reveal"])
def test_a_directory_or_garbage_as_vault_is_a_clear_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    command: str,
) -> None:
    """--vault naming a directory, or a file that is no vault: exit 78 or 1, no traceback."""
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", KEY)
    garbage = tmp_path / "garbage.vault"
    garbage.write_bytes(b"\x00\xff\xfe garbage \x80\n\x01")
    for vault, expected, code in (
        (tmp_path, "is a directory", 78),
        (garbage, "not a bitget-keys vault", 1),
    ):
        assert main(["vault", *command.split(), "--vault", str(vault)]) == code
        err = capfd.readouterr().err
        assert expected in err
        assert "Traceback" not in err
    assert not (tmp_path.parent / f"{tmp_path.name}.lock").exists()


async def test_apply_with_a_directory_or_garbage_as_state_is_a_clear_error(
    plan: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """--vault or --state naming a directory or garbage: exit 78 or 74, nothing sent or created."""
    garbage = plan.parent / "garbage.state"
    garbage.write_bytes(b"this is not an SQLite database, not at all\n" * 20)
    directory = plan.parent / "somewhere"
    directory.mkdir()
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        for flag, value, expected, code in (
            ("--vault", directory, f"the vault {directory} is a directory", 78),
            ("--state", directory, f"the state file {directory} is a directory", 78),
            ("--state", garbage, "is not a bitget-keys state file (file is not a database)", 74),
        ):
            argv = apply_args(plan, emulator, "--yes")
            argv[argv.index(flag) + 1] = str(value)
            assert await cli(*argv) == code
            err = capfd.readouterr().err
            assert expected in err
            assert "Traceback" not in err
        assert changes_sent(emulator) == []
    assert list(directory.iterdir()) == []


# -- apply: damaged vaults, locks, permissions -------------------------------------------


async def test_apply_refuses_a_damaged_vault(plan: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """apply never appends to a damaged vault: exit 65 with the repair command; nothing sent."""
    vault = plan.parent / "keys.vault"
    stored(vault, 8)
    damage(vault)
    before = vault.read_bytes()
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        assert await cli(*apply_args(plan, emulator, "--yes")) == 65
        err = capfd.readouterr().err
        assert "line 5: does not decrypt" in err
        assert (
            f"apply never appends to a damaged vault: run `bitget-keys vault repair --vault {vault}` first"
            in err
        )
        assert emulator.audit.accepted == 0
    assert vault.read_bytes() == before


async def test_apply_upgrades_a_version_1_vault(
    plan: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A version-1 vault is rewritten as version 3 (same key, same records), then used."""
    vault = plan.parent / "keys.vault"
    write_v1(vault, keys(2), key=KEY)
    assert SecretsVault.open(vault, KEY).version == 1
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        assert await cli(*apply_args(plan, emulator, "--yes")) == 0
    assert f"upgraded the vault {vault} to format version 3" in capfd.readouterr().err
    upgraded = SecretsVault.open(vault, KEY)
    assert upgraded.version == 3
    api_keys = [r.api_key for r in upgraded.require_intact().records]
    assert api_keys[:2] == ["bg_key_00", "bg_key_01"]
    assert len(api_keys) == 4


def test_strict_refuses_loose_permissions(
    provisioned: Provisioned, capfd: pytest.CaptureFixture[str]
) -> None:
    """apply --strict refuses a vault others can read, naming it, its mode and the chmod."""
    provisioned.vault.chmod(0o640)
    plan = provisioned.vault.parent / "plan.toml"
    plan.write_text(PLAN)
    state = provisioned.vault.parent / "keys.state"
    argv = ["apply", str(plan), "--vault", str(provisioned.vault), "--state", str(state)]
    assert main([*argv, "--yes", "--strict", "--base-url", "http://127.0.0.1:9"]) == 78
    err = capfd.readouterr().err
    assert f"the vault {provisioned.vault} can be read by its group (mode 0640)" in err
    assert f"run: chmod 600 {provisioned.vault}" in err
    assert "--strict" in err
    assert not state.exists()


def test_loose_permissions_are_warned_about(
    provisioned: Provisioned, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without --strict the vault is used, with a warning naming the chmod to run."""
    provisioned.vault.chmod(0o604)
    assert main(["vault", "list", "--vault", str(provisioned.vault)]) == 0
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "can be read by others (mode 0604)" in warning
    assert f"chmod 600 {provisioned.vault}" in warning


async def test_apply_fails_at_once_or_waits_while_another_run_holds_a_lock(
    plan: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """
    Another process holds the vault's (or the state file's) lock: apply exits 75 at once
    naming it, sending nothing; a real apply process with --wait-lock says whom it waits
    for, and provisions once the holder has gone.
    """
    vault, state = plan.parent / "keys.vault", plan.parent / "keys.state"
    holders = [Holder(vault)]
    try:
        async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
            assert await cli(*apply_args(plan, emulator, "--yes")) == 75
            err = capfd.readouterr().err
            assert f"{vault} is in use by another run: pid {holders[0].pid} on host" in err
            assert "(bitget-keys apply plan.toml)" in err
            holders.append(Holder(state))
            holders[0].let_go()
            assert await cli(*apply_args(plan, emulator, "--yes")) == 75
            assert f"{state} is in use by another run: pid {holders[1].pid}" in (
                capfd.readouterr().err
            )
            assert emulator.audit.accepted == 0
            assert not vault.exists()
            process = await start_apply(plan, emulator, "--wait-lock")
            assert process.stderr is not None
            line = (await asyncio.wait_for(process.stderr.readline(), 60)).decode()
            assert f"waiting for {state}, in use by pid {holders[1].pid}" in line
            assert emulator.audit.accepted == 0
            holders[1].let_go()
            out, err_bytes = await asyncio.wait_for(process.communicate(), 120)
            assert process.returncode == 0, err_bytes.decode()
            assert "desk-a: key alpha/read: created" in out.decode()
        assert len(SecretsVault.open(vault, KEY)) == 2
    finally:
        for holder in holders:
            holder.stop()


async def start_apply(plan: Path, emulator: Emulator, *extra: str) -> asyncio.subprocess.Process:
    return await start_cli(
        apply_args(plan, emulator, "--yes", *extra), {**os.environ, "PYTHONPATH": str(ROOT)}
    )


@pytest.mark.parametrize("wait", [False, True], ids=["fail-at-once", "wait-lock"])
async def test_two_applies_started_together_share_nothing_but_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wait: bool
) -> None:
    """
    Two real apply processes on one new vault and state, started together, three times:
    one runs, the other stops naming it (or waits with --wait-lock and finds nothing to
    do). Every time: the emulator holds exactly the plan, no key twice, and the vault
    opens intact with exactly the created keys and their secrets.
    """
    environment(monkeypatch)
    for attempt in range(3):
        directory = tmp_path / f"attempt{attempt}"
        directory.mkdir()
        plan = directory / "plan.toml"
        plan.write_text(PLAN)
        async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
            extra = ("--wait-lock",) if wait else ()
            processes = [await start_apply(plan, emulator, *extra) for _ in range(2)]
            outputs = [await asyncio.wait_for(p.communicate(), 120) for p in processes]
            codes = sorted(p.returncode or 0 for p in processes)
            errors = [err.decode() for _, err in outputs]
            if codes == [0, 75]:
                assert not wait
                assert any("is in use by another run: pid" in err for err in errors), errors
            else:
                assert codes == [0, 0], errors
            (sub,) = emulator.exchange.subaccounts(MASTER.uid)
            created = sorted(api_key for _, api_key in sub["keys"])
            assert len(created) == len(set(created)) == 2
            vault = SecretsVault.open(directory / "keys.vault", KEY)
            records = vault.require_intact().records
            assert sorted(r.api_key for r in records) == created
            for record in records:
                assert record.secret().reveal() == emulator.exchange.secret_of(record.api_key)


def test_a_rotations_passphrase_placeholder_is_not_listed_as_a_key(
    provisioned: Provisioned, capfd: pytest.CaptureFixture[str]
) -> None:
    """vault list, show and export show keys only, not a rotation's stored passphrase."""
    placeholder = VaultRecord(
        kind=PASSPHRASE_PLACEHOLDER_KIND,
        account="desk-a",
        master_uid=MASTER.uid,
        api_key="rotation-passphrase:0123",
        secret_key=None,
        passphrase="PlaceholderPass1",
        label="trade",
        stage=Stage.PENDING,
    )
    vault = SecretsVault.open(provisioned.vault, KEY)
    vault.append(placeholder)
    assert main(["vault", "list", "--vault", str(provisioned.vault)]) == 0
    listed, _ = capfd.readouterr()
    assert all(record.api_key in listed for record in provisioned.records)
    assert "rotation-passphrase" not in listed
    assert (
        main(["vault", "show", "rotation-passphrase:0123", "--vault", str(provisioned.vault)]) == 1
    )
    capfd.readouterr()
    assert main(["vault", "export", "--vault", str(provisioned.vault), "--reveal"]) == 0
    exported, _ = capfd.readouterr()
    assert "rotation-passphrase" not in exported
    assert "PlaceholderPass1" not in exported
    # The vault keeps it: the rotation reads it back.
    assert placeholder.api_key in {record.api_key for record in vault.records()}


def test_show_by_name_picks_the_current_key_of_a_rotated_one(
    provisioned: Provisioned, capfd: pytest.CaptureFixture[str]
) -> None:
    """During a rotation's grace the old key shares the name: the name shows the current one."""
    record = provisioned.records[0]
    assert record.plan_label is not None
    replaced = attrs.evolve(record, api_key="bg_replacedkey0000000000000000000").staged(
        Stage.PREVIOUS
    )
    vault = SecretsVault.open(provisioned.vault, KEY)
    vault.append(replaced)
    argv = ["vault", "show", record.plan_label, "--vault", str(provisioned.vault), "--json"]
    assert main(argv) == 0
    shown = json.loads(capfd.readouterr().out)
    assert shown["api_key"] == record.api_key
    assert shown["stage"] == "current"
    # The replaced one by its API key.
    assert main([*argv[:2], replaced.api_key, *argv[3:]]) == 0
    assert json.loads(capfd.readouterr().out)["stage"] == "previous"
    # Two current keys of one name are still ambiguous.
    vault.append(
        attrs.evolve(replaced, api_key="bg_othercurrent00000000000000000").staged(Stage.CURRENT)
    )
    assert main(argv) == 64


def test_show_by_label_picks_the_current_key_of_a_rotated_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A rotation leaves its predecessors under the same label: the label shows the current key."""
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", KEY)
    path = tmp_path / "keys.vault"
    vault = SecretsVault.open(path, KEY)
    old, new, older = keys(3)
    same = {"label": "trade"}
    vault.append(attrs.evolve(older, **same).staged(Stage.REVOKED, revoked_how="neutralised"))
    vault.append(attrs.evolve(old, **same).staged(Stage.PREVIOUS))
    vault.append(attrs.evolve(new, **same))
    assert main(["vault", "show", "alphabot/trade", "--vault", str(path), "--json"]) == 0
    assert json.loads(capfd.readouterr().out)["api_key"] == new.api_key
    # Two current keys under one label stay ambiguous; --account already given is not advised.
    vault.append(attrs.evolve(old, **same))
    args = ["vault", "show", "alphabot/trade", "--vault", str(path), "--account", "desk-a"]
    assert main(args) == 64
    err = capfd.readouterr().err
    assert "matches 3 keys" in err
    assert "give the API key" in err
    assert "--account" not in err.split("give the API key")[1]
