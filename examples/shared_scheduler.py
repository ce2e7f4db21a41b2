"""
Two clients of one master share one scheduler; an urgent call goes ahead of bulk work.

Bitget counts each endpoint's limit per master UID, whichever key or process sends.
Clients that share a `RateLimitScheduler` share its lanes, so together they never spend
the budget twice; a lane serves higher priorities first, then its flows in turn. Here a
bulk job queues twelve key-list reads (5 a second per UID), and an operator's read sent
while they wait is served next, not twelve places later. Run it with::

    python examples/shared_scheduler.py
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import bitget_keys
from bitget_keys import Client, RateLimitScheduler
from bitget_keys import models as m
from bitget_keys.testing import Emulator


async def timed(started: float, call: Awaitable[object]) -> float:
    """Seconds from ``started`` until ``call`` is answered."""
    await call
    return time.monotonic() - started


async def main() -> None:
    """Queue the bulk reads, then send the urgent one, and report when each finished."""
    limits = RateLimitScheduler()  # one budget per (UID, endpoint), for both clients
    async with Emulator() as emulator:
        master = emulator.accounts[0]
        url = emulator.base_url
        async with (
            Client(master.credentials, base_url=url, scheduler=limits, flow="bulk") as bulk,
            Client(master.credentials, base_url=url, scheduler=limits) as operator,
        ):
            # A sub-account without keys (create-virtual-subaccount), whose keys to read.
            await operator.create_virtual_subaccounts(
                m.CreateVirtualSubaccountsRequest(names=["bulkbots"])
            )
            (uid,) = [s.subaccount_uid async for s in operator.iter_virtual_subaccounts()]
            started = time.monotonic()
            reads = [
                asyncio.create_task(timed(started, bulk.list_virtual_subaccount_api_keys(uid)))
                for _ in range(12)
            ]
            await asyncio.sleep(0.3)  # the bulk reads are queued on the lane by now
            waiting = sum(1 for read in reads if not read.done())
            with bitget_keys.pacing(priority=10, timeout=2.0):  # sent within 2 s or not at all
                urgent = await timed(started, operator.list_virtual_subaccount_api_keys(uid))
            bulk_times = await asyncio.gather(*reads)
        lane = emulator.audit.lane(master.uid, "list_virtual_subaccount_api_keys")
    behind = sum(1 for took in bulk_times if took > urgent)
    print(
        f"urgent read answered after {urgent:.2f} s, ahead of {behind} "
        f"of the {waiting} bulk reads not yet answered when it was sent"
    )
    print(f"bulk reads done after {max(bulk_times):.2f} s; throttled: {lane.throttled}")


if __name__ == "__main__":
    asyncio.run(main())
