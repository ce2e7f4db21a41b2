"""The encrypted vault: round trip, file mode, wrong key, tampering, torn writes."""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bitget_keys.errors import ConfigurationError, VaultDamagedError, VaultError, VaultWriteError
from bitget_keys.provision.vault import Damage, SecretsVault, VaultRecord, write_private_file

KEY = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "provision" / "vault_worker.py"
#: The vault passphrase of `tests/provision/vault_worker.py`.
RACE_KEY = "a long vault passphrase"


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
    assert next(reopened.records()).secret().reveal() == "SecretOne0001"


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


# -- format 2: damage is found, reported by line, and never locks out intact records ----


def filled(tmp_path: Path, count: int = 5) -> tuple[Path, list[VaultRecord]]:
    """A vault of ``count`` records (bot00, bot01, ...), on lines 3, 4, ..."""
    path = tmp_path / "keys.vault"
    vault = SecretsVault.open(path, KEY)
    records = [record(f"bot{n:02}", f"Secret{n:02}Value") for n in range(count)]
    for item in records:
        vault.append(item)
    return path, records


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def flip(line: bytes, at: int = 20) -> bytes:
    damaged = bytearray(line)
    damaged[at] = ord("A") if damaged[at] != ord("A") else ord("B")
    return bytes(damaged)


def api_keys(records: tuple[VaultRecord, ...] | list[VaultRecord]) -> list[str]:
    return [item.api_key for item in records]


def test_new_vault_has_a_checksummed_header_and_its_copy(tmp_path: Path) -> None:
    """Line 1 is the header with its sha256, line 2 the same bytes; then numbered records."""
    path, _ = filled(tmp_path, 2)
    lines = lines_of(path)
    assert lines[0] == lines[1]
    header = json.loads(lines[0])
    assert header["version"] == 3
    assert len(header["sha256"]) == 64
    assert len(lines) == 4
    scan = SecretsVault.open(path, KEY).scan()
    assert scan.clean
    assert [(e.line, e.sequence) for e in scan.entries] == [(3, 1), (4, 2)]


def test_torn_last_line_is_reported_and_the_rest_read(tmp_path: Path) -> None:
    """A crash mid-write: the last line is torn; every other record is intact."""
    path, records = filled(tmp_path)
    path.write_bytes(path.read_bytes()[:-30])
    vault = SecretsVault.open(path, KEY)
    scan = vault.scan()
    assert scan.damage == (Damage(7, "torn (incomplete write)"),)
    assert api_keys(scan.records) == api_keys(records[:4])
    assert len(vault) == 4
    with pytest.raises(VaultDamagedError, match="line 7: torn"):
        list(vault.records())


def test_flipped_byte_is_reported_by_line(tmp_path: Path) -> None:
    """One altered byte costs that record only, reported as not decrypting."""
    path, records = filled(tmp_path)
    lines = lines_of(path)
    lines[3] = flip(lines[3])
    path.write_bytes(b"".join(lines))
    scan = SecretsVault.open(path, KEY).scan()
    assert scan.damage == (Damage(4, "does not decrypt: altered, or from another vault"),)
    assert api_keys(scan.records) == api_keys([records[0], *records[2:]])


def test_deleted_line_is_detected(tmp_path: Path) -> None:
    """A removed record line shows as a gap in the sequence, at the line after it."""
    path, records = filled(tmp_path)
    lines = lines_of(path)
    del lines[4]  # record 3
    path.write_bytes(b"".join(lines))
    scan = SecretsVault.open(path, KEY).scan()
    assert scan.damage == (Damage(5, "record 3 is missing before it (a line was removed)"),)
    assert api_keys(scan.records) == api_keys(records[:2] + records[3:])


def test_duplicated_line_is_detected_and_read_once(tmp_path: Path) -> None:
    """A copied line is reported; its record comes back once."""
    path, records = filled(tmp_path, 3)
    lines = lines_of(path)
    lines.append(lines[3])
    path.write_bytes(b"".join(lines))
    scan = SecretsVault.open(path, KEY).scan()
    assert scan.damage == (Damage(6, "repeats record 2 of line 4 (left out)"),)
    assert api_keys(scan.records) == api_keys(records)


def test_reordered_lines_are_detected_and_both_kept(tmp_path: Path) -> None:
    """Two swapped records are both intact (and read), but the order is reported."""
    path, records = filled(tmp_path, 4)
    lines = lines_of(path)
    lines[3], lines[4] = lines[4], lines[3]
    path.write_bytes(b"".join(lines))
    scan = SecretsVault.open(path, KEY).scan()
    assert [d.line for d in scan.damage] == [4, 5]
    assert "out of order" in scan.damage[1].reason
    assert sorted(api_keys(scan.records)) == sorted(api_keys(records))


def test_damaged_header_is_read_from_its_copy(tmp_path: Path) -> None:
    """A flipped byte in line 1 (the salt here) is damage, recovered from line 2."""
    path, records = filled(tmp_path, 2)
    lines = lines_of(path)
    salt_at = lines[0].index(b'"salt":"') + 10
    lines[0] = flip(lines[0], salt_at)
    path.write_bytes(b"".join(lines))
    vault = SecretsVault.open(path, KEY)
    scan = vault.scan()
    assert scan.damage == (Damage(1, "the header is damaged; it was read from its copy on line 2"),)
    assert api_keys(scan.records) == api_keys(records)


def test_damaged_header_copy_is_reported(tmp_path: Path) -> None:
    """A damaged copy is damage too, though line 1 serves."""
    path, records = filled(tmp_path, 2)
    lines = lines_of(path)
    lines[1] = flip(lines[1], 30)
    path.write_bytes(b"".join(lines))
    scan = SecretsVault.open(path, KEY).scan()
    assert scan.damage == (Damage(2, "the copy of the header is damaged (line 1 is intact)"),)
    assert api_keys(scan.records) == api_keys(records)


@pytest.mark.parametrize("field", [b'"check":"', b'"salt":"', b'"version":'])
def test_both_headers_damaged_is_damage_not_a_wrong_key(tmp_path: Path, field: bytes) -> None:
    """With line 1 and its copy altered, the error says damage, whatever the key."""
    path, _ = filled(tmp_path, 1)
    lines = lines_of(path)
    at = lines[0].index(field) + len(field) + 1
    lines[0] = lines[1] = flip(lines[0], at)
    path.write_bytes(b"".join(lines))
    for key in (KEY, "another passphrase entirely"):
        with pytest.raises(VaultDamagedError) as caught:
            SecretsVault.open(path, key)
        text = str(caught.value)
        assert "the header (line 1) and its copy (line 2) are damaged" in text
        assert "not a wrong vault key" in text
        assert "key is wrong" not in text


def test_wrong_key_is_still_a_wrong_key(tmp_path: Path) -> None:
    """An intact header with another passphrase is a wrong key, not damage."""
    path, _ = filled(tmp_path, 1)
    with pytest.raises(VaultError, match="the vault key is wrong") as caught:
        SecretsVault.open(path, "another passphrase entirely")
    assert not isinstance(caught.value, VaultDamagedError)


def test_repair_recovers_every_intact_record_and_keeps_the_original(tmp_path: Path) -> None:
    """Torn last line + flipped byte + deleted line: every intact record is recovered."""
    path, records = filled(tmp_path, 8)
    lines = lines_of(path)
    lines[4] = flip(lines[4])  # record 3
    del lines[7]  # record 6
    damaged = b"".join(lines)[:-25]  # record 8 torn
    path.write_bytes(damaged)
    vault = SecretsVault.open(path, KEY)
    expected = {records[n].api_key for n in (0, 1, 3, 4, 6)}
    assert {r.api_key for r in vault.scan().records} == expected
    result = vault.repair()
    assert result.recovered == 5
    assert [d.line for d in result.damage] == [5, 8, 9]
    assert result.written == path
    assert result.kept is not None
    assert result.kept.name.startswith("keys.vault.damaged-")
    assert result.kept.read_bytes() == damaged
    reopened = SecretsVault.open(path, KEY)
    scan = reopened.scan()
    assert scan.clean
    assert {r.api_key for r in scan.records} == expected
    assert [e.sequence for e in scan.entries] == [1, 2, 3, 4, 5]
    for item in scan.records:
        original = next(r for r in records if r.api_key == item.api_key)
        assert item == original
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The repaired vault takes appends at once, with the next number.
    reopened.append(record("bot99"))
    assert SecretsVault.open(path, KEY).scan().entries[-1].sequence == 6
    # The same vault object follows the repaired file too.
    vault.append(record("bot98"))
    assert SecretsVault.open(path, KEY).require_intact().entries[-1].sequence == 7


def test_repair_to_output_leaves_the_vault_alone(tmp_path: Path) -> None:
    """With an output path the original is untouched; an existing output is refused."""
    path, records = filled(tmp_path, 3)
    lines = lines_of(path)
    lines[3] = flip(lines[3])
    path.write_bytes(b"".join(lines))
    before = path.read_bytes()
    output = tmp_path / "repaired.vault"
    result = SecretsVault.open(path, KEY).repair(output)
    assert (result.written, result.kept, result.recovered) == (output, None, 2)
    assert path.read_bytes() == before
    assert api_keys(SecretsVault.open(output, KEY).require_intact().records) == api_keys(
        [records[0], records[2]]
    )
    with pytest.raises(VaultError, match="exists"):
        SecretsVault.open(path, KEY).repair(output)


def test_repair_of_an_intact_vault_writes_nothing(tmp_path: Path) -> None:
    """Nothing to repair: no file is written or renamed."""
    path, _ = filled(tmp_path, 2)
    before = path.read_bytes()
    result = SecretsVault.open(path, KEY).repair()
    assert (result.written, result.kept, result.recovered, result.damage) == (None, None, 2, ())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.vault"]


class FullDisk:
    """A writer that stores ``room`` bytes, then fails as a full disk does."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.calls = 0

    def __call__(self, descriptor: int, data: memoryview) -> int:
        self.calls += 1
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = os.write(descriptor, data[: self.room])
        self.room -= written
        return written


@pytest.mark.parametrize("room", [0, 1, 40])
def test_a_failed_write_leaves_the_vault_as_it_was(tmp_path: Path, room: int) -> None:
    """ENOSPC after part of the line: cut back, VaultWriteError(ENOSPC), next append fine."""
    path, records = filled(tmp_path, 2)
    before = path.read_bytes()
    full = FullDisk(room)
    vault = SecretsVault.open(path, KEY, writer=full)
    lost = record("bot77", "KeepMeInMemory1")
    with pytest.raises(VaultWriteError) as caught:
        vault.append(lost)
    assert caught.value.errno == errno.ENOSPC
    assert "not stored" in str(caught.value)
    assert "KeepMeInMemory1" not in str(caught.value)
    assert path.read_bytes() == before
    assert len(vault) == 2
    vault.writer = os.write
    vault.append(lost)
    scan = SecretsVault.open(path, KEY).require_intact()
    assert api_keys(scan.records) == api_keys([*records, lost])
    assert [e.sequence for e in scan.entries] == [1, 2, 3]


def test_short_writes_still_store_whole_lines(tmp_path: Path) -> None:
    """A writer that takes 7 bytes at a time still gets the whole record written."""
    path = tmp_path / "keys.vault"

    def trickle(descriptor: int, data: memoryview) -> int:
        return os.write(descriptor, data[:7])

    vault = SecretsVault.open(path, KEY, writer=trickle)
    vault.append(record("bot01"))
    vault.append(record("bot02"))
    assert api_keys(list(SecretsVault.open(path, KEY).records())) == ["bg_bot01", "bg_bot02"]


def test_append_after_a_torn_line_gets_a_line_of_its_own(tmp_path: Path) -> None:
    """A crash left a torn line: the next record is not glued onto it."""
    path, records = filled(tmp_path, 2)
    path.write_bytes(path.read_bytes()[:-30])
    vault = SecretsVault.open(path, KEY)
    vault.append(record("bot09"))
    scan = vault.scan()
    assert scan.damage == (Damage(4, "does not decrypt: altered, or from another vault"),)
    assert api_keys(scan.records) == api_keys([records[0], record("bot09")])


def test_two_vault_objects_number_their_records_apart(tmp_path: Path) -> None:
    """Appends through two opens of one vault never reuse a sequence number."""
    path, _ = filled(tmp_path, 1)
    one, two = SecretsVault.open(path, KEY), SecretsVault.open(path, KEY)
    one.append(record("bot10"))
    two.append(record("bot20"))
    one.append(record("bot11"))
    scan = SecretsVault.open(path, KEY).require_intact()
    assert [e.sequence for e in scan.entries] == [1, 2, 3, 4]
    assert len(two) == 3


def test_append_to_a_replaced_file_is_refused(tmp_path: Path) -> None:
    """A vault replaced since it was opened is never appended to with the old key."""
    path, _ = filled(tmp_path, 1)
    vault = SecretsVault.open(path, KEY)
    other = tmp_path / "other.vault"
    SecretsVault.open(other, KEY)
    other.replace(path)
    before = path.read_bytes()
    with pytest.raises(VaultWriteError, match="replaced since it was opened"):
        vault.append(record("bot02"))
    assert path.read_bytes() == before


def test_rescue_vault_is_new_and_opens_with_the_same_key(tmp_path: Path) -> None:
    """create_rescue makes a new vault elsewhere; an existing file is never reused."""
    path, _ = filled(tmp_path, 1)
    rescue_path = tmp_path / "elsewhere" / "rescue.vault"
    rescue = SecretsVault.create_rescue(rescue_path, KEY)
    kept = record("bot42", "RescuedSecret42")
    rescue.append(kept)
    assert list(SecretsVault.open(rescue_path, KEY).records()) == [kept]
    assert stat.S_IMODE(rescue_path.stat().st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(VaultError, match="exists already"):
        SecretsVault.create_rescue(path, KEY)
    assert path.read_bytes() == before


def test_a_directory_is_not_a_vault(tmp_path: Path) -> None:
    """A directory given as the vault is a clear VaultError."""
    with pytest.raises(VaultError, match="is a directory"):
        SecretsVault.open(tmp_path, KEY)


def test_loose_permissions_are_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A vault others can read is used, with a warning naming its mode and the chmod."""
    path, _ = filled(tmp_path, 1)
    SecretsVault.open(path, KEY)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    path.chmod(0o644)
    SecretsVault.open(path, KEY)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert str(path) in warning
    assert "can be read by its group and others (mode 0644)" in warning
    assert f"chmod 600 {path}" in warning


# -- version 1 ---------------------------------------------------------------------------


def sealer(key: str, salt: bytes, n: int) -> Callable[[bytes], bytes]:
    """How vaults of versions 1 and 2 sealed a line: scrypt (``n``, r=8, p=1), AES-GCM."""
    aead = AESGCM(Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(key.encode()))

    def seal(plaintext: bytes) -> bytes:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + aead.encrypt(nonce, plaintext, salt))

    return seal


def write_v1(path: Path, items: list[VaultRecord], *, key: str = KEY) -> None:
    """A vault as version 1 wrote it: one header line without a digest, unnumbered records."""
    salt = os.urandom(16)
    n = 2**10
    seal = sealer(key, salt, n)

    header = {
        "format": "bitget-keys-vault",
        "version": 1,
        "kdf": {"name": "scrypt", "salt": base64.b64encode(salt).decode(), "n": n, "r": 8, "p": 1},
        "check": seal(b"bitget-keys vault key check").decode(),
    }
    lines = [json.dumps(header).encode()] + [seal(item.to_json()) for item in items]
    path.write_bytes(b"\n".join(lines) + b"\n")
    path.chmod(0o600)


def test_version_1_vault_is_read_appended_and_upgraded(tmp_path: Path) -> None:
    """v1 reads as before; upgrade rewrites it as v3 with the same key and records."""
    path = tmp_path / "old.vault"
    items = [record("bot01"), record("bot02")]
    write_v1(path, items)
    vault = SecretsVault.open(path, KEY)
    assert vault.version == 1
    assert list(vault.records()) == items
    vault.append(record("bot03"))
    assert api_keys(list(SecretsVault.open(path, KEY).records())) == [
        "bg_bot01",
        "bg_bot02",
        "bg_bot03",
    ]
    assert vault.upgrade() is True
    assert vault.upgrade() is False
    assert vault.version == 3
    lines = lines_of(path)
    assert lines[0] == lines[1]
    assert json.loads(lines[0])["version"] == 3
    reopened = SecretsVault.open(path, KEY)
    scan = reopened.require_intact()
    assert api_keys(scan.records) == ["bg_bot01", "bg_bot02", "bg_bot03"]
    assert [e.sequence for e in scan.entries] == [1, 2, 3]
    vault.append(record("bot04"))
    assert SecretsVault.open(path, KEY).require_intact().entries[-1].sequence == 4


def test_version_1_damage_is_found_and_upgrade_refuses_it(tmp_path: Path) -> None:
    """A v1 vault's damaged record is reported; upgrade leaves a damaged v1 alone."""
    path = tmp_path / "old.vault"
    write_v1(path, [record("bot01"), record("bot02")])
    lines = lines_of(path)
    lines[1] = flip(lines[1])
    path.write_bytes(b"".join(lines))
    vault = SecretsVault.open(path, KEY)
    assert vault.scan().damage == (Damage(2, "does not decrypt: altered, or from another vault"),)
    before = path.read_bytes()
    with pytest.raises(VaultDamagedError, match="line 2"):
        vault.upgrade()
    assert path.read_bytes() == before
    with pytest.raises(VaultError, match=r"the vault key is wrong.*version-1"):
        SecretsVault.open(path, "another passphrase entirely")


# -- two real processes at once ---------------------------------------------------------


class Racer:
    """A `tests/provision/vault_worker.py race` process, fed one round at a time."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), "race"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def result(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the worker died"
        return dict(json.loads(line))

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0
        assert self.process.stdout is not None
        self.process.stdout.close()


def test_two_processes_creating_one_vault_never_destroy_it(tmp_path: Path) -> None:
    """
    Two real processes create the same new vault and append to it at once, 21 times:
    without the lock (the file's own guarantees), waiting for it, and giving up at once.
    Every vault opens intact and holds exactly the records of the runs that succeeded.
    """
    racers = [Racer(), Racer()]
    destroyed = []
    try:
        for number in range(21):
            mode = ("nolock", "wait", "nowait")[number % 3]
            path = tmp_path / f"race{number}.vault"
            for side, racer in enumerate(racers):
                racer.send(f"round {path} {mode} 6 r{number}p{side}")
            results = [racer.result() for racer in racers]
            stored = [key for result in results for key in result["stored"]]
            if mode != "nowait":
                assert not any(result["locked"] for result in results)
                assert len(stored) == 12
            else:
                assert len(stored) in {6, 12}
            try:
                scan = SecretsVault.open(path, RACE_KEY).require_intact()
            except VaultError as exc:
                destroyed.append(f"{mode}: {exc}")
                continue
            assert sorted(api_keys(scan.records)) == sorted(stored), mode
            for item in scan.records:
                assert item.secret().reveal() == f"secret-of-{item.api_key}"
    finally:
        for racer in racers:
            racer.stop()
    assert destroyed == []
