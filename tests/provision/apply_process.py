"""
Running ``bitget-keys apply`` as its own process against the emulator, and reading what
it left: the shared harness of the crash, signal, outage and concurrency tests.

Six masters with eight sub-accounts each, a first and an extra key per sub-account; the
plan is written to ``tmp_path/plan.toml`` and each apply keeps its vault and state in
``tmp_path`` unless told otherwise. The masters are classic (`MASTERS`); `masters` gives
the same six as Unified Trading Accounts, or mixed. The plan names no mode, so apply asks
each master's, and the same plan and credentials serve every mix.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import attrs

from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, EmulatorAccount
from tests.cli_process import JsonLines, desk_environment, start_cli

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

#: Which of the six masters are unified: none, all, or every second one.
Modes = Literal["classic", "unified", "mixed"]


def masters(modes: Modes = "classic") -> list[EmulatorAccount]:
    """The six masters (same UIDs and credentials), classic, unified or mixed."""
    return [
        attrs.evolve(master, mode="unified")
        if modes == "unified" or (modes == "mixed" and index % 2)
        else master
        for index, master in enumerate(MASTERS)
    ]


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
    return dict(os.environ, BITGET_KEYS_VAULT_KEY=VAULT_KEY) | desk_environment(MASTERS)


class Apply(JsonLines):
    """One ``python -m bitget_keys apply --json`` process and the lines it printed."""

    @classmethod
    async def start(cls, url: str, tmp_path: Path, *options: str) -> Apply:
        """Start an apply of ``tmp_path/plan.toml``; later ``options`` win."""
        argv = ["apply", str(tmp_path / "plan.toml"), "--json", "--yes"]
        argv += ["--base-url", url, "--vault", str(tmp_path / "keys.vault"), "--create-vault"]
        argv += ["--state", str(tmp_path / "apply.state"), *options]
        return cls(await start_cli(argv, environment()))

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


def planned(accounts: list[EmulatorAccount] = MASTERS) -> dict[str, dict[str, list[str]]]:
    """Each master's sub-accounts by label, with their keys' labels."""
    # Batch-create labels a classic first key with its sub-account's label; on a unified
    # master create-sub-api makes it, and the plan key's label is its note.
    return {
        master.uid: {
            f"c{a}s{s}": sorted(["first" if master.unified else f"c{a}s{s}", "extra"])
            for s in range(SUBACCOUNTS)
        }
        for a, master in enumerate(accounts)
    }


def emulated(
    emulator: Emulator, accounts: list[EmulatorAccount] = MASTERS
) -> dict[str, dict[str, list[str]]]:
    """What the exchange holds, in `planned`'s shape; no sub-account label twice."""
    state = {}
    for master in accounts:
        subs = emulator.exchange.subaccounts(master.uid)
        labels = Counter(sub["label"] for sub in subs)
        assert all(count == 1 for count in labels.values()), f"duplicate sub-accounts: {labels}"
        state[master.uid] = {
            sub["label"]: sorted(label for label, _ in sub["keys"]) for sub in subs
        }
    return state


CREATES = frozenset({"batch_create_virtual_subaccounts", "create_virtual_subaccount_api_key"})


def exchange_keys(emulator: Emulator, accounts: list[EmulatorAccount] = MASTERS) -> dict[str, str]:
    """Every sub-account key on the exchange: API key -> secret."""
    return {
        api_key: emulator.exchange.secret_of(api_key) or ""
        for master in accounts
        for sub in emulator.exchange.subaccounts(master.uid)
        for _, api_key in sub["keys"]
    }


def vault_keys(tmp_path: Path) -> dict[str, str]:
    records = list(SecretsVault.open(tmp_path / "keys.vault", VAULT_KEY).records())
    stored = {record.api_key: record.secret().reveal() for record in records}
    assert len(stored) == len(records), "a key was stored twice"
    return stored


async def complete(
    url: str, tmp_path: Path, emulator: Emulator, accounts: list[EmulatorAccount] = MASTERS
) -> Apply:
    """A last apply, run to its end: the exchange then holds exactly the plan."""
    last = await Apply.start(url, tmp_path)
    await last.finish()
    assert emulated(emulator, accounts) == planned(accounts), last.stderr
    return last


def trial_seeds(*defaults: int) -> list[int]:
    """
    The seeds a reliability test runs with: ``defaults`` in the suite; with
    ``BITGET_KEYS_TRIALS=N`` set, N seeds (0..N-1), to repeat each trial N times.
    """
    trials = os.environ.get("BITGET_KEYS_TRIALS")
    return list(range(int(trials))) if trials else list(defaults)


class ArrivalEmulator(Emulator):
    """An emulator that counts requests as they arrive, before their latency is served."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrived: Counter[str | None] = Counter()
        self.changed = asyncio.Event()

    async def _delay(self, endpoint: str | None) -> None:
        self.arrived[endpoint] += 1
        self.changed.set()
        await super()._delay(endpoint)

    async def arrival(self, endpoint: str, count: int = 1) -> None:
        """Wait until ``count`` requests to ``endpoint`` have arrived."""
        while self.arrived[endpoint] < count:
            self.changed.clear()
            await self.changed.wait()
