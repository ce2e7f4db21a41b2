"""The encrypted vault: round trip, file mode, wrong key, tampering, torn writes."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bitget_keys._vault import SecretsVault, VaultRecord, write_private_file
from bitget_keys.errors import ConfigurationError, VaultError

KEY = "correct horse battery staple"


def record(label: str = "bot01", secret: str = "NewSecretKey0001") -> VaultRecord:
    return VaultRecord(
        kind="virtual_subaccount_key",
        account="desk-a",
        master_uid="1000000001",
        api_key=f"bg_{label}",
        secret_key=secret,
        passphrase="Passw0rd1234",
        label=label,
        subaccount_uid="2000000001",
        subaccount_name="alphabot",
        permissions=["spot_trade"],
        ip_list=["203.0.113.7"],
    )


def test_round_trip(tmp_path: Path) -> None:
    """Records come back equal, in order, after reopening."""
    path = tmp_path / "vault.bkv"
    vault = SecretsVault.open(path, KEY)
    first, second = record("bot01", "SecretOne0001"), record("bot02", "SecretTwo0002")
    vault.append(first)
    vault.append(second)
    assert len(vault) == 2
    reopened = SecretsVault.open(path, KEY)
    assert len(reopened) == 2
    assert list(reopened.records()) == [first, second]
    assert next(reopened.records()).secret_key.reveal() == "SecretOne0001"


def test_file_mode_is_0600(tmp_path: Path) -> None:
    """Only the owner can read or write the vault."""
    path = tmp_path / "vault.bkv"
    SecretsVault.open(path, KEY).append(record())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_nothing_in_clear_on_disk(tmp_path: Path) -> None:
    """Neither the secret, the passphrase nor the API key is readable in the file."""
    path = tmp_path / "vault.bkv"
    SecretsVault.open(path, KEY).append(record(secret="PlainSecretXYZ"))
    raw = path.read_bytes()
    for value in (b"PlainSecretXYZ", b"Passw0rd1234", b"bg_bot01", KEY.encode()):
        assert value not in raw


def test_wrong_key_is_refused(tmp_path: Path) -> None:
    """A wrong passphrase is told apart before any record is read."""
    path = tmp_path / "vault.bkv"
    SecretsVault.open(path, KEY).append(record())
    with pytest.raises(VaultError, match="key is wrong"):
        SecretsVault.open(path, "another passphrase entirely")


def test_tampered_record_is_reported(tmp_path: Path) -> None:
    """One flipped character makes its line fail to open, by line number."""
    path = tmp_path / "vault.bkv"
    vault = SecretsVault.open(path, KEY)
    vault.append(record("bot01"))
    vault.append(record("bot02"))
    lines = path.read_bytes().splitlines(keepends=True)
    target = bytearray(lines[2])
    target[10] = ord("A") if target[10] != ord("A") else ord("B")
    lines[2] = bytes(target)
    path.write_bytes(b"".join(lines))
    with pytest.raises(VaultError, match="line 3"):
        list(SecretsVault.open(path, KEY).records())


def test_record_from_another_vault_is_refused(tmp_path: Path) -> None:
    """A line copied from a vault with the same passphrase but another salt fails."""
    one, two = tmp_path / "one.bkv", tmp_path / "two.bkv"
    SecretsVault.open(one, KEY).append(record())
    SecretsVault.open(two, KEY)
    with two.open("ab") as file:
        # The last line of `one` is its record; `two` has its two header lines.
        file.write(one.read_bytes().splitlines(keepends=True)[-1])
    with pytest.raises(VaultError, match="line 3"):
        list(SecretsVault.open(two, KEY).records())


def test_torn_last_line_is_reported(tmp_path: Path) -> None:
    """A write cut short by a crash is reported as torn, not skipped."""
    path = tmp_path / "vault.bkv"
    SecretsVault.open(path, KEY).append(record())
    whole = path.read_bytes()
    path.write_bytes(whole[:-20])
    with pytest.raises(VaultError, match="incomplete write"):
        list(SecretsVault.open(path, KEY).records())


def test_not_a_vault(tmp_path: Path) -> None:
    """Any other file is refused with a clear message."""
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(VaultError, match="not a bitget-keys vault"):
        SecretsVault.open(path, KEY)


def test_short_passphrase_for_a_new_vault(tmp_path: Path) -> None:
    """A new vault needs a passphrase of at least 12 characters."""
    with pytest.raises(ConfigurationError, match="12"):
        SecretsVault.open(tmp_path / "v.bkv", "short")


def test_reprs_hide_secrets(tmp_path: Path) -> None:
    """Neither the vault nor a record prints a secret."""
    vault = SecretsVault.open(tmp_path / "v.bkv", KEY)
    item = record(secret="HiddenSecret99")
    text = repr(vault) + repr(item) + str(item)
    assert "HiddenSecret99" not in text
    assert "Passw0rd1234" not in text
    assert "bg_bot01" in text


def test_record_dict_masks_unless_revealed() -> None:
    """`to_dict` shows ******** for the secrets, and the values only with reveal."""
    item = record(secret="DictSecret0001")
    masked, revealed = item.to_dict(), item.to_dict(reveal=True)
    assert masked["secret_key"] == masked["passphrase"] == "********"
    assert "DictSecret0001" not in str(masked)
    assert revealed["secret_key"] == "DictSecret0001"
    assert revealed["passphrase"] == "Passw0rd1234"
    assert VaultRecord.from_json(item.to_json()) == item
    assert item.qualified_label == "alphabot/bot01"


def test_private_file_is_0600_and_never_clobbered(tmp_path: Path) -> None:
    """A private file is created 0600; an existing one is kept unless overwrite is asked."""
    path = tmp_path / "export.json"
    write_private_file(path, b"first")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_private_file(path, b"second")
    assert path.read_bytes() == b"first"
    path.chmod(0o644)
    write_private_file(path, b"third", overwrite=True)
    assert path.read_bytes() == b"third"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.json"]
