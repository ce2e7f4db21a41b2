"""
Saturation benchmarks of the rate-limit scheduler against the strict emulator.

Every lane is kept saturated (more workers than its rate) for the whole run, and the
emulator's audit says what Bitget would have seen: requests accepted, 429s, and the
densest 1000 ms window of each (UID, endpoint) lane. Throughput is reported as a
percentage of the physical maximum (the sum of the lanes' documented rates).

Run all scenarios (about six minutes)::

    python benchmarks/scheduler_saturation.py

or some of them: ``python benchmarks/scheduler_saturation.py loopback-1ms storm``.
``--duration`` sets the saturated seconds per run (30 by default).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import multiprocessing.connection
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from bitget_keys import Client, ClientConfig, RateLimitScheduler
from bitget_keys import _endpoints as ep
from bitget_keys.errors import APIError, RateLimitExceededError
from bitget_keys.limits import IPBudget, Policy
from bitget_keys.testing import Emulator, EmulatorAccount, Faults, LaneAudit, Limits
from bitget_keys.testing._load import SEED_ENDPOINTS, load_request

CONFIG = ClientConfig(sync_clock=False, request_timeout=30)


def accounts(count: int) -> list[EmulatorAccount]:
    return [
        EmulatorAccount(
            uid=str(2_000_000_000 + i),
            api_key=f"bg_bench_{i:05d}",
            secret_key=f"bench-secret-{i:05d}",
            passphrase=f"BenchPass{i:05d}",
            broker=True,
            copy_trader="new",
        )
        for i in range(count)
    ]


@attrs.frozen(kw_only=True)
class Scenario:
    name: str
    uids: int
    endpoints: tuple[ep.Endpoint, ...]
    over_loopback: bool
    latency: float = 0.0
    jitter: float = 0.0
    margin: float = 0.05
    policy: Policy = Policy.SPACING
    ip_budget: IPBudget | None = None
    emulator_ip_limit: int | None = None
    storm_at: float | None = None
    storm_for: float = 5.0

    @property
    def physical(self) -> float:
        """The sum of the lanes' rates, or the IP cap where it is lower and in force."""
        lanes = float(self.uids * sum(endpoint.rate for endpoint in self.endpoints))
        if self.emulator_ip_limit is None:
            return lanes
        return min(lanes, self.emulator_ip_limit / 60)


# -- the emulator in a child process (HTTP on loopback uses the second core) -----------


def _serve(scenario: Scenario, conn: multiprocessing.connection.Connection) -> None:
    asyncio.run(_serve_async(scenario, conn))


async def _serve_async(scenario: Scenario, conn: multiprocessing.connection.Connection) -> None:
    limits = Limits(ip_limit=scenario.emulator_ip_limit)
    faults = Faults(latency=scenario.latency, jitter=scenario.jitter)
    emulator = Emulator(accounts(scenario.uids), limits=limits, faults=faults)
    loop = asyncio.get_running_loop()
    async with emulator:
        conn.send(emulator.base_url)
        while True:
            message = await loop.run_in_executor(None, conn.recv)
            if message == "storm":
                emulator.exchange.storm_until[None] = loop.time() * 1000 + scenario.storm_for * 1000
                continue
            break
    conn.send(_audit_summary(emulator))


def _audit_summary(emulator: Emulator) -> dict[tuple[str, str], tuple[list[float], int]]:
    return {key: (lane.accepted, lane.throttled) for key, lane in emulator.audit.lanes.items()}


# -- the load --------------------------------------------------------------------------


async def _load(scenario: Scenario, duration: float, target: str | Emulator) -> dict[str, Any]:
    scheduler = RateLimitScheduler(
        margin=scenario.margin,
        policies={endpoint.name: scenario.policy for endpoint in scenario.endpoints},
        ip_budget=scenario.ip_budget,
        # "IP limit off in both": without it, 850/s passes the 6,000-a-minute cap in
        # 7 s, and the scheduler rightly reads the next 429 as an IP lockout.
        ip_cap=6000 if scenario.emulator_ip_limit is not None else 10**9,
        max_in_flight=1000,
    )
    clients = []
    for account in accounts(scenario.uids):
        if isinstance(target, Emulator):
            client = Client(
                account.credentials,
                transport=target.transport(),
                scheduler=scheduler,
                config=CONFIG,
            )
        else:
            client = Client(
                account.credentials, base_url=target, scheduler=scheduler, config=CONFIG
            )
        clients.append(client)
    loop = asyncio.get_running_loop()
    # loop.time() is time.monotonic(), one clock for this process and the emulator's.
    start = loop.time()
    deadline = start + duration
    rejected = 0
    lags: list[float] = []

    async def worker(client: Client, call: Callable[[Client], Awaitable[object]]) -> None:
        nonlocal rejected
        while loop.time() < deadline:
            try:
                await call(client)
            except RateLimitExceededError:
                rejected += 1
            except APIError:
                pass  # refused after the rate limit counted it: still load

    async def lag_probe() -> None:
        while loop.time() < deadline:
            started = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - started - 0.01)

    tasks = [
        asyncio.create_task(worker(client, load_request(endpoint)))
        for client in clients
        for endpoint in scenario.endpoints
        for _ in range(endpoint.rate + 1)
    ]
    tasks.append(asyncio.create_task(lag_probe()))
    await asyncio.gather(*tasks)
    for client in clients:
        await client.aclose()
    lags.sort()
    return {
        "window": (start * 1000, deadline * 1000),
        "client_429_raised": rejected,
        "lag_p99_ms": lags[int(len(lags) * 0.99)] * 1000 if lags else 0.0,
    }


def _report(
    scenario: Scenario,
    duration: float,
    lanes: dict[tuple[str, str], tuple[list[float], int]],
    extra: dict[str, Any],
) -> dict[str, Any]:
    # Only arrivals inside the saturated window count: requests still queued at the
    # deadline go out after it.
    low, high = extra.pop("window")
    accepted = sum(1 for times, _ in lanes.values() for t in times if low <= t < high)
    throttled = sum(count for _, count in lanes.values())
    worst = 0
    over = 0
    for (_, name), (times, _) in lanes.items():
        densest = LaneAudit(accepted=list(times)).max_in_window()
        worst = max(worst, densest)
        if densest > ep.ENDPOINTS[name].rate:
            over += 1
    rate = accepted / duration
    return {
        "scenario": scenario.name,
        "accepted_per_s": round(rate, 1),
        "physical_per_s": scenario.physical,
        "percent_of_physical": round(100 * rate / scenario.physical, 1),
        "429s": throttled,
        "worst_window": worst,
        "lanes_over_n": over,
        **extra,
    }


def _storm_timeline(
    lanes: dict[tuple[str, str], tuple[list[float], int]],
    storm_at: float,
    storm_for: float,
    duration: float,
) -> dict[str, Any]:
    times = sorted(t for lane_times, _ in lanes.values() for t in lane_times)
    base = times[0] if times else 0.0
    per_second = [0] * (int(duration) + 2)
    for t in times:
        second = int((t - base) / 1000)
        if second < len(per_second):
            per_second[second] += 1
    steady = sum(per_second[2 : int(storm_at)]) / max(1, int(storm_at) - 2)
    end = int(storm_at + storm_for)
    recovered = next(
        (
            second - end
            for second in range(end, len(per_second) - 1)
            if per_second[second] >= 0.95 * steady
        ),
        None,
    )
    return {"steady_per_s": round(steady, 1), "recovered_after_s": recovered}


def run(scenario: Scenario, duration: float) -> dict[str, Any]:
    if scenario.over_loopback:
        parent, child = mp.Pipe()
        process = mp.get_context("fork").Process(target=_serve, args=(scenario, child), daemon=True)
        process.start()
        base_url = parent.recv()

        async def main() -> dict[str, Any]:
            if scenario.storm_at is not None:
                asyncio.get_running_loop().call_later(scenario.storm_at, parent.send, "storm")
            return await _load(scenario, duration, base_url)

        extra = asyncio.run(main())
        parent.send("stop")
        lanes = parent.recv()
        process.join(10)
    else:

        async def main_in_process() -> tuple[dict[str, Any], Any]:
            emulator = Emulator(
                accounts(scenario.uids),
                limits=Limits(ip_limit=scenario.emulator_ip_limit),
                faults=Faults(latency=scenario.latency, jitter=scenario.jitter),
            )
            if scenario.storm_at is not None:
                loop = asyncio.get_running_loop()
                loop.call_later(
                    scenario.storm_at,
                    lambda: emulator.exchange.storm_until.__setitem__(
                        None, loop.time() * 1000 + scenario.storm_for * 1000
                    ),
                )
            result = await _load(scenario, duration, emulator)
            return result, _audit_summary(emulator)

        extra, lanes = asyncio.run(main_in_process())
    report = _report(scenario, duration, lanes, extra)
    if scenario.storm_at is not None:
        report |= _storm_timeline(lanes, scenario.storm_at, scenario.storm_for, duration)
    return report


def scenarios() -> dict[str, Scenario]:
    fifty: dict[str, Any] = {"uids": 50, "endpoints": SEED_ENDPOINTS, "over_loopback": True}
    return {
        "loopback-1ms": Scenario(
            name="50 UIDs x 4, 1 ms jitter, sliding m=2%",
            jitter=0.001,
            margin=0.02,
            policy=Policy.SLIDING,
            **fifty,
        ),
        "loopback-1ms-spacing": Scenario(
            name="50 UIDs x 4, 1 ms jitter, spacing m=2%", jitter=0.001, margin=0.02, **fifty
        ),
        "loopback-10ms": Scenario(
            name="50 UIDs x 4, 10 ms exp jitter, sliding m=2%",
            jitter=0.010,
            margin=0.02,
            policy=Policy.SLIDING,
            **fifty,
        ),
        "loopback-10ms-spacing": Scenario(
            name="50 UIDs x 4, 10 ms exp jitter, spacing m=2%",
            jitter=0.010,
            margin=0.02,
            **fifty,
        ),
        "inprocess-1000": Scenario(
            name="1000 UIDs x (copy, batch) in process, sliding m=2%",
            uids=1000,
            endpoints=(ep.CREATE_COPY_API_KEY, ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS),
            over_loopback=False,
            margin=0.02,
            policy=Policy.SLIDING,
        ),
        "storm": Scenario(
            name="50 UIDs x 4, 429 storm for 5 s at 10 s", storm_at=10.0, jitter=0.001, **fifty
        ),
        "ip-budget": Scenario(
            name="30 UIDs on create-virtual-subaccount-apikey, IP budget 95/s",
            uids=30,
            endpoints=(ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY,),
            over_loopback=True,
            jitter=0.001,
            ip_budget=IPBudget(),
            emulator_ip_limit=6000,
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="scenarios (default: all)")
    parser.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args(argv)
    table = scenarios()
    for name in args.names or list(table):
        started = time.perf_counter()
        report = run(table[name], args.duration)
        report["wall_s"] = round(time.perf_counter() - started, 1)
        print(report, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
