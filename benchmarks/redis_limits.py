"""
Benchmarks of `RedisRateLimitScheduler` against a local redis-server.

Acquire latency: ``run()`` on a lane whose slot is free, one call after another (so the
figure is the scheduler's own cost plus one Redis round trip, not a wait for a slot),
with its p50 and p99, and the round trips per request twice over (the reservation, and
the completion recorded after the answer, off the caller's path): the scheduler's own
count and the server's ``INFO commandstats`` (commands clients sent, INFO excepted; and
apart from them, the commands the scripts ran inside Redis). Variants: IP budget off,
IP budget on (a budget too large to wait on, so the cost of the second key shows), and
Redis Cluster (a one-node cluster) with the IP budget on, where the IP token is a second
call. Then acquires per second with 64 callers at once.

Cross-process throughput: P OS processes, each saturating every (UID, endpoint) lane of
M UIDs on the four seed endpoints through the shared scheduler, against the strict
emulator in a process of its own, all on one machine. Reported from the emulator's audit:
accepted requests per second inside the saturated window (after its first second) against
the physical maximum (the sum of the lanes' rates), 429s, the densest 1000 ms window of
any lane and how many lanes went over N. The control runs the same processes with an
in-memory scheduler each, which is what processes that share UIDs without Redis get.

Run everything (about three minutes)::

    python benchmarks/redis_limits.py

or parts: ``python benchmarks/redis_limits.py latency``, ``... throughput`` or
``... shards`` (two ``apply --shard i/2 --redis URL`` processes on shared master UIDs:
``benchmarks/redis_shards.py``, with a single-process control), with
``--calls`` (acquires per latency variant), ``--duration``, ``--processes`` and
``--uids`` for the throughput runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from benchmarks.redis_shards import run as run_shards
from bitget_keys import _endpoints as ep
from bitget_keys.limits import IPBudget
from bitget_keys.redis_limits import RedisRateLimitScheduler
from bitget_keys.testing import LaneAudit
from bitget_keys.testing._redis_server import RedisServer

WORKER = Path(__file__).resolve().parent.parent / "tests" / "limits" / "redis_worker.py"
TEN = ep.MODIFY_BROKER_SUBACCOUNT_API_KEY
SEED_RATES = sum(
    endpoint.rate
    for endpoint in (
        ep.CREATE_COPY_API_KEY,
        ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY,
        ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS,
        ep.MODIFY_BROKER_SUBACCOUNT_API_KEY,
    )
)
#: An IP budget nothing waits on, to price the second key alone.
WIDE_BUDGET = IPBudget(rate=1e6, limit=10**9, window=60.0)


async def _nothing() -> None:
    return None


async def _commands(client: aioredis.Redis) -> tuple[int, int]:
    """
    Commands the server executed so far: (sent by clients, run inside scripts).

    ``INFO commandstats`` counts both; what the scripts call (TIME, HMGET, HSET, RPUSH,
    LRANGE, LSET, ZADD and the like) is told apart by name; INFO itself and connection
    handshakes are left out.
    """
    stats: dict[str, Any] = await client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    inside = sum(calls.get(name, 0) for name in _INSIDE_SCRIPTS)
    # A new connection's handshake (the completions run beside the next reservation, so
    # the pool opens a second connection now and then) is not a per-acquire cost.
    handshakes = sum(
        count for name, count in calls.items() if name in ("hello", "auth", "select", "info")
    ) + sum(count for name, count in calls.items() if name.startswith("client|"))
    sent = sum(calls.values()) - inside - handshakes
    return sent, inside


_INSIDE_SCRIPTS = (
    "time",
    "hget",
    "hmget",
    "hset",
    "rpush",
    "ltrim",
    "lrange",
    "lindex",
    "lset",
    "llen",
    "lpop",
    "pexpire",
    "pttl",
    "zadd",
    "zrangebyscore",
    "zremrangebyscore",
)


async def _completed(limits: RedisRateLimitScheduler) -> None:
    """Wait until the completions sent after the answers have been recorded."""
    await limits._booking.drain()  # noqa: SLF001 - the benchmark counts every round trip


async def acquire_latency(
    url: str, calls: int, *, ip_budget: IPBudget | None, cluster: bool = False
) -> dict[str, Any]:
    """``calls`` acquires, one after another, each on a lane whose slot is free."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    async with (
        RedisRateLimitScheduler(url, prefix=prefix, ip_budget=ip_budget, cluster=cluster) as limits,
        aioredis.Redis.from_url(url) as probe,
    ):
        await limits.run("warm-up", TEN, _nothing)  # connects and loads the scripts
        await _completed(limits)
        sent_before, inside_before = await _commands(probe)
        trips = limits.statistics().round_trips
        durations = []
        for index in range(calls):
            started = time.perf_counter()
            await limits.run(str(1_000_000_000 + index), TEN, _nothing)
            durations.append(time.perf_counter() - started)
        await _completed(limits)
        sent_after, inside_after = await _commands(probe)
        trips = limits.statistics().round_trips - trips
    durations.sort()
    return {
        "calls": calls,
        "p50_us": round(statistics.median(durations) * 1e6, 1),
        "p99_us": round(durations[int(0.99 * (len(durations) - 1))] * 1e6, 1),
        "round_trips_per_acquire": round(trips / calls, 3),
        "server_commands_per_acquire": round((sent_after - sent_before) / calls, 3),
        "script_commands_per_acquire": round((inside_after - inside_before) / calls, 3),
    }


async def acquire_rate(url: str, calls: int, callers: int = 64) -> dict[str, Any]:
    """Acquires per second with ``callers`` at once, each on lanes of its own."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    async with RedisRateLimitScheduler(url, prefix=prefix, ip_budget=None) as limits:
        await limits.run("warm-up", TEN, _nothing)
        per_caller = max(1, calls // callers)

        async def caller(index: int) -> None:
            for k in range(per_caller):
                await limits.run(f"{index}{k:06d}", TEN, _nothing)

        started = time.perf_counter()
        await asyncio.gather(*(caller(index) for index in range(callers)))
        elapsed = time.perf_counter() - started
    return {"callers": callers, "acquires_per_s": round(callers * per_caller / elapsed)}


def latency(calls: int) -> list[dict[str, Any]]:
    """Every latency variant, each against a fresh server."""
    results = []
    with RedisServer() as server:
        for name, budget in (("IP budget off", None), ("IP budget on", WIDE_BUDGET)):
            figures = asyncio.run(acquire_latency(server.url, calls, ip_budget=budget))
            results.append({"variant": name, **figures})
        rate = asyncio.run(acquire_rate(server.url, calls))
        results.append({"variant": "64 callers at once", **rate})
    with RedisServer(cluster=True) as server:
        figures = asyncio.run(
            acquire_latency(server.url, calls, ip_budget=WIDE_BUDGET, cluster=True)
        )
        results.append({"variant": "Redis Cluster, IP budget on", **figures})
    return results


# -- cross-process throughput ------------------------------------------------------------


def _accounts_file(directory: Path, uids: int) -> Path:
    rows = [
        {
            "uid": str(5_000_000_000 + i),
            "api_key": f"bg_bench_{i:05d}",
            "secret_key": f"bench-secret-{i:05d}",
            "passphrase": f"BenchPass{i:05d}",
        }
        for i in range(uids)
    ]
    path = directory / "accounts.json"
    path.write_text(json.dumps(rows))
    return path


async def _spawn(*argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def _line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), 120)).decode().strip()


async def _say(process: asyncio.subprocess.Process, text: str) -> None:
    assert process.stdin is not None
    process.stdin.write(f"{text}\n".encode())
    await process.stdin.drain()


async def cross_process(
    url: str, *, processes: int, uids: int, duration: float, local: bool = False
) -> dict[str, Any]:
    """P processes saturating M UIDs on 4 seed endpoints; figures from the emulator's audit."""
    with tempfile.TemporaryDirectory(prefix="bitget-keys-bench-") as directory:
        accounts = _accounts_file(Path(directory), uids)
        emulator = await _spawn("emulator", "--accounts", str(accounts))
        base_url = await _line(emulator)
        argv = ["load", "--redis", url, "--base-url", base_url, "--accounts", str(accounts)]
        argv += ["--duration", str(duration), "--prefix", f"bench{uuid.uuid4().hex[:8]}"]
        if local:
            argv.append("--local")
        workers = [await _spawn(*argv) for _ in range(processes)]
        for worker in workers:
            await _line(worker)  # ready
        start = time.monotonic() + 0.5
        for worker in workers:
            await _say(worker, f"go {start}")
        outputs = [await asyncio.wait_for(w.communicate(), duration + 120) for w in workers]
        await _say(emulator, "stop")
        audit_out, _ = await asyncio.wait_for(emulator.communicate(), 120)
    reports = [json.loads(out.splitlines()[-1]) for out, _ in outputs]
    lanes = json.loads(audit_out.splitlines()[-1])
    skip = 1.0
    low, high = (start + skip) * 1000, (start + duration) * 1000
    inside = sum(1 for lane in lanes.values() for at in lane["accepted"] if low <= at < high)
    densest = {
        key: LaneAudit(accepted=lane["accepted"]).max_in_window() for key, lane in lanes.items()
    }
    over = sum(1 for key, count in densest.items() if count > ep.ENDPOINTS[key.split()[1]].rate)
    physical = uids * SEED_RATES
    rate = inside / (duration - skip)
    sent = sum(report["sent"] for report in reports)
    return {
        "scheduler": "in-memory per process (control)" if local else "Redis, shared",
        "processes": processes,
        "uids": uids,
        "accepted_per_s": round(rate, 1),
        "physical_per_s": physical,
        "percent_of_physical": round(100 * rate / physical, 1),
        "429s": sum(lane["throttled"] for lane in lanes.values()),
        "sent": sent,
        "densest_window_max": max(densest.values(), default=0),
        "lanes_over_n": over,
        "round_trips_per_request": round(sum(r["round_trips"] for r in reports) / max(1, sent), 3),
    }


def throughput(
    processes: int, uids: int, duration: float, *, control: bool = True
) -> list[dict[str, Any]]:
    with RedisServer() as server:
        return [
            asyncio.run(
                cross_process(
                    server.url, processes=processes, uids=uids, duration=duration, local=local
                )
            )
            for local in ((False, True) if control else (False,))
        ]


def shards() -> None:
    """The sharded-apply workload, three runs, then three of the single-process control."""
    for control in (False, True):
        for row in run_shards(4, 10, 3, 3, control=control):
            print(row, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("parts", nargs="*", help="latency, throughput, shards (default: all three)")
    parser.add_argument("--calls", type=int, default=5000, help="acquires per latency variant")
    parser.add_argument("--duration", type=float, default=30.0, help="saturated seconds")
    parser.add_argument("--processes", type=int, nargs="+", default=[4])
    parser.add_argument("--uids", type=int, nargs="+", default=[10, 50])
    args = parser.parse_args(argv)
    parts = args.parts or ["latency", "throughput", "shards"]
    if unknown := set(parts) - {"latency", "throughput", "shards"}:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    if "latency" in parts:
        for row in latency(args.calls):
            print(row, flush=True)
    if "throughput" in parts:
        for processes in args.processes:
            for uids in args.uids:
                started = time.perf_counter()
                control = uids == min(args.uids)
                for row in throughput(processes, uids, args.duration, control=control):
                    row["wall_s"] = round(time.perf_counter() - started, 1)
                    print(row, flush=True)
    if "shards" in parts:
        shards()
    return 0


if __name__ == "__main__":
    sys.exit(main())
