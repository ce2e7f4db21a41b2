"""
Running ``bitget-keys apply`` and ``bitget-keys rotate`` against the emulator, and
reading what the exchange, the vault and the state file hold afterwards: the shared
harness of the rotation tests.

Each master ``desk{a}`` gets ``subaccounts`` sub-accounts labelled ``s{s}``, each with
``keys`` keys labelled ``k0``, ``k1``, ...; on a classic master the first key is made
with its sub-account and carries the sub-account's label at Bitget.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Literal

import attrs

from bitget_keys.lifecycle.rotation_journal import Rotation, RotationJournal
from bitget_keys.provision.key_ops import NEUTRAL_IP_LIST
from bitget_keys.provision.vault import SecretsVault, VaultRecord
from bitget_keys.testing import Emulator, EmulatorAccount
from tests.cli_process import JsonLines, desk_environment, start_cli

VAULT_KEY = "a long vault passphrase"
Mode = Literal["classic", "unified"]


def masters(mode: Mode, count: int, base: int = 6_100_000_000) -> list[EmulatorAccount]:
    return [
        EmulatorAccount(
            uid=str(base + i),
            api_key=f"bg_rotate_master_{base + i}",
            secret_key=f"rotate-master-secret-{i:03d}",
            passphrase=f"RotateMaster{i:03d}",
            mode=mode,
        )
        for i in range(count)
    ]


def _name(index: int) -> str:
    """A distinct 8-letter sub-account name per index (Bitget's names are global)."""
    return "rt" + "".join("abcdefghijklmnopqrstuvwxyz"[index // 26**i % 26] for i in range(6))


def plan_toml(accounts: list[EmulatorAccount], subaccounts: int, keys: int) -> str:
    lines = ['[defaults]\nip_list = ["203.0.113.7"]\n']
    for a in range(len(accounts)):
        lines.append(f'[[accounts]]\nname = "desk{a}"\ncredentials = "env:DESK{a}"\n')
        for s in range(subaccounts):
            lines.append(
                f'[[accounts.subaccounts]]\nname = "{_name(a * 100 + s)}"\nlabel = "s{s}"\n'
            )
            lines.extend(
                f'[[accounts.subaccounts.keys]]\nlabel = "k{k}"\npermissions = ["spot_trade", "read"]\n'
                for k in range(keys)
            )
    return "\n".join(lines)


def environment(accounts: list[EmulatorAccount]) -> dict[str, str]:
    return {"BITGET_KEYS_VAULT_KEY": VAULT_KEY} | desk_environment(accounts)


def scenario(
    tmp_path: Path, mode: Mode, subaccounts: int, keys: int, *, base: int = 6_100_000_000
) -> tuple[list[EmulatorAccount], dict[str, str], Folder]:
    """One master of ``mode``, its plan written to ``tmp_path``: masters, environment, folder."""
    accounts = masters(mode, 1, base)
    folder = Folder(tmp_path)
    folder.plan.write_text(plan_toml(accounts, subaccounts, keys))
    return accounts, environment(accounts), folder


@attrs.define
class Folder:
    """Where one scenario keeps its plan, vault and state."""

    path: Path

    @property
    def plan(self) -> Path:
        return self.path / "plan.toml"

    @property
    def vault(self) -> Path:
        return self.path / "keys.vault"

    @property
    def state(self) -> Path:
        return self.path / "keys.state"

    def common(self, url: str) -> list[str]:
        return ["--base-url", url, "--vault", str(self.vault), "--state", str(self.state)]

    def records(self) -> dict[str, VaultRecord]:
        return {r.api_key: r for r in SecretsVault.open(self.vault, VAULT_KEY).records()}

    def rotations(self) -> list[Rotation]:
        with contextlib.closing(RotationJournal(self.state)) as journal:
            return list(journal.rotations())


class Process(JsonLines):
    """One ``python -m bitget_keys`` process, its JSON lines and its stderr."""

    @classmethod
    async def start(cls, argv: list[str], env: dict[str, str]) -> Process:
        return cls(await start_cli(argv, dict(os.environ) | env))

    async def kill(self) -> int:
        self.process.send_signal(signal.SIGKILL)
        return await self.ended()

    async def finish(self, within: float = 60) -> int:
        async with asyncio.timeout(within):
            return await self.ended()

    async def ended(self) -> int:
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        out, err = await asyncio.gather(self.process.stdout.read(), self.process.stderr.read())
        self.rows += [json.loads(line) for line in out.splitlines() if line.startswith(b"{")]
        self.stderr = err.decode()
        return await self.process.wait()


async def apply(url: str, folder: Folder, env: dict[str, str]) -> None:
    """Apply the plan (every key created, its secret in the vault)."""
    argv = ["apply", str(folder.plan), "--json", "--yes", "--create-vault", *folder.common(url)]
    run = await Process.start(argv, env)
    code = await run.finish(120)
    assert code == 0, run.stderr


def rotate_argv(
    url: str, folder: Folder, *selectors: str, options: tuple[str, ...] = ()
) -> list[str]:
    """``rotate PLAN SELECTOR... --json --yes``, on ``folder``'s vault and state."""
    return [
        "rotate",
        str(folder.plan),
        *selectors,
        "--json",
        "--yes",
        *folder.common(url),
        *options,
    ]


@attrs.frozen
class LiveKey:
    api_key: str
    label: str
    secret: str
    permissions: tuple[str, ...]
    ip_list: tuple[str, ...]

    @property
    def usable(self) -> bool:
        """Whether someone holding its secret could still use it (not neutralised)."""
        return bool(self.permissions) or self.ip_list != NEUTRAL_IP_LIST


def live_keys(emulator: Emulator, master_uid: str, sub_label: str) -> list[LiveKey]:
    """The keys of one sub-account as the exchange holds them."""
    store = emulator.exchange._store
    sub = next(s for s in store.subaccounts[master_uid] if s.label == sub_label)
    return [
        LiveKey(k.api_key, k.label, k.secret_key, tuple(k.permissions), tuple(k.ip_list))
        for k in sub.keys
    ]
