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
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bitget_keys import _endpoints as ep
from bitget_keys._vault import SecretsVault
from bitget_keys.testing import Emulator, EmulatorAccount
from bitget_keys.testing._state import Answer

VAULT_KEY = "a long vault passphrase"
LETTERS = "abcdefghijklmnopqrstuvwxyz"
MASTERS = [
    EmulatorAccount(
        uid=str(4_000_000_000 + i),
        api_key=f"bg_crash_master_{i:02d}",
        secret_key=f"crash-master-secret-{i:02d}",
        passphrase=f"CrashMaster{i:02d}",
    )
    for i in range(6)
]
SUBACCOUNTS = 8
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


def plan_toml() -> str:
    """Each master gets its sub-accounts, each a first key and one extra key."""
    lines = ['[defaults]\nip_list = ["203.0.113.7"]\nperm_type = "read_and_write"\n']
    for a in range(len(MASTERS)):
        lines.append(f'[[accounts]]\nname = "desk{a}"\ncredentials = "env:DESK{a}"\n')
        lines.extend(
            "[[accounts.subaccounts]]\n"
            f'name = "{LETTERS[a]}{LETTERS[s]}crashd"\nlabel = "c{a}s{s}"\n'
            '[[accounts.subaccounts.keys]]\nlabel = "first"\npermissions = ["spot_trade"]\n'
            '[[accounts.subaccounts.keys]]\nlabel = "extra"\npermissions = ["read"]\n'
            for s in range(SUBACCOUNTS)
        )
    return "\n".join(lines)


def environment() -> dict[str, str]:
    env = dict(os.environ, BITGET_KEYS_VAULT_KEY=VAULT_KEY)
    for a, master in enumerate(MASTERS):
        env[f"DESK{a}_API_KEY"] = master.api_key
        env[f"DESK{a}_SECRET_KEY"] = master.secret_key.reveal()
        env[f"DESK{a}_PASSPHRASE"] = master.passphrase.reveal()
        env[f"DESK{a}_UID"] = master.uid
    return env


class Apply:
    """One ``python -m bitget_keys apply --json`` process and the lines it printed."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.rows: list[dict[str, Any]] = []
        self.stderr = ""

    @classmethod
    async def start(cls, url: str, tmp_path: Path, *options: str) -> Apply:
        """Start an apply of ``tmp_path/plan.toml``; later ``options`` win."""
        argv = ["-m", "bitget_keys", "apply", str(tmp_path / "plan.toml"), "--json", "--yes"]
        argv += ["--base-url", url, "--vault", str(tmp_path / "keys.vault")]
        argv += ["--state", str(tmp_path / "apply.state"), *options]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment(),
        )
        return cls(process)

    async def read_rows(self, count: int) -> None:
        """Read result lines until ``count`` have arrived (or the output ends)."""
        assert self.process.stdout is not None
        while len(self.rows) < count:
            line = await self.process.stdout.readline()
            if not line:
                return
            self.rows.append(json.loads(line))

    async def kill(self) -> int:
        """SIGKILL it; keep the lines it printed before it died; return its exit status."""
        self.process.send_signal(signal.SIGKILL)
        return await self.died()

    async def died(self) -> int:
        """Keep the lines it printed before it died; return its exit status."""
        assert self.process.stdout is not None
        rest = await self.process.stdout.read()
        self.rows += [json.loads(line) for line in rest.splitlines()]
        return await self.ended()

    async def finish(self) -> int:
        """Let it run to its end; return its exit code."""
        async with asyncio.timeout(60):
            await self.read_rows(sys.maxsize)
            return await self.ended()

    async def ended(self) -> int:
        assert self.process.stderr is not None
        self.stderr = (await self.process.stderr.read()).decode()
        return await self.process.wait()


def planned() -> dict[str, dict[str, list[str]]]:
    return {
        master.uid: {f"c{a}s{s}": sorted([f"c{a}s{s}", "extra"]) for s in range(SUBACCOUNTS)}
        for a, master in enumerate(MASTERS)
    }


def emulated(emulator: Emulator) -> dict[str, dict[str, list[str]]]:
    state = {}
    for master in MASTERS:
        subs = emulator.exchange.subaccounts(master.uid)
        labels = Counter(sub["label"] for sub in subs)
        assert all(count == 1 for count in labels.values()), f"duplicate sub-accounts: {labels}"
        state[master.uid] = {
            sub["label"]: sorted(label for label, _ in sub["keys"]) for sub in subs
        }
    return state


async def test_applies_killed_at_random_points_then_completed_lose_nothing(
    tmp_path: Path,
) -> None:
    """
    Five applies killed with SIGKILL (one very early, four while creating, one of those
    just after the exchange made a key) and a last one run to its end: exactly the
    planned sub-accounts and keys exist, once each; every key is either in the vault with
    its secret or reported as an orphan by the last apply; every key a killed apply
    reported created is in the vault.
    """
    (tmp_path / "plan.toml").write_text(plan_toml())
    rng = random.Random(SEED)
    reported_created: dict[str, str] = {}
    async with KillingEmulator(MASTERS, seed=SEED) as emulator:
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
