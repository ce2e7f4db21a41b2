"""Where the vault passphrase comes from (files, stdin), apply --create-vault, and vault list."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import pytest

from bitget_keys.cli import main
from bitget_keys.cli.environment import VARIABLES
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, Limits
from tests.cli.test_cli_vault import (  # noqa: F401 - fixtures
    KEY,
    MASTER,
    PLAN,
    Prompts,
    Provisioned,
    Terminal,
    assert_no_secret,
    cli,
    plan,
    prompts,
    provisioned,
    provisioned_vault,
)

WRONG = "not the vault passphrase"


def key_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_key_file_option_comes_before_the_environment(
    provisioned: Provisioned,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """--vault-key-file wins over $BITGET_KEYS_VAULT_KEY; its trailing newline is not part of it."""
    vault = str(provisioned.vault)
    right = key_file(tmp_path / "right.key", KEY + "\n")
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", WRONG)
    assert main(["vault", "list", "--vault", vault]) == 78
    assert "the vault key is wrong" in capfd.readouterr().err
    assert main(["vault", "list", "--vault", vault, "--vault-key-file", str(right)]) == 0
    out, err = capfd.readouterr()
    assert provisioned.records[0].api_key in out
    assert KEY not in out + err
    wrong = key_file(tmp_path / "wrong.key", WRONG + "\n")
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", KEY)
    assert main(["vault", "list", "--vault", vault, "--vault-key-file", str(wrong)]) == 78
    out, err = capfd.readouterr()
    assert "the vault key is wrong" in err
    assert WRONG not in out + err


def test_the_key_variable_comes_before_the_key_file_variable(
    provisioned: Provisioned,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """$BITGET_KEYS_VAULT_KEY, then $BITGET_KEYS_VAULT_KEY_FILE (read when it is unset)."""
    vault = str(provisioned.vault)
    wrong = key_file(tmp_path / "wrong.key", WRONG)
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY_FILE", str(wrong))
    assert main(["vault", "list", "--vault", vault]) == 0  # $BITGET_KEYS_VAULT_KEY = KEY
    capfd.readouterr()
    monkeypatch.delenv("BITGET_KEYS_VAULT_KEY")
    assert main(["vault", "list", "--vault", vault]) == 78
    assert "the vault key is wrong" in capfd.readouterr().err
    key_file(wrong, KEY + "\r\n")
    assert main(["vault", "show", "alpha/trade", "--vault", vault]) == 0
    assert provisioned.record("alphabot/trade").api_key in capfd.readouterr().out


def test_dash_reads_one_line_of_stdin(
    provisioned: Provisioned,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """``-`` reads the first line of stdin (without its newline) and leaves the rest."""
    monkeypatch.delenv("BITGET_KEYS_VAULT_KEY")
    stdin = io.StringIO(f"{KEY}\nthe rest\n")
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["vault", "list", "--vault", str(provisioned.vault), "--vault-key-file", "-"]) == 0
    out, err = capfd.readouterr()
    assert len(out.splitlines()) == 2
    assert KEY not in out + err
    assert stdin.read() == "the rest\n"


def test_a_loose_empty_or_missing_key_file(
    provisioned: Provisioned,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Readable by others: used, with a warning and the chmod; empty or missing: exit 78."""
    monkeypatch.delenv("BITGET_KEYS_VAULT_KEY")
    vault = ["vault", "list", "--vault", str(provisioned.vault), "--vault-key-file"]
    loose = key_file(tmp_path / "loose.key", KEY, 0o644)
    assert main([*vault, str(loose)]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(
        f"the vault key file {loose} can be read by its group and others (mode 0644)" in w
        and f"chmod 600 {loose}" in w
        for w in warnings
    ), warnings
    assert all(KEY not in w for w in warnings)
    capfd.readouterr()
    empty = key_file(tmp_path / "empty.key", "\n")
    assert main([*vault, str(empty)]) == 78
    assert f"the vault key file {empty} holds no passphrase" in capfd.readouterr().err
    missing = tmp_path / "missing.key"
    assert main([*vault, str(missing)]) == 78
    assert f"cannot read the vault key file {missing}" in capfd.readouterr().err


def test_no_key_anywhere_names_every_source(
    provisioned: Provisioned,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("BITGET_KEYS_VAULT_KEY")
    assert main(["vault", "list", "--vault", str(provisioned.vault)]) == 78
    err = capfd.readouterr().err
    for source in ("BITGET_KEYS_VAULT_KEY", "BITGET_KEYS_VAULT_KEY_FILE", "--vault-key-file"):
        assert source in err


def test_the_key_file_variable_is_in_the_table() -> None:
    (variable,) = [v for v in VARIABLES if v.name == "BITGET_KEYS_VAULT_KEY_FILE"]
    assert variable.secret
    assert "apply" in variable.used_by
    assert "vault" in variable.used_by


# -- apply creates a vault only when told -----------------------------------------------------


def bare_apply(plan: Path, emulator: Emulator, vault: Path, *extra: str) -> list[str]:  # noqa: F811
    state = plan.parent / "keys.state"
    base = ["apply", str(plan), "--base-url", emulator.base_url, "--vault", str(vault)]
    return [*base, "--state", str(state), *extra]


async def test_apply_does_not_create_a_vault_unless_told(
    plan: Path,  # noqa: F811
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A missing vault stops apply (exit 66), naming the path and --create-vault; nothing sent."""
    vault = plan.parent / "typo.vault"
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        assert await cli(*bare_apply(plan, emulator, vault, "--yes")) == 66
        err = capfd.readouterr().err
        assert str(vault) in err
        assert "--create-vault" in err
        assert emulator.audit.accepted == 0
        assert not vault.exists()
        assert await cli(*bare_apply(plan, emulator, vault, "--yes", "--create-vault")) == 0
        assert "desk-a: key alpha/trade: created" in capfd.readouterr().out
    assert len(SecretsVault.open(vault, KEY)) == 2


async def test_a_mistyped_vault_path_never_stands_in_for_the_real_one(
    provisioned: Provisioned,  # noqa: F811
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The real vault holds the keys; a typo'd --vault is refused, no key called an orphan."""
    plan_path = provisioned.vault.parent / "plan.toml"

    plan_path.write_text(PLAN)
    typo = provisioned.vault.parent / "keys.vualt"
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        assert await cli(*bare_apply(plan_path, emulator, typo, "--yes")) == 66
        out, err = capfd.readouterr()
        assert "orphan" not in out + err
        assert f"{typo}" in err
        assert emulator.audit.accepted == 0
    assert not typo.exists()
    # Refused before any lock was taken: no lock file beside the typo either.
    assert not typo.with_name(typo.name + ".lock").exists()


@pytest.mark.parametrize("answer", ["n", "y"])
async def test_apply_asks_before_creating_a_vault_on_a_terminal(
    plan: Path,  # noqa: F811
    prompts: Prompts,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    answer: str,
) -> None:
    """Without --yes on a terminal: "Create a new vault PATH? [y/N]"; no creates it nothing."""
    vault = plan.parent / "keys.vault"
    monkeypatch.setattr(sys, "stdin", Terminal(f"{answer}\ny\n"))
    if answer == "y":
        prompts.answers.extend([KEY, KEY])
    async with Emulator([MASTER], limits=Limits(per_uid=False)) as emulator:
        code = await cli(*bare_apply(plan, emulator, vault))
        err = capfd.readouterr().err
        assert f"Create a new vault {vault}? [y/N]" in err
        if answer == "n":
            assert code == 66
            assert "--create-vault" in err
            assert emulator.audit.accepted == 0
            assert not vault.exists()
        else:
            assert code == 0, err
    if answer == "y":
        assert len(SecretsVault.open(vault, KEY)) == 2


# -- vault list ------------------------------------------------------------------------------


def test_list_names_keys_as_the_plan_does(
    provisioned: Provisioned,  # noqa: F811
    capfd: pytest.CaptureFixture[str],
) -> None:
    """
    Third column SUB-LABEL/KEY as apply prints it; then the Bitget sub-account name, the
    stage and whether the secret is held.
    """
    assert main(["vault", "list", "--vault", str(provisioned.vault)]) == 0
    rows = sorted(line.split("\t") for line in capfd.readouterr().out.splitlines())
    trade = provisioned.record("alphabot/trade")
    read = provisioned.record("alphabot/read")
    assert rows == sorted(
        [
            [
                "desk-a",
                "virtual_subaccount_key",
                "alpha/trade",
                trade.api_key,
                "alphabot",
                "current",
                "secret held",
            ],
            [
                "desk-a",
                "virtual_subaccount_key",
                "alpha/read",
                read.api_key,
                "alphabot",
                "current",
                "secret held",
            ],
        ]
    )
    for name in ("alpha/trade", "alphabot/trade"):
        assert main(["vault", "show", name, "--vault", str(provisioned.vault), "--json"]) == 0
        out = capfd.readouterr().out
        assert trade.api_key in out
        assert_no_secret(out, provisioned)
