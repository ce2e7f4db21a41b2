"""The vault's key derivation (Argon2id, the scrypt fallback, old vaults), rekey, and keys stored again."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import attrs
import pytest
from cryptography.exceptions import UnsupportedAlgorithm

from bitget_keys.errors import (
    ConfigurationError,
    VaultDamagedError,
    VaultError,
    VaultKeyError,
)
from bitget_keys.provision import vault_kdf
from bitget_keys.provision.vault import SecretsVault, VaultRecord
from bitget_keys.provision.vault_kdf import (
    ARGON2ID,
    FAST_INSECURE,
    LEGACY_SCRYPT,
    SCRYPT_FALLBACK,
    Argon2idKdf,
    ScryptKdf,
    outdated,
)
from tests.provision.test_vault import KEY, api_keys, flip, lines_of, record, sealer, write_v1

NEW_KEY = "a brand new vault passphrase"


@pytest.fixture
def real_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Today's derivation for new vaults, which the suite's conftest makes cheap elsewhere."""
    monkeypatch.setattr(vault_kdf, "ARGON2ID", ARGON2ID)


def header_of(path: Path) -> dict[str, object]:
    header: dict[str, object] = json.loads(lines_of(path)[0])
    return header


def write_v2(path: Path, items: list[VaultRecord], *, key: str = KEY) -> None:
    """A vault as version 2 wrote it: scrypt N = 2^15, a checksummed header and its copy."""
    salt = os.urandom(16)
    seal = sealer(key, salt, LEGACY_SCRYPT.n)
    fields = {
        "format": "bitget-keys-vault",
        "version": 2,
        "kdf": {
            "name": "scrypt",
            "salt": base64.b64encode(salt).decode(),
            "n": 2**15,
            "r": 8,
            "p": 1,
        },
        "check": seal(b"bitget-keys vault key check").decode(),
    }
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
    header = json.dumps({**fields, "sha256": digest.hexdigest()}).encode()
    records = [
        seal(json.dumps({"seq": n, "record": item.to_dict(reveal=True)}).encode())
        for n, item in enumerate(items, 1)
    ]
    path.write_bytes(b"\n".join([header, header, *records]) + b"\n")
    path.chmod(0o600)


def checksummed(fields: dict[str, object]) -> bytes:
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
    return json.dumps({**fields, "sha256": digest.hexdigest()}).encode()


def rewrite_header(path: Path, kdf_fields: dict[str, object]) -> None:
    """Replace the header's ``kdf`` fields (and the copy), with a correct checksum."""
    fields = header_of(path)
    del fields["sha256"]
    kdf = fields["kdf"]
    assert isinstance(kdf, dict)
    fields["kdf"] = {"name": kdf_fields.get("name"), "salt": kdf["salt"], **kdf_fields}
    line = checksummed(fields)
    rest = lines_of(path)[2:]
    path.write_bytes(b"\n".join([line, line, *rest]) + b"\n")


# -- key derivation ----------------------------------------------------------------------


@pytest.mark.usefixtures("real_kdf")
def test_a_new_vault_derives_its_key_with_argon2id_and_says_so(tmp_path: Path) -> None:
    """By default: Argon2id, 64 MiB, 3 passes, 4 lanes, named in the checksummed header."""
    path = tmp_path / "v.vault"
    vault = SecretsVault.open(path, KEY)
    item = record()
    vault.append(item)
    assert vault.kdf == ARGON2ID == Argon2idKdf(memory_kib=65536, iterations=3, lanes=4)
    kdf = header_of(path)["kdf"]
    assert isinstance(kdf, dict)
    assert {k: v for k, v in kdf.items() if k != "salt"} == {
        "name": "argon2id",
        "memory_kib": 65536,
        "iterations": 3,
        "lanes": 4,
    }
    assert header_of(path)["version"] == 3
    reopened = SecretsVault.open(path, KEY)
    assert reopened.kdf == ARGON2ID
    assert list(reopened.records()) == [item]
    with pytest.raises(VaultKeyError):
        SecretsVault.open(path, "another passphrase entirely")
    assert not outdated(ARGON2ID)
    assert not outdated(SCRYPT_FALLBACK)
    assert outdated(LEGACY_SCRYPT)
    assert outdated(FAST_INSECURE)


def test_without_argon2id_new_vaults_use_scrypt_at_2_17(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenSSL without Argon2id (UnsupportedAlgorithm): scrypt N = 2^17, recorded as such."""

    def unsupported(**_: object) -> None:
        msg = "argon2id is not supported by this OpenSSL"
        raise UnsupportedAlgorithm(msg)

    monkeypatch.setattr(vault_kdf, "Argon2id", unsupported)
    assert vault_kdf.default_kdf() == SCRYPT_FALLBACK == ScryptKdf(n=2**17, r=8, p=1)
    path = tmp_path / "v.vault"
    item = record()
    SecretsVault.open(path, KEY).append(item)
    kdf = header_of(path)["kdf"]
    assert isinstance(kdf, dict)
    assert (kdf["name"], kdf["n"], kdf["r"], kdf["p"]) == ("scrypt", 2**17, 8, 1)
    reopened = SecretsVault.open(path, KEY)
    assert reopened.kdf == SCRYPT_FALLBACK
    assert list(reopened.records()) == [item]


def test_the_cheap_test_setting_is_used_only_when_passed(tmp_path: Path) -> None:
    """kdf= decides a new vault's derivation; an existing vault opens with its header's."""
    path = tmp_path / "v.vault"
    SecretsVault.open(path, KEY, kdf=FAST_INSECURE).append(record())
    assert SecretsVault.open(path, KEY).kdf == FAST_INSECURE
    assert SecretsVault.open(path, KEY, kdf=ARGON2ID).kdf == FAST_INSECURE


def test_a_version_2_vault_is_read_and_upgraded_with_its_key(tmp_path: Path) -> None:
    """Version 2 (scrypt 2^15) reads as before; upgrade makes it version 3, same derivation."""
    path = tmp_path / "old.vault"
    items = [record("bot01"), record("bot02")]
    write_v2(path, items)
    vault = SecretsVault.open(path, KEY)
    assert (vault.version, vault.kdf) == (2, LEGACY_SCRYPT)
    assert list(vault.records()) == items
    assert vault.upgrade() is True
    assert header_of(path)["version"] == 3
    reopened = SecretsVault.open(path, KEY)
    assert (reopened.version, reopened.kdf) == (3, LEGACY_SCRYPT)
    assert list(reopened.records()) == items


def test_an_unknown_derivation_is_named_not_called_damage(tmp_path: Path) -> None:
    """A checksummed header naming a derivation this version lacks: a clear error."""
    path = tmp_path / "v.vault"
    SecretsVault.open(path, KEY, kdf=FAST_INSECURE).append(record())
    rewrite_header(path, {"name": "balloon", "space": 4})
    with pytest.raises(VaultError, match="unknown key derivation 'balloon'") as caught:
        SecretsVault.open(path, KEY)
    assert not isinstance(caught.value, VaultDamagedError)


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "argon2id", "memory_kib": 2**30, "iterations": 3, "lanes": 4},
        {"name": "argon2id", "memory_kib": 64, "iterations": 0, "lanes": 1},
        {"name": "argon2id", "memory_kib": "lots", "iterations": 1, "lanes": 1},
        {"name": "scrypt", "n": 2**24, "r": 8, "p": 1},
    ],
    ids=["argon2-1TiB", "argon2-no-pass", "argon2-not-a-number", "scrypt-2GiB"],
)
def test_absurd_derivation_parameters_are_damage(tmp_path: Path, fields: dict[str, object]) -> None:
    """A header asking for a terabyte (or nothing sane) is refused, never run."""
    path = tmp_path / "v.vault"
    SecretsVault.open(path, KEY, kdf=FAST_INSECURE).append(record())
    rewrite_header(path, fields)
    with pytest.raises(VaultDamagedError):
        SecretsVault.open(path, KEY)


# -- rekey -------------------------------------------------------------------------------


def test_rekey_keeps_every_record_and_changes_the_passphrase(tmp_path: Path) -> None:
    """
    Same records (secrets too) after; the old passphrase is refused, the new one opens it;
    the old file is kept beside it and still opens with the old passphrase.
    """
    path = tmp_path / "v.vault"
    vault = SecretsVault.open(path, KEY, kdf=FAST_INSECURE)
    items = [record(f"bot{n:02}", f"Secret{n:02}Value") for n in range(5)]
    for item in items:
        vault.append(item)
    before = path.read_bytes()
    rekey = vault.rekey(NEW_KEY, kdf=FAST_INSECURE)
    assert rekey.records == 5
    assert rekey.kept.name.startswith("v.vault.pre-rekey-")
    assert rekey.kept.read_bytes() == before
    with pytest.raises(VaultKeyError):
        SecretsVault.open(path, KEY)
    reopened = SecretsVault.open(path, NEW_KEY)
    assert list(reopened.records()) == items
    assert [r.secret().reveal() for r in reopened.records()] == [
        f"Secret{n:02}Value" for n in range(5)
    ]
    assert list(SecretsVault.open(rekey.kept, KEY).records()) == items
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    vault.append(record("bot99"))  # the object goes on with the new key and numbering
    assert api_keys(list(SecretsVault.open(path, NEW_KEY).records()))[-1] == "bg_bot99"
    assert SecretsVault.open(path, NEW_KEY).require_intact().entries[-1].sequence == 6


@pytest.mark.usefixtures("real_kdf")
@pytest.mark.parametrize("version", [1, 2])
def test_rekey_upgrades_an_old_vault_to_today_s_derivation(tmp_path: Path, version: int) -> None:
    """Versions 1 and 2 (scrypt 2^15) become version 3 with Argon2id."""
    path = tmp_path / "old.vault"
    items = [record("bot01"), record("bot02")]
    (write_v1 if version == 1 else write_v2)(path, items)
    vault = SecretsVault.open(path, KEY)
    rekey = vault.rekey(NEW_KEY)
    assert rekey.kdf == ARGON2ID
    reopened = SecretsVault.open(path, NEW_KEY)
    assert (reopened.version, reopened.kdf) == (3, ARGON2ID)
    assert list(reopened.records()) == items
    assert SecretsVault.open(rekey.kept, KEY).version == version


def test_rekey_refuses_a_damaged_vault_and_a_short_passphrase(tmp_path: Path) -> None:
    """Nothing changes: repair comes first; a new passphrase needs 12 characters."""
    path = tmp_path / "v.vault"
    vault = SecretsVault.open(path, KEY, kdf=FAST_INSECURE)
    for n in range(3):
        vault.append(record(f"bot{n}"))
    with pytest.raises(ConfigurationError, match="at least 12 characters"):
        vault.rekey("short", kdf=FAST_INSECURE)
    lines = lines_of(path)
    lines[3] = flip(lines[3])
    path.write_bytes(b"\n".join(lines) + b"\n")
    before = path.read_bytes()
    with pytest.raises(VaultDamagedError, match="vault repair"):
        SecretsVault.open(path, KEY).rekey(NEW_KEY, kdf=FAST_INSECURE)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.vault"]


# -- a key stored again -------------------------------------------------------------------


def test_a_key_stored_again_counts_once_with_its_last_record(tmp_path: Path) -> None:
    """A record appended again with the sub-account UID takes the first one's place."""
    path = tmp_path / "v.vault"
    vault = SecretsVault.open(path, KEY, kdf=FAST_INSECURE)
    first = attrs.evolve(record("bot01"), subaccount_uid=None)
    second = record("bot02")
    vault.append(first)
    vault.append(second)
    completed = attrs.evolve(first, subaccount_uid="2000000777")
    vault.append(completed)
    assert len(vault) == 2
    reopened = SecretsVault.open(path, KEY)
    assert len(reopened) == 2
    assert list(reopened.records()) == [completed, second]
    assert len(reopened.scan().entries) == 3
    # A rewrite keeps one record per key.
    reopened.rekey(NEW_KEY, kdf=FAST_INSECURE)
    assert len(SecretsVault.open(path, NEW_KEY).scan().entries) == 2
    assert list(SecretsVault.open(path, NEW_KEY).records()) == [completed, second]
