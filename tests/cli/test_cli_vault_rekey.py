"""`bitget-keys vault rekey`: a new passphrase and today's key derivation, nothing lost."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from bitget_keys.cli import main
from bitget_keys.errors import VaultKeyError
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.provision.vault_kdf import ScryptKdf, default_kdf
from tests.cli.test_cli_vault import (  # noqa: F401 - fixtures
    INTACT,
    KEY,
    Prompts,
    Provisioned,
    assert_no_secret,
    damaged,
    keys,
    prompts,
    provisioned,
    provisioned_vault,
)
from tests.provision.test_lock import Holder
from tests.provision.test_vault import write_v1

NEW_KEY = "the new vault passphrase"


def revealed(path: Path, key: str) -> list[dict[str, object]]:
    return [r.to_dict(reveal=True) for r in SecretsVault.open(path, key).records()]


def kept_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.pre-rekey-*"))


def test_rekey_from_key_files_keeps_every_record(
    provisioned: Provisioned,  # noqa: F811
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """
    Records identical after; the old passphrase is refused, the new one accepted; the old
    file is kept beside it (old passphrase); no secret or passphrase is printed.
    """
    vault = provisioned.vault
    before = revealed(vault, KEY)
    old_bytes = vault.read_bytes()
    (tmp_path / "old.key").write_text(KEY + "\n")
    (tmp_path / "new.key").write_text(NEW_KEY + "\n")
    for name in ("old.key", "new.key"):
        (tmp_path / name).chmod(0o600)
    argv = ["vault", "rekey", "--vault", str(vault)]
    argv += ["--vault-key-file", str(tmp_path / "old.key")]
    assert main([*argv, "--new-key-file", str(tmp_path / "new.key")]) == 0
    out, err = capfd.readouterr()
    (kept,) = kept_files(vault)
    assert f"{vault}: rekeyed: 2 record(s)" in out
    assert str(kept) in out
    assert "OLD passphrase" in out
    assert_no_secret(out + err, provisioned)
    assert KEY not in out + err
    assert NEW_KEY not in out + err
    assert revealed(vault, NEW_KEY) == before
    with pytest.raises(VaultKeyError):
        SecretsVault.open(vault, KEY)
    assert main(["vault", "list", "--vault", str(vault)]) == 78  # the environment's old key
    assert "the vault key is wrong" in capfd.readouterr().err
    new_file = ["--vault-key-file", str(tmp_path / "new.key")]
    assert main(["vault", "check", "--vault", str(vault), *new_file]) == 0
    assert "intact, 2 record(s)" in capfd.readouterr().out
    assert kept.read_bytes() == old_bytes
    assert revealed(kept, KEY) == before


def test_rekey_reads_both_passphrases_from_stdin(
    provisioned: Provisioned,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """``--vault-key-file - --new-key-file -``: the current passphrase, then the new one."""
    monkeypatch.delenv("BITGET_KEYS_VAULT_KEY")
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{KEY}\n{NEW_KEY}\n"))
    argv = ["vault", "rekey", "--vault", str(provisioned.vault)]
    assert main([*argv, "--vault-key-file", "-", "--new-key-file", "-"]) == 0
    assert "rekeyed" in capfd.readouterr().out
    assert len(SecretsVault.open(provisioned.vault, NEW_KEY)) == 2


def test_rekey_asks_on_a_terminal_twice_for_the_new_passphrase(
    provisioned: Provisioned,  # noqa: F811
    prompts: Prompts,  # noqa: F811
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Two different new passphrases change nothing; a matching pair rekeys."""
    vault = provisioned.vault
    before = vault.read_bytes()
    prompts.answers.extend([KEY, NEW_KEY, NEW_KEY + "!"])
    assert main(["vault", "rekey", "--vault", str(vault)]) == 78
    assert "the two new passphrases differ; the vault is unchanged" in capfd.readouterr().err
    assert vault.read_bytes() == before
    assert not kept_files(vault)
    assert prompts.asked[0] == f"Passphrase of the vault {vault}: "
    assert "New passphrase for the vault" in prompts.asked[1]
    prompts.answers.extend([KEY, NEW_KEY, NEW_KEY])
    assert main(["vault", "rekey", "--vault", str(vault)]) == 0
    assert len(SecretsVault.open(vault, NEW_KEY)) == 2


def test_rekey_needs_a_new_passphrase_source_off_a_terminal(
    provisioned: Provisioned,  # noqa: F811
    capfd: pytest.CaptureFixture[str],
) -> None:
    before = provisioned.vault.read_bytes()
    assert main(["vault", "rekey", "--vault", str(provisioned.vault)]) == 78
    assert "--new-key-file" in capfd.readouterr().err
    assert provisioned.vault.read_bytes() == before


def test_rekey_upgrades_a_version_1_vault(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A version-1 vault (scrypt, here N = 2^10) becomes version 3 with today's derivation."""
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", KEY)
    vault = tmp_path / "old.vault"
    items = keys(3)
    write_v1(vault, items, key=KEY)
    assert main(["vault", "check", "--vault", str(vault)]) == 0
    out = capfd.readouterr().out
    assert "format version 1" in out
    old = ScryptKdf(n=2**10)
    assert f"key derived with {old}: `bitget-keys vault rekey` upgrades it" in out
    new_key = tmp_path / "new.key"
    new_key.write_text(NEW_KEY)
    new_key.chmod(0o600)
    assert main(["vault", "rekey", "--vault", str(vault), "--new-key-file", str(new_key)]) == 0
    assert f"(was {old})" in capfd.readouterr().out
    upgraded = SecretsVault.open(vault, NEW_KEY)
    assert (upgraded.version, upgraded.kdf) == (3, default_kdf())
    assert list(upgraded.records()) == items


def test_rekey_refuses_a_damaged_vault(
    damaged: Path,  # noqa: F811
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Repair comes first: exit 65 naming the repair command; the vault is unchanged."""
    before = damaged.read_bytes()
    new_key = tmp_path / "new.key"
    new_key.write_text(NEW_KEY)
    new_key.chmod(0o600)
    assert main(["vault", "rekey", "--vault", str(damaged), "--new-key-file", str(new_key)]) == 65
    err = capfd.readouterr().err
    assert "line 5: does not decrypt" in err
    assert "vault repair" in err
    assert damaged.read_bytes() == before
    assert not kept_files(damaged)
    assert len(INTACT) == 5


def test_rekey_is_refused_while_another_process_holds_the_lock(
    provisioned: Provisioned,  # noqa: F811
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """An apply (here a process holding VAULT.lock) is using the vault: rekey changes nothing."""
    vault = provisioned.vault
    before = vault.read_bytes()
    new_key = tmp_path / "new.key"
    new_key.write_text(NEW_KEY)
    new_key.chmod(0o600)
    holder = Holder(vault)
    try:
        code = main(["vault", "rekey", "--vault", str(vault), "--new-key-file", str(new_key)])
        assert code != 0
        err = capfd.readouterr().err
        assert f"{vault} is in use by another run: pid {holder.pid}" in err
    finally:
        holder.stop()
    assert vault.read_bytes() == before
    assert not kept_files(vault)
    assert main(["vault", "rekey", "--vault", str(vault), "--new-key-file", str(new_key)]) == 0
