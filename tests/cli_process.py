"""
``python -m bitget_keys`` as its own process: starting it, reading the JSON lines a
``--json`` run prints, and the environment a plan's ``env:DESK{n}`` credentials read.
The subprocess tests of apply, rotate and the vault's locks share these.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from bitget_keys.testing import EmulatorAccount


async def start_cli(argv: Sequence[str], env: Mapping[str, str]) -> asyncio.subprocess.Process:
    """``python -m bitget_keys ARGV`` with ``env`` as its whole environment, output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bitget_keys",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
    )


def desk_environment(accounts: Sequence[EmulatorAccount]) -> dict[str, str]:
    """The credentials of plan account ``desk{n}`` (``credentials = "env:DESK{n}"``)."""
    env: dict[str, str] = {}
    for a, master in enumerate(accounts):
        env[f"DESK{a}_API_KEY"] = master.api_key
        env[f"DESK{a}_SECRET_KEY"] = master.secret_key.reveal()
        env[f"DESK{a}_PASSPHRASE"] = master.passphrase.reveal()
        env[f"DESK{a}_UID"] = master.uid
    return env


class JsonLines:
    """One ``bitget-keys ... --json`` process and the JSON lines it has printed."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.rows: list[dict[str, Any]] = []
        self.stderr = ""

    async def read_rows(self, count: int) -> None:
        """Read result lines until ``count`` have arrived (or the output ends)."""
        assert self.process.stdout is not None
        while len(self.rows) < count:
            line = await self.process.stdout.readline()
            if not line:
                return
            self.rows.append(json.loads(line))
