"""
Testing your own code against the bundled emulator, with pytest.

The emulator checks what a real Bitget checks (signatures over the raw bytes, the
timestamp window, passphrases, every documented field rule, quotas, per-UID and
per-IP rate limits) and audits every lane, so a test can assert both what your code
did and that it never broke a limit. The fixture serves a fresh exchange on 127.0.0.1
for each test. Needs pytest and pytest-asyncio; run it with::

    python examples/test_with_emulator.py      # or: pytest examples/test_with_emulator.py
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bitget_keys import Client
from bitget_keys import models as m
from bitget_keys.errors import QuotaExceededError
from bitget_keys.testing import Emulator, Limits

WHITELIST = ["203.0.113.7"]


async def provision(client: Client, names: list[str]) -> list[str]:
    """The code under test: create one sub-account (and first key) per name."""
    created = []
    for name in names:
        (row,) = await client.batch_create_virtual_subaccounts(
            m.BatchCreateVirtualSubaccountsRequest(
                items=[
                    m.NewVirtualSubaccount(
                        name=name,
                        passphrase="Passw0rd1234",
                        label=name,
                        permissions=[m.Permission.SPOT_TRADE],
                        ip_list=WHITELIST,
                    )
                ]
            )
        )
        created.append(row.api_key)
    return created


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """A fresh emulated exchange whose masters may hold two sub-accounts each."""
    async with Emulator(limits=Limits(max_subaccounts=2)) as served:
        yield served


@pytest.mark.asyncio
async def test_creates_within_the_rate_limit(emulator: Emulator) -> None:
    master = emulator.accounts[0]
    async with Client(master.credentials, base_url=emulator.base_url) as client:
        keys = await provision(client, ["alphabot", "betabots"])
    assert len(set(keys)) == 2
    lane = emulator.audit.lane(master.uid, "batch_create_virtual_subaccounts")
    assert len(lane.accepted) == 2
    assert lane.throttled == 0
    assert lane.max_in_window() <= 1  # batch-create allows 1 per second per UID


@pytest.mark.asyncio
async def test_quota_is_reported(emulator: Emulator) -> None:
    master = emulator.accounts[0]
    async with Client(master.credentials, base_url=emulator.base_url) as client:
        await provision(client, ["alphabot", "betabots"])
        with pytest.raises(QuotaExceededError):
            await provision(client, ["deltabot"])


if __name__ == "__main__":
    # A pytest of its own: this process has imported the plugins its tests use already.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    sys.exit(subprocess.call([*command, __file__]))  # noqa: S603
