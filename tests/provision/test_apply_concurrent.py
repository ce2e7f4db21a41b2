"""
Two ``bitget-keys apply`` processes started together on one vault and state file.

Both are real processes against the emulator on 127.0.0.1, on a new vault and on one an
earlier (interrupted) run left half-provisioned. One run holds the locks; the other
stops before sending anything and names it, or waits for it (``--wait-lock``) and then
finds nothing left to do. Whatever the timing: the exchange ends with exactly the plan,
no key is made twice, nobody reports a stored key as an orphan, and the vault opens
intact with every key's secret.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from pathlib import Path

import pytest

from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, Faults
from tests.provision.apply_process import (
    MASTERS,
    VAULT_KEY,
    Apply,
    emulated,
    exchange_keys,
    plan_toml,
    planned,
    trial_seeds,
)


async def half_provision(url: str, tmp_path: Path, seed: int) -> None:
    """An apply interrupted after a seeded number of results: an existing, partial vault."""
    run = await Apply.start(url, tmp_path)
    await run.read_rows(random.Random(seed).randint(10, 60))
    run.process.send_signal(signal.SIGINT)
    async with asyncio.timeout(60):
        assert await run.died() == 130, run.stderr


@pytest.mark.parametrize("seed", trial_seeds(21))
@pytest.mark.parametrize("existing", [False, True], ids=["new-vault", "existing-vault"])
@pytest.mark.parametrize("wait", [False, True], ids=["fail-at-once", "wait-lock"])
async def test_two_applies_at_once_never_duplicate_or_corrupt(
    tmp_path: Path, seed: int, existing: bool, wait: bool
) -> None:
    (tmp_path / "plan.toml").write_text(plan_toml())
    faults = Faults(latency=0.02, jitter=0.01, seed=seed)
    async with Emulator(MASTERS, seed=seed, faults=faults) as emulator:
        if existing:
            await half_provision(emulator.base_url, tmp_path, seed)
        options = ("--wait-lock",) if wait else ()
        runs = [await Apply.start(emulator.base_url, tmp_path, *options) for _ in range(2)]
        async with asyncio.timeout(180):
            codes = [await run.finish() for run in runs]
        errors = [run.stderr for run in runs]
        if wait:
            assert codes == [0, 0], errors
            # One of them ran after the other had finished: it found nothing to do.
            idle = [run for run in runs if {r["status"] for r in run.rows} == {"unchanged"}]
            assert len(idle) == 1, [Counter(r["status"] for r in run.rows) for run in runs]
        else:
            assert sorted(codes) == [0, 75], errors
            loser = runs[codes.index(75)]
            # Named by pid, host and command once the holder has written them (it may not
            # have yet, in the first milliseconds).
            assert "is in use by another run: " in loser.stderr
            assert loser.rows == []
        assert emulated(emulator) == planned()
        for run in runs:
            assert all(row["status"] in {"created", "unchanged"} for row in run.rows), run.rows
        on_exchange = exchange_keys(emulator)
        vault = SecretsVault.open(tmp_path / "keys.vault", VAULT_KEY)
        records = vault.require_intact().records
        stored = {record.api_key: record.secret().reveal() for record in records}
        assert len(stored) == len(records), "a key stored twice"
        assert stored == on_exchange
