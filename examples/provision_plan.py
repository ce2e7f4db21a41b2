"""
Provisioning a plan from Python: what ``bitget-keys apply`` does, as a library call.

The plan is the same data a plan file holds (here a dict; `load_plan` reads a TOML
file). `apply_plan` reads live state, creates only what is missing, stores every new
secret in the encrypted vault the moment Bitget answers, and records each create in
the journal; a second run finds everything in place. The command line is the main user
of `bitget_keys.provision`, whose API may still change. Run it with::

    python examples/provision_plan.py
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from pathlib import Path

from bitget_keys import Client
from bitget_keys.provision.apply import ItemResult, apply_plan
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.plan import AccountSpec, parse_plan
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator

PLAN = {
    "defaults": {"ip_list": ["203.0.113.7"]},
    "accounts": [
        {
            "name": "desk-a",
            "credentials": "env:DESK_A",  # DESK_A_API_KEY, DESK_A_SECRET_KEY, ...
            "subaccounts": [
                {
                    "name": f"alphabo{letter}",
                    "label": f"alpha-{letter}",
                    "keys": [
                        {"label": "trade", "permissions": ["spot_trade"]},
                        {"label": "read", "permissions": ["read"], "perm_type": "readonly"},
                    ],
                }
                for letter in "abc"
            ],
        }
    ],
}


async def run(emulator: Emulator, workdir: Path) -> list[ItemResult]:
    """One apply of the plan against the emulator, with a vault and journal in ``workdir``."""
    master = emulator.accounts[0]
    environ = {  # in production: the process environment (the default)
        "DESK_A_API_KEY": master.api_key,
        "DESK_A_SECRET_KEY": master.secret_key.reveal(),
        "DESK_A_PASSPHRASE": master.passphrase.reveal(),
    }
    plan = parse_plan(PLAN, environ=environ)
    clients: dict[str, Client] = {}

    def client_for(account: AccountSpec) -> Client:
        # Clients of one master UID should share a scheduler: these share the default.
        return clients.setdefault(
            account.name, Client(account.credentials, base_url=emulator.base_url)
        )

    vault = SecretsVault.open(workdir / "keys.vault", "a long vault passphrase")
    try:
        with Journal(workdir / "keys.state") as journal:
            return await apply_plan(plan, clients=client_for, vault=vault, journal=journal)
    finally:
        for client in clients.values():
            await client.aclose()


async def main() -> None:
    """Apply the plan twice: the second run has nothing left to do."""
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        async with Emulator() as emulator:
            first = await run(emulator, workdir)
            second = await run(emulator, workdir)
        vault = SecretsVault.open(workdir / "keys.vault", "a long vault passphrase")
        stored = sum(1 for _ in vault.records())
    for name, results in (("first", first), ("second", second)):
        counts = Counter(result.status.value for result in results)
        print(f"{name} run: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    print(f"the vault holds {stored} keys with their secrets")


if __name__ == "__main__":
    asyncio.run(main())
