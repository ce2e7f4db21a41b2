"""
Create twelve sub-accounts with their first keys, five per batch-create call.

batch-create takes 1-5 items a call, at 1 request a second per master UID: the client's
scheduler spaces the three calls, so none is throttled (the emulator counts every
request against Bitget's limits and would answer 429). Run it with::

    python examples/batch_subaccounts.py
"""

from __future__ import annotations

import asyncio
import string
import time

from bitget_keys import Client
from bitget_keys import models as m
from bitget_keys.testing import Emulator

WHITELIST = ["203.0.113.7"]
BATCH = 5  # the most one batch-create call takes


def name(index: int) -> str:
    """A sub-account name: 8 English letters."""
    return "examplea" + string.ascii_lowercase[index]


async def main() -> None:
    """Create the sub-accounts in batches, concurrently, and read them back."""
    wanted = [
        m.NewVirtualSubaccount(
            name=name(index)[-8:],
            passphrase=f"Passw0rd{index:04d}",
            label=f"bot{index:02d}",
            permissions=[m.Permission.SPOT_TRADE],
            ip_list=WHITELIST,
        )
        for index in range(12)
    ]
    batches = [wanted[at : at + BATCH] for at in range(0, len(wanted), BATCH)]
    async with Emulator() as emulator:
        master = emulator.accounts[0]
        async with Client(master.credentials, base_url=emulator.base_url) as client:
            started = time.monotonic()
            answers = await asyncio.gather(
                *(
                    client.batch_create_virtual_subaccounts(
                        m.BatchCreateVirtualSubaccountsRequest(items=batch)
                    )
                    for batch in batches
                )
            )
            took = time.monotonic() - started
            created = [row for rows in answers for row in rows]
            listed = [sub async for sub in client.iter_virtual_subaccounts()]
        lane = emulator.audit.lane(master.uid, "batch_create_virtual_subaccounts")
    print(f"created {len(created)} sub-accounts in {len(batches)} calls over {took:.1f} s")
    print(f"listed {len(listed)} sub-accounts; the emulator throttled {lane.throttled}")


if __name__ == "__main__":
    asyncio.run(main())
