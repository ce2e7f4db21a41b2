"""
`bitget-keys apply` interrupted by real signals, as an operator or a supervisor does it.

Each apply is its own process (``python -m bitget_keys apply --json``) against the
emulator on 127.0.0.1, which runs in the test's event loop with a latency, so requests
are on the wire when the signal lands. The signal is sent after a seeded number of
result lines. Every test then checks what the product promises: every key whose answer
arrived is in the vault, the rest are reported with their identity, and a last apply
completes the plan with no duplicate.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import random
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from bitget_keys.testing import Emulator, Faults
from tests.provision.apply_process import (
    CREATES,
    MASTERS,
    SUBACCOUNTS,
    VAULT_KEY,
    Apply,
    ArrivalEmulator,
    complete,
    environment,
    exchange_keys,
    plan_toml,
    trial_seeds,
    vault_keys,
)


@pytest.mark.parametrize("seed", trial_seeds(7, 9))
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_stops_sending_and_stores_every_answer_on_the_wire(
    tmp_path: Path, sig: signal.Signals, seed: int
) -> None:
    """
    One signal: the run sends nothing new, waits for the answers on the wire, stores
    their secrets, exits 128 + signal, and every key on the exchange is in the vault.
    """
    (tmp_path / "plan.toml").write_text(plan_toml())
    rng = random.Random(seed)
    faults = Faults(latency=0.2, jitter=0.05, seed=seed)
    async with Emulator(MASTERS, seed=seed, faults=faults) as emulator:
        run = await Apply.start(emulator.base_url, tmp_path)
        await run.read_rows(rng.randint(1, 40))
        run.process.send_signal(sig)
        async with asyncio.timeout(60):
            code = await run.died()
        assert code == 128 + sig, run.stderr
        assert f"{sig.name}: stopping" in run.stderr
        assert "apply stopped (interrupted by" in run.stderr
        statuses = Counter(row["status"] for row in run.rows)
        assert statuses["stopped"] > 0, statuses
        assert set(statuses) <= {"created", "stopped", "unchanged"}, statuses
        # Nothing was abandoned: every key the exchange made is in the vault.
        on_exchange = exchange_keys(emulator)
        stored = vault_keys(tmp_path)
        assert 0 < len(on_exchange) < len(MASTERS) * SUBACCOUNTS * 2
        assert stored == on_exchange
        created = {row["api_key"] for row in run.rows if row["status"] == "created"}
        assert created == set(stored)
        # Nothing it printed while stopping holds a secret.
        printed = json.dumps(run.rows) + run.stderr
        assert not [secret for secret in on_exchange.values() if secret in printed]
        assert VAULT_KEY not in printed

        last = await complete(emulator.base_url, tmp_path, emulator)
        assert {row["status"] for row in last.rows} <= {"created", "unchanged"}
        assert vault_keys(tmp_path) == exchange_keys(emulator)


@pytest.mark.parametrize("seed", trial_seeds(3))
async def test_a_second_signal_abandons_answers_and_names_their_items(
    tmp_path: Path, seed: int
) -> None:
    """
    Two signals: the run stops at once; the items whose answers it abandoned are reported
    unknown by name, and the next apply finds their keys as orphans, never duplicates.
    """
    (tmp_path / "plan.toml").write_text(plan_toml())
    # Creates take 1.5 s to reach the exchange: once the first batches are answered, the
    # sub-accounts' further keys go out at once and are on the wire for that long.
    faults = Faults(latency=1.5, seed=seed, endpoints=CREATES)
    async with ArrivalEmulator(MASTERS, seed=seed, faults=faults) as emulator:
        run = await Apply.start(emulator.base_url, tmp_path)
        # Signalled while further keys are on the wire (arrived, not yet carried out).
        await emulator.arrival(
            "create_virtual_subaccount_api_key", random.Random(seed).randint(1, 12)
        )
        run.process.send_signal(signal.SIGINT)
        await asyncio.sleep(0.1)
        run.process.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            code = await run.died()
        assert code == 130, run.stderr
        assert "SIGINT again: stopping now" in run.stderr
        unknown = {
            (row["subaccount"], row["key"]) for row in run.rows if row["status"] == "unknown"
        }
        assert unknown, run.rows
        # Each abandoned item is named, with its sub-account and key label.
        assert all(sub and key for sub, key in unknown)
        # Every planned item is accounted for, and nothing else was sent.
        statuses = Counter(row["status"] for row in run.rows)
        assert set(statuses) == {"created", "unknown", "stopped"}, statuses
        assert sum(statuses.values()) == len(MASTERS) * SUBACCOUNTS * 3
        # The exchange carries the abandoned requests out after their latency.
        await asyncio.sleep(2)
        on_exchange = exchange_keys(emulator)
        stored = vault_keys(tmp_path)
        assert set(stored) <= set(on_exchange)
        assert all(on_exchange[key] == secret for key, secret in stored.items())
        lost = set(on_exchange) - set(stored)

        last = await complete(emulator.base_url, tmp_path, emulator)
        orphans = {row["api_key"] for row in last.rows if row["status"] == "orphan"}
        assert orphans == lost
        orphan_items = {
            (row["subaccount"], row["key"]) for row in last.rows if row["status"] == "orphan"
        }
        # Every orphan is an item the interrupted run said it did not know about.
        assert orphan_items <= unknown | {(sub, sub) for sub, _ in unknown}


async def test_ctrl_c_at_the_confirmation_prompt_cancels(tmp_path: Path) -> None:
    """The first Ctrl-C at apply's [y/N] prompt ends it, and nothing is created."""
    (tmp_path / "plan.toml").write_text(plan_toml())
    async with Emulator(MASTERS, seed=5) as emulator:
        argv = ["-m", "bitget_keys", "apply", str(tmp_path / "plan.toml")]
        argv += ["--base-url", emulator.base_url, "--vault", str(tmp_path / "keys.vault")]
        argv += ["--state", str(tmp_path / "apply.state"), "--create-vault"]
        controller, terminal = pty.openpty()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *argv,
                stdin=terminal,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=environment(),
            )
            os.close(terminal)
            assert process.stderr is not None
            seen = b""
            async with asyncio.timeout(30):
                while b"[y/N]" not in seen:
                    chunk = await process.stderr.read(256)
                    assert chunk, seen.decode()
                    seen += chunk
            process.send_signal(signal.SIGINT)
            async with asyncio.timeout(30):
                code = await process.wait()
                seen += await process.stderr.read()
        finally:
            os.close(controller)
        assert code == 130, seen.decode()
        assert b"apply cancelled; nothing was created" in seen
        assert exchange_keys(emulator) == {}
        assert not (tmp_path / "keys.vault").exists()
