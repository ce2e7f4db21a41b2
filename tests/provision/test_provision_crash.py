"""
`bitget-keys apply` killed with SIGKILL, again and again, then run to completion.

The emulator serves on 127.0.0.1 from the test's own event loop (so it outlives every
killed apply), with its real per-UID limits. Each apply is a separate process,
``python -m bitget_keys apply --json``, as a user runs it. The first is killed very
early; the next ones at seeded-random points while creates are in flight, one of them
from inside the emulator at the worst moment: a create has been carried out and its
answer (with the new secret) is about to leave. A last apply then runs to its end.

The six masters are classic, unified (Unified Trading Accounts, served by v3), or
mixed; the plan is the same. With unified masters one more apply is killed from inside
the emulator, just after a create-sub made a sub-account (which has no key yet).
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
    SUBACCOUNTS,
    VAULT_KEY,
    Apply,
    Modes,
    emulated,
    masters,
    plan_toml,
    planned,
    trial_seeds,
)

SEED = 1122

#: The creates that make keys, each with the field of its answer that holds a new key.
KEY_CREATES = {
    ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS.name: "subAccountApiKey",
    ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY.name: "subAccountApiKey",
    ep.CREATE_UTA_SUBACCOUNT_API_KEY.name: "apiKey",
}
#: v3 create-sub: a sub-account without a key.
SUBACCOUNT_CREATES = {ep.CREATE_UTA_SUBACCOUNT.name: "note"}


class KillingEmulator(Emulator):
    """An emulator that kills a process once it has carried out that process's n-th create."""

    def __init__(self, accounts: list[EmulatorAccount], *, seed: int) -> None:
        super().__init__(accounts, seed=seed)
        self.victim: int | None = None
        self.countdown = 0
        #: The creates counted, each with the field of its answer to keep.
        self.targets: dict[str, str] = {}
        #: The keys made by the create whose answer the victim never got.
        self.lost: tuple[str, ...] = ()
        #: The labels (v3 notes) of sub-accounts made by such a create-sub.
        self.lost_subaccounts: tuple[str, ...] = ()

    def strike(self, victim: int, countdown: int, targets: dict[str, str]) -> None:
        """Kill ``victim`` once its ``countdown``-th create of ``targets`` took effect."""
        self.victim, self.countdown, self.targets = victim, countdown, targets

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
        if self.victim is None or endpoint is None or not took_effect:
            return answer, took_effect
        field = self.targets.get(endpoint.name)
        if field is None:
            return answer, took_effect
        self.countdown -= 1
        if self.countdown == 0 and answer is not None:
            os.kill(self.victim, signal.SIGKILL)
            self.victim = None
            rows = json.loads(answer.body)["data"]
            rows = rows if isinstance(rows, list) else [rows]
            made = tuple(row[field] for row in rows)
            if endpoint.name in KEY_CREATES:
                self.lost += made
            else:
                self.lost_subaccounts += made
            # Long enough for the kill to land before this answer is written.
            await asyncio.sleep(0.1)
        return answer, took_effect


#: After how many result lines to kill an apply, or (n, creates): from the emulator,
#: once the apply's n-th create of those endpoints took effect, before it is answered.
Kill = int | tuple[int, dict[str, str]]


async def killed_applies(
    emulator: KillingEmulator, tmp_path: Path, rng: random.Random, kills: list[Kill]
) -> tuple[list[Apply], list[int]]:
    """
    One apply killed very early, then one per ``kills``; the applies, and how many keys
    the exchange held after each of the latter.
    """
    # Very early: before or during the first reads.
    run = await Apply.start(emulator.base_url, tmp_path)
    await asyncio.sleep(rng.uniform(0.05, 0.5))
    assert await run.kill() == -signal.SIGKILL, run.stderr
    runs, progress = [run], []
    for kill in kills:
        run = await Apply.start(emulator.base_url, tmp_path)
        if isinstance(kill, int):
            await run.read_rows(kill)
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            status = await run.kill()
        else:
            emulator.strike(run.process.pid, *kill)
            status = await run.died()
        assert status == -signal.SIGKILL, f"ended before the kill: {run.stderr}"
        runs.append(run)
        held = emulated(emulator, emulator.accounts)
        progress.append(sum(len(keys) for subs in held.values() for keys in subs.values()))
    return runs, progress


@pytest.mark.parametrize("modes", ["classic", "unified", "mixed"])
@pytest.mark.parametrize("seed", trial_seeds(SEED))
async def test_applies_killed_at_random_points_then_completed_lose_nothing(
    tmp_path: Path, seed: int, modes: Modes
) -> None:
    """
    Five applies killed with SIGKILL (one very early, four while creating, one of those
    just after the exchange made a key; with unified masters one more just after a
    create-sub) and a last one run to its end: exactly the planned sub-accounts and keys
    exist, once each; every key is either in the vault with its secret and the family of
    its master or reported as an orphan by the last apply; every key a killed apply
    reported created is in the vault.
    """
    (tmp_path / "plan.toml").write_text(plan_toml())
    rng = random.Random(seed)
    accounts = masters(modes)
    unified = {master.uid for master in accounts if master.unified}
    reported_created: dict[str, str] = {}
    # Right after the first result, then at random points while creating: one of them
    # from the emulator, after its n-th key create took effect and before it answers.
    kills: list[Kill] = [
        1,
        rng.randint(5, 25),
        (rng.randint(3, 12), KEY_CREATES),
        rng.randint(5, 25),
    ]
    if unified:
        # Early, while the unified masters' sub-accounts are still being made.
        kills.insert(0, (rng.randint(1, 4), SUBACCOUNT_CREATES))
    async with KillingEmulator(accounts, seed=seed) as emulator:
        url = emulator.base_url
        runs, progress = await killed_applies(emulator, tmp_path, rng, kills)
        for run in runs:
            for row in run.rows:
                if row["status"] == "created" and row["kind"] == "key":
                    reported_created[row["api_key"]] = row["target"]
        # The kills struck runs that were creating, before the plan was complete.
        assert progress == sorted(progress)
        assert 0 < progress[-1] < len(accounts) * SUBACCOUNTS * 2, progress

        last = await Apply.start(url, tmp_path)
        code = await last.finish()
        # No sub-account twice (a create-sub whose answer was lost is found by its note).
        assert emulated(emulator, accounts) == planned(accounts), last.stderr

        keys = {
            api_key: emulator.exchange.secret_of(api_key) or ""
            for master in accounts
            for sub in emulator.exchange.subaccounts(master.uid)
            for _, api_key in sub["keys"]
        }
        assert len(keys) == len(accounts) * SUBACCOUNTS * 2
        vault = SecretsVault.open(tmp_path / "keys.vault", VAULT_KEY)
        records = list(vault.records())
        stored = {record.api_key: record.secret().reveal() for record in records}
        assert len(stored) == len(records), "a key was stored twice"
        assert set(stored) <= set(keys)
        assert all(stored[api_key] == keys[api_key] for api_key in stored)
        # Each key is recorded with the API family of its master.
        families = {master.uid: "v3" if master.uid in unified else "v2" for master in accounts}
        assert all(record.api_family == families[record.master_uid] for record in records)
        assert {record.api_family for record in records} == set(families.values())
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
        if unified:
            # The sub-account made just before its apply was killed exists once (above).
            assert emulator.lost_subaccounts
        # Orphans beside items done: partial (4); only orphans: failed (1).
        done = statuses["created"] + statuses["unchanged"]
        assert code == (0 if not orphans else 4 if done else 1)
