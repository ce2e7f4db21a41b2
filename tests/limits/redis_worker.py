"""
The OS processes of the cross-process test and benchmark of `RedisRateLimitScheduler`.

``load`` keeps every (UID, endpoint) lane it is given saturated through one scheduler
that shares its limits through Redis, against an emulator served elsewhere::

    python tests/limits/redis_worker.py load --redis URL --base-url URL --accounts FILE \
        --duration 4 [--margin 0.05] [--prefix NAME] [--local]

It opens its clients (and two connections each, as a running process would have) and
prints ``ready``, then waits for a line ``go <start>`` on stdin, where ``<start>`` is a
``time.monotonic()`` value (one clock for every process on the machine, the emulator's
included), saturates from then until ``start + duration``, cancels what still waits for
a slot, and prints one JSON object of its counts and, per lane, when each request was
handed over to be sent (``stamps``, ms of ``time.monotonic()``). With
``--local`` it uses a `RateLimitScheduler` of its own instead (the control: what
processes that do not share their limits draw).

``emulator`` serves the strict emulator for those accounts on 127.0.0.1 (with no IP
limit), prints its base URL, and on a line ``stop`` prints its audit as JSON: per
(UID, endpoint), the accepted arrival times (ms of ``time.monotonic()``) and the 429s.
It runs in its own process so that its arrival stamps do not wait for the test's loop.

``FILE`` is a JSON list of accounts (uid, api_key, secret_key, passphrase).
"""

# ruff: noqa: T201 - a command-line helper: it talks to the test through stdout

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bitget_keys import Client, ClientConfig, Credentials, RateLimitScheduler, Secret
from bitget_keys._endpoints import Endpoint
from bitget_keys.errors import APIError, RateLimitBackendError, RateLimitExceededError
from bitget_keys.redis_limits import RedisRateLimitScheduler
from bitget_keys.testing import Emulator, EmulatorAccount, Limits
from bitget_keys.testing._load import SEED_ENDPOINTS, load_request

CONFIG = ClientConfig(sync_clock=False, request_timeout=30)
T = TypeVar("T")


class Stamping:
    """
    A scheduler around another that records, per lane, when each request was handed over
    to be sent (``time.monotonic()`` ms): the instant the scheduler stamped its slot.
    """

    def __init__(self, inner: RedisRateLimitScheduler | RateLimitScheduler) -> None:
        self.inner = inner
        self.stamps: dict[str, list[float]] = defaultdict(list)

    async def run(
        self,
        uid: str,
        endpoint: Endpoint,
        send: Callable[[], Awaitable[T]],
        *,
        max_wait: float | None = None,
        **pacing: Any,  # noqa: ARG002 - flow, priority, deadline: not used here
    ) -> T:
        loop = asyncio.get_running_loop()

        async def stamped() -> T:
            self.stamps[f"{uid} {endpoint.name}"].append(loop.time() * 1000)
            return await send()

        return await self.inner.run(uid, endpoint, stamped, max_wait=max_wait)

    def observe(self, uid: str, endpoint: Endpoint, *, sent_ms: int, request_time_ms: int) -> None:
        self.inner.observe(uid, endpoint, sent_ms=sent_ms, request_time_ms=request_time_ms)


def make_scheduler(args: argparse.Namespace) -> RedisRateLimitScheduler | RateLimitScheduler:
    # The IP limit is off on both sides: at 170/s this process alone would pass Bitget's
    # 6,000 a minute, and read the next 429 as an IP lockout.
    common: dict[str, Any] = {"margin": args.margin, "ip_budget": None, "ip_cap": 10**9}
    if args.local:
        return RateLimitScheduler(max_in_flight=1000, **common)
    return RedisRateLimitScheduler(args.redis, prefix=args.prefix, max_in_flight=1000, **common)


async def warm(session: aiohttp.ClientSession, base_url: str) -> None:
    """Open a connection to the emulator (an unknown path: a 404 that counts on no lane)."""
    async with session.get(f"{base_url}/warm-up") as response:
        await response.read()


async def close(clients: list[Client], sessions: list[aiohttp.ClientSession]) -> None:
    for client in clients:
        await client.aclose()
    for session in sessions:
        await session.close()


async def saturate(args: argparse.Namespace, rows: list[dict[str, str]]) -> dict[str, Any]:
    scheduler = make_scheduler(args)
    stamping = Stamping(scheduler)
    # Each client's connections are open before the start, as in a process that has been
    # running: a connection opened after a slot was stamped delays that request's arrival
    # by its set-up, which between processes the margin does not cover (README). Two per
    # client, which is about as many as a saturated client keeps busy.
    sessions = [aiohttp.ClientSession() for _ in rows]
    await asyncio.gather(*(warm(session, args.base_url) for session in sessions for _ in range(2)))
    clients = [
        Client(
            Credentials(row["api_key"], row["secret_key"], row["passphrase"], uid=row["uid"]),
            base_url=args.base_url,
            session=session,
            scheduler=stamping,
            config=CONFIG,
        )
        for row, session in zip(rows, sessions, strict=True)
    ]
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)
    start = float(line.split()[1])
    deadline = start + args.duration
    await asyncio.sleep(max(0.0, start - loop.time()))
    counts = {"sent": 0, "throttled": 0, "backend_errors": 0, "other_errors": 0}

    async def worker(client: Client, call: Callable[[Client], Awaitable[object]]) -> None:
        while loop.time() < deadline:
            try:
                await call(client)
            except RateLimitExceededError:
                counts["throttled"] += 1
            except RateLimitBackendError:
                counts["backend_errors"] += 1
                await asyncio.sleep(0.05)
            except APIError:
                pass  # refused after the rate limit counted it: still load
            except Exception:  # reported, not fatal to the run
                counts["other_errors"] += 1

    tasks = [
        asyncio.create_task(worker(client, load_request(endpoint)))
        for client in clients
        for endpoint in SEED_ENDPOINTS
        for _ in range(endpoint.rate + 1)
    ]
    await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
    # Whatever still waits for a slot gives up (a waiting request consumes nothing);
    # a request already sent is let finish.
    await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    stats = scheduler.statistics()
    await close(clients, sessions)
    if isinstance(scheduler, RedisRateLimitScheduler):
        await scheduler.aclose()
    counts["sent"] = sum(lane.dispatched for lane in stats.lanes)
    return {
        **counts,
        "start": start,
        "deadline": deadline,
        "round_trips": getattr(stats, "round_trips", 0),
        "lanes_throttled": sum(lane.throttled for lane in stats.lanes),
        "missed_slots": getattr(stats, "missed_slots", 0),
        "blocked": getattr(stats, "blocked", 0),
        "stamps": stamping.stamps,
    }


async def serve(_args: argparse.Namespace, rows: list[dict[str, str]]) -> dict[str, Any]:
    # The emulator stands in for Bitget, whose arrival stamps do not wait for this host's
    # CPU: where the system allows it, it runs ahead of the load processes.
    with contextlib.suppress(OSError):
        os.nice(-10)
    accounts = [
        EmulatorAccount(
            uid=row["uid"],
            api_key=row["api_key"],
            secret_key=Secret(row["secret_key"]),
            passphrase=Secret(row["passphrase"]),
            broker=True,
            copy_trader="new",
        )
        for row in rows
    ]
    loop = asyncio.get_running_loop()
    async with Emulator(accounts, limits=Limits(ip_limit=None)) as emulator:
        print(emulator.base_url, flush=True)
        while (await loop.run_in_executor(None, sys.stdin.readline)).strip() != "stop":
            pass
    return {
        f"{uid} {name}": {"accepted": lane.accepted, "throttled": lane.throttled}
        for (uid, name), lane in emulator.audit.lanes.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    load = commands.add_parser("load")
    load.add_argument("--redis", required=True)
    load.add_argument("--base-url", required=True)
    load.add_argument("--accounts", required=True)
    load.add_argument("--duration", type=float, default=4.0)
    load.add_argument("--margin", type=float, default=0.05)
    load.add_argument("--prefix", default="bitget-keys")
    load.add_argument(
        "--local", action="store_true", help="the in-memory scheduler instead (a control)"
    )
    emulator = commands.add_parser("emulator")
    emulator.add_argument("--accounts", required=True)
    args = parser.parse_args()
    rows = json.loads(Path(args.accounts).read_text())
    run = saturate if args.command == "load" else serve
    print(json.dumps(asyncio.run(run(args, rows))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
