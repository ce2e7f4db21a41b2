"""
`bitget-keys apply` when what it depends on fails mid-run: Redis dies, the disk fills.

Real parts: the apply is its own process against the emulator on 127.0.0.1; Redis is a
real ``redis-server`` that the test stops; the full disk is a tiny tmpfs (mounted when
the test runs as root, as CI does) or, in process, a vault whose writes fail with
ENOSPC. In every case the promise is the same: every key whose answer arrived has its
secret stored somewhere the operator is told about, and nothing is sent after the
failure except what was already on its way.
"""

from __future__ import annotations

import asyncio
import errno
import os
import random
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bitget_keys.cli import main
from bitget_keys.errors import VaultError
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, Faults
from bitget_keys.testing._redis_server import RedisServer, find_redis_server
from tests.provision.apply_process import (
    CREATES,
    MASTERS,
    SUBACCOUNTS,
    VAULT_KEY,
    Apply,
    ArrivalEmulator,
    emulated,
    environment,
    exchange_keys,
    plan_toml,
    planned,
    trial_seeds,
    vault_keys,
)


def _require_redis() -> None:
    if find_redis_server() is None:
        if os.environ.get("BITGET_KEYS_REQUIRE_REDIS"):
            pytest.fail("redis-server is required here (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")


@pytest.mark.parametrize("seed", trial_seeds(11))
async def test_redis_dying_mid_run_loses_no_answer_on_the_wire(tmp_path: Path, seed: int) -> None:
    """
    Redis stops while creates are on the wire: their answers are still stored, nothing
    new is sent, the run says the backend failed and exits 4 (or 1 when nothing was
    created); a later apply completes.
    """
    _require_redis()
    (tmp_path / "plan.toml").write_text(plan_toml())
    faults = Faults(latency=0.5, seed=seed, endpoints=CREATES)
    with RedisServer() as redis:
        async with ArrivalEmulator(MASTERS, seed=seed, faults=faults) as emulator:
            run = await Apply.start(emulator.base_url, tmp_path, "--redis", redis.url)
            # Redis dies while further keys are on the wire.
            await emulator.arrival(
                "create_virtual_subaccount_api_key", random.Random(seed).randint(1, 12)
            )
            redis.stop()
            async with asyncio.timeout(60):
                code = await run.died()
            assert "apply stopped (the rate-limit backend failed" in run.stderr
            statuses = Counter(row["status"] for row in run.rows)
            # Partial (4) when anything was created before Redis went, else failed (1).
            assert code == (4 if statuses["created"] else 1), run.stderr
            assert set(statuses) <= {"created", "failed", "stopped"}, statuses
            not_sent = [row for row in run.rows if row["status"] in {"failed", "stopped"}]
            assert not_sent
            assert all("not sent" in row["detail"] for row in not_sent), [
                (row["status"], row["detail"])
                for row in not_sent
                if "not sent" not in row["detail"]
            ]
            # Every key the exchange made, in flight when Redis died or not, is stored.
            on_exchange = exchange_keys(emulator)
            assert 0 < len(on_exchange) < len(MASTERS) * SUBACCOUNTS * 2
            assert vault_keys(tmp_path) == on_exchange

            last = await Apply.start(emulator.base_url, tmp_path)
            await last.finish()
            assert emulated(emulator) == planned(), last.stderr
            assert {row["status"] for row in last.rows} <= {"created", "unchanged"}
            assert vault_keys(tmp_path) == exchange_keys(emulator)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 KiB tmpfs: room for a vault of a few dozen records, then ENOSPC."""
    if os.geteuid() != 0 or not Path("/bin/mount").exists():
        pytest.skip("mounting a tmpfs needs root")
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["/bin/mount", "-t", "tmpfs", "-o", "size=24k,mode=0700", "tmpfs", str(mountpoint)],
        check=False,
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["/bin/umount", "-l", str(mountpoint)], check=False)


@pytest.mark.parametrize("seed", trial_seeds(12))
async def test_a_full_disk_keeps_every_secret_and_rescues_them(
    tmp_path: Path, tiny_disk: Path, seed: int
) -> None:
    """
    The vault's disk fills mid-run: apply stops sending, saves the secrets it holds to an
    emergency vault in --rescue-dir, says where, and exits 1. The vault itself is intact
    (no torn record), and vault + rescue hold exactly the keys on the exchange.
    """
    (tmp_path / "plan.toml").write_text(plan_toml())
    rescue_dir = tmp_path / "rescue"
    rescue_dir.mkdir()
    vault = tiny_disk / "keys.vault"
    async with Emulator(MASTERS, seed=seed) as emulator:
        run = await Apply.start(
            emulator.base_url, tmp_path, "--vault", str(vault), "--rescue-dir", str(rescue_dir)
        )
        async with asyncio.timeout(120):
            code = await run.finish()
        assert code == 1, run.stderr
        assert "the vault could not be written" in run.stderr
        (rescued,) = rescue_dir.iterdir()
        assert "saved" in run.stderr
        assert str(rescued) in run.stderr
        stored = {
            r.api_key: r.secret().reveal() for r in SecretsVault.open(vault, VAULT_KEY).records()
        }
        saved = {
            r.api_key: r.secret().reveal() for r in SecretsVault.open(rescued, VAULT_KEY).records()
        }
        assert stored
        assert saved
        assert not set(stored) & set(saved)
        on_exchange = exchange_keys(emulator)
        assert stored | saved == on_exchange
        # Sending stopped at the failure: the plan is far from complete.
        assert len(on_exchange) < len(MASTERS) * SUBACCOUNTS * 2
        statuses = Counter(row["status"] for row in run.rows)
        assert statuses["stopped"] > 0, statuses
        held = [row for row in run.rows if "held in memory" in row["detail"]]
        assert {row["api_key"] for row in held} == set(saved)


async def test_a_vault_that_stays_unwritable_hands_its_secrets_to_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """
    In process: the vault takes 5 records, then every write fails with ENOSPC. Nothing
    arrived is dropped: the rescue vault holds the rest, and no create went out after
    the failure except those already waiting for their answers.
    """
    monkeypatch.setenv("BITGET_KEYS_VAULT_KEY", VAULT_KEY)
    for name, value in environment().items():
        if name.startswith("DESK"):
            monkeypatch.setenv(name, value)
    (tmp_path / "plan.toml").write_text(plan_toml())
    original = SecretsVault.append
    written: list[str] = []

    def append(self: SecretsVault, record: object) -> None:
        if self.path.name == "keys.vault" and len(written) >= 5:
            raise VaultError(str(self.path), f"could not write: {os.strerror(errno.ENOSPC)}")
        original(self, record)  # type: ignore[arg-type]
        written.append(self.path.name)

    monkeypatch.setattr(SecretsVault, "append", append)
    monkeypatch.setattr("bitget_keys.provision.ledger.FLUSH_BACKOFF", 0.01)
    rescue_dir = tmp_path / "rescue"
    rescue_dir.mkdir()
    async with Emulator(MASTERS, seed=13) as emulator:
        argv = ["apply", str(tmp_path / "plan.toml"), "--base-url", emulator.base_url]
        argv += ["--json", "--yes", "--vault", str(tmp_path / "keys.vault"), "--create-vault"]
        argv += ["--state", str(tmp_path / "apply.state"), "--rescue-dir", str(rescue_dir)]
        code = await asyncio.to_thread(main, argv)
    out, err = capfd.readouterr()
    assert code == 1, err
    assert "No space left on device" in err
    (rescued,) = rescue_dir.iterdir()
    saved = {r.api_key for r in SecretsVault.open(rescued, VAULT_KEY).records()}
    stored = {r.api_key for r in SecretsVault.open(tmp_path / "keys.vault", VAULT_KEY).records()}
    assert len(stored) == 5
    assert stored | saved == set(exchange_keys(emulator))
    assert not stored & saved
    assert VAULT_KEY not in out + err
