"""
The OS processes of the vault's and the lock's cross-process tests.

``hold PATH COMMAND`` takes the `FileLock` of PATH (naming itself COMMAND), prints
``locked``, and holds it until its stdin closes::

    python tests/provision/vault_worker.py hold keys.vault "bitget-keys apply plan.toml"

``race`` prints ``ready``, then for each line ``round PATH MODE COUNT TAG`` on stdin
opens (or creates) the vault at PATH and appends COUNT records whose API keys are
``bg_TAG_0`` ... , and prints one JSON object: the API keys it stored and whether it
found the vault locked. MODE says how it takes the vault's lock first: ``nolock`` (not at
all: only the vault file's own guarantees), ``wait`` (waits for the other process) or
``nowait`` (gives up at once when the other holds it).
"""

# ruff: noqa: T201 - a command-line helper: it talks to the test through stdout

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from bitget_keys.errors import LockedError
from bitget_keys.provision.lock import FileLock
from bitget_keys.provision.vault import SecretsVault, VaultRecord

KEY = "a long vault passphrase"


def record(api_key: str) -> VaultRecord:
    return VaultRecord(
        kind="virtual_subaccount_key",
        account="desk-a",
        master_uid="1000000001",
        api_key=api_key,
        secret_key=f"secret-of-{api_key}",
        passphrase="Passw0rd1234",
        label=api_key[-8:],
    )


def fill(path: Path, count: int, tag: str) -> list[str]:
    vault = SecretsVault.open(path, KEY)
    stored = []
    for number in range(count):
        api_key = f"bg_{tag}_{number}"
        vault.append(record(api_key))
        stored.append(api_key)
    return stored


def one_round(path: Path, mode: str, count: int, tag: str) -> dict[str, object]:
    if mode == "nolock":
        return {"stored": fill(path, count, tag), "locked": False}
    lock = FileLock(path, command=f"race {tag}")
    if mode == "wait":
        asyncio.run(lock.acquire_waiting(poll=0.005, on_wait=lambda _: None))
    else:
        try:
            lock.acquire()
        except LockedError:
            return {"stored": [], "locked": True}
    try:
        return {"stored": fill(path, count, tag), "locked": False}
    finally:
        lock.release()


def race() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        _, path, mode, count, tag = line.split()
        print(json.dumps(one_round(Path(path), mode, int(count), tag)), flush=True)


def hold(path: str, command: str) -> None:
    lock = FileLock(path, command=command)
    lock.acquire()
    print("locked", flush=True)
    sys.stdin.read()
    lock.release()


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2], sys.argv[3])
    else:
        race()
