"""
`bitget-keys apply` killed with SIGKILL, again and again, then run to completion.

The emulator serves on 127.0.0.1 from the test's own event loop (so it outlives every
killed apply), with its real per-UID limits. Each apply is a separate process,
``python -m bitget_keys apply --json``, as a user runs it. The first is killed very
early; the next ones at seeded-random points while creates are in flight, one of them
from inside the emulator at the worst moment: a create has been carried out and its
answer (with the new secret) is about to leave. A last apply then runs to its end.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bitget_keys import _endpoints as ep
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, EmulatorAccount
from bitget_keys.testing._state import Answer
from tests.provision.apply_process import (
    MASTERS,
    SUBACCOUNTS,
    VAULT_KEY,
    Apply,
    emulated,
    plan_toml,
    planned,
    trial_seeds,
)

SEED = 1122


class KillingEmulator(Emulator):
    """An emulator that kills a process once it has carried out that process's n-th create."""

    def __init__(self, accounts: list[EmulatorAccount], *, seed: int) -> None:
        super().__init__(accounts, seed=seed)
        self.victim: int | None = None
        self.countdown = 0
        #: The keys made by the create whose answer the victim never got.
        self.lost: tuple[str, ...] = ()

    async def process(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Any,
        body: bytes,
        client_ip: str,
    ) -> tuple[Answer | None, bool]:
        answer, took_effect = await super().process(
            method=method, path=path, query=query, headers=headers, body=body, client_ip=client_ip
        )
        endpoint = next((e for e in ep.ENDPOINTS.values() if e.path == path), None)
        if self.victim is None or endpoint is None or not endpoint.creates or not took_effect:
            return answer, took_effect
        self.countdown -= 1
        if self.countdown == 0 and answer is not None:
            os.kill(self.victim, signal.SIGKILL)
            self.victim = None
            rows = json.loads(answer.body)["data"]
            rows = rows if isinstance(rows, list) else [rows]
            self.lost = tuple(row["subAccountApiKey"] for row in rows)
            # Long enough for the kill to land before this answer is written.
            await asyncio.sleep(0.1)
        return answer, took_effect


@pytest.mark.parametrize("seed", trial_seeds(SEED))
async def test_applies_killed_at_random_points_then_completed_lose_nothing(
    tmp_path: Path, seed: int
) -> None:
    """
    Five applies killed with SIGKILL (one very early, four while creating, one of those
    just after the exchange made a key) and a last one run to its end: exactly the
    planned sub-accounts and keys exist, once each; every key is either in the vault with
    its secret or reported as an orphan by the last apply; every key a killed apply
    reported created is in the vault.
    """
    (tmp_path / "plan.toml").write_text(plan_toml())
    rng = random.Random(seed)
    reported_created: dict[str, str] = {}
    async with KillingEmulator(MASTERS, seed=seed) as emulator:
        url = emulator.base_url
        progress = []
        # Very early: before or during the first reads.
        run = await Apply.start(url, tmp_path)
        await asyncio.sleep(rng.uniform(0.05, 0.5))
        assert await run.kill() == -signal.SIGKILL, run.stderr
        runs = [run]
        # Right after the first result, then at random points while creating: one of them
        # from the emulator, after its n-th create took effect and before it answers.
        for lines in (1, rng.randint(5, 25), 0, rng.randint(5, 25)):
            run = await Apply.start(url, tmp_path)
            if lines:
                await run.read_rows(lines)
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                status = await run.kill()
            else:
                emulator.victim, emulator.countdown = run.process.pid, rng.randint(3, 12)
                status = await run.died()
            assert status == -signal.SIGKILL, f"ended before the kill: {run.stderr}"
            runs.append(run)
            progress.append(
                sum(len(k) for subs in emulated(emulator).values() for k in subs.values())
            )
        for run in runs:
            for row in run.rows:
                if row["status"] == "created" and row["kind"] == "key":
                    reported_created[row["api_key"]] = row["target"]
        # The kills struck runs that were creating, before the plan was complete.
        assert progress == sorted(progress)
        assert 0 < progress[-1] < len(MASTERS) * SUBACCOUNTS * 2, progress

        last = await Apply.start(url, tmp_path)
        code = await last.finish()
        assert emulated(emulator) == planned(), last.stderr

        keys = {
            api_key: emulator.exchange.secret_of(api_key) or ""
            for master in MASTERS
            for sub in emulator.exchange.subaccounts(master.uid)
            for _, api_key in sub["keys"]
        }
        assert len(keys) == len(MASTERS) * SUBACCOUNTS * 2
        vault = SecretsVault.open(tmp_path / "keys.vault", VAULT_KEY)
        records = list(vault.records())
        stored = {record.api_key: record.secret_key.reveal() for record in records}
        assert len(stored) == len(records), "a key was stored twice"
        assert set(stored) <= set(keys)
        assert all(stored[api_key] == keys[api_key] for api_key in stored)
        # A key whose answer reached a killed apply far enough to be reported is stored.
        assert set(reported_created) <= set(stored)
        # Every other key is an orphan of a kill, and the last apply says so.
        statuses = Counter(row["status"] for row in last.rows)
        assert set(statuses) <= {"created", "unchanged", "orphan"}, statuses
        orphans = {row["api_key"] for row in last.rows if row["status"] == "orphan"}
        assert orphans == set(keys) - set(stored)
        # The key made just before the emulator killed its apply is one of them.
        assert emulator.lost
        assert set(emulator.lost) <= orphans
        assert code == (1 if orphans else 0)
