"""
aiolimiter beside the product's lanes, on the same load against the strict emulator.

Why the lanes (`RateLimitScheduler`) exist instead of one ``aiolimiter.AsyncLimiter`` per
(UID, endpoint): the variants below run one after another, each against a fresh
emulator in a child process on 127.0.0.1 (real aiohttp on both sides), under the same
load: every UID keeps ``3N`` workers busy on each of three endpoints of 1, 5 and
10 requests a second, all clients share one connection pool, and the emulator answers
after ``--latency`` seconds.

- ``aiolimiter-naive``: ``AsyncLimiter(N, W)`` per lane. Its bucket starts empty, so
  ``2N-1`` requests leave in the first window, and again after every idle spell.
- ``aiolimiter-spaced``: ``AsyncLimiter(1, W/N*(1+m))`` per lane, aiolimiter's compliant
  configuration, then a global in-flight permit (as many as the pool has connections).
  A slot is spent inside ``acquire()``, before the permit, so a wait for a connection
  falls between the slot and the send and can bring two requests of a lane closer
  than ``W/N``.
- ``lanes``: `RateLimitScheduler` (spacing, margin m), ``max_in_flight`` = the pool.

For each it prints what the emulator saw: accepted requests per second inside the run
as a percentage of the physical limit (the sum of N/W over the lanes), its 429s, the
densest window of accepted requests of any lane against N (the emulator is strict, so
this never passes N: what would have passed it is a 429), the densest window of the
requests a lane *sent* (client side, before the emulator counted them), and the
smallest gap between two accepted requests of one lane as a fraction of W/N (over the
whole run, and once the first second, while the pool opens its connections, is over),
with how many gaps were under W/N (each would be a 429 from a server that enforces
spacing).

Run (about a minute)::

    python -m benchmarks.aiolimiter_comparison --duration 20

``--uids``, ``--pool``, ``--latency``, ``--jitter``, ``--margin`` and ``--workers`` change
the load; name variants to run only those.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing as mp
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import aiohttp
import attrs
from aiolimiter import AsyncLimiter

from benchmarks.scheduler_saturation import CONFIG, Scenario, _serve, accounts
from bitget_keys import Client, RateLimitScheduler
from bitget_keys import _endpoints as ep
from bitget_keys._client import Scheduler
from bitget_keys.errors import APIError, RateLimitExceededError
from bitget_keys.testing import LaneAudit
from bitget_keys.testing._load import load_request

T = TypeVar("T")

#: 1, 5 and 10 requests a second per UID.
ENDPOINTS: Final = (
    ep.CREATE_COPY_API_KEY,
    ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY,
    ep.MODIFY_BROKER_SUBACCOUNT_API_KEY,
)
VARIANTS: Final = ("aiolimiter-naive", "aiolimiter-spaced", "lanes")

Lanes = dict[tuple[str, str], tuple[list[float], int]]


@attrs.frozen(kw_only=True)
class Load:
    """The load every variant is given."""

    uids: int = 50
    #: Workers per lane, as a multiple of the lane's N.
    workers: int = 3
    #: Connections in the one pool all clients share (and the in-flight permits).
    pool: int = 20
    #: Seconds the emulator takes before it handles a request (the answer's latency).
    latency: float = 0.030
    #: Mean of an exponential extra delay on top of ``latency``.
    jitter: float = 0.0
    margin: float = 0.05

    def scenario(self) -> Scenario:
        return Scenario(
            name="aiolimiter comparison",
            uids=self.uids,
            endpoints=ENDPOINTS,
            over_loopback=True,
            latency=self.latency,
            jitter=self.jitter,
        )


def interval(endpoint: ep.Endpoint) -> float:
    """W/N in seconds: the smallest gap that keeps a spacing server content."""
    return endpoint.window / endpoint.rate


class AiolimiterScheduler:
    """
    The `Scheduler` protocol over one ``AsyncLimiter`` per (UID, endpoint) lane.

    ``run`` acquires the lane's limiter, then one of ``in_flight`` permits (the pool's
    connections), then sends. There is no retry: a 429 goes back to the caller.
    """

    __slots__ = ("_limiters", "_make", "_permits")

    def __init__(self, make: Callable[[ep.Endpoint], AsyncLimiter], *, in_flight: int) -> None:
        self._make = make
        self._limiters: dict[tuple[str, str], AsyncLimiter] = {}
        self._permits = asyncio.Semaphore(in_flight)

    async def run(
        self,
        uid: str,
        endpoint: ep.Endpoint,
        send: Callable[[], Awaitable[T]],
        *,
        max_wait: float | None = None,  # noqa: ARG002 - aiolimiter has no bound on a wait
        **pacing: Any,  # noqa: ARG002 - flow, priority, deadline: not used here
    ) -> T:
        key = (uid, endpoint.name)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = self._make(endpoint)
        await limiter.acquire()
        async with self._permits:
            return await send()

    def observe(
        self, uid: str, endpoint: ep.Endpoint, *, sent_ms: int, request_time_ms: int
    ) -> None:
        """aiolimiter has no use for Bitget's arrival times."""


class SendLog:
    """
    A `Scheduler` that notes when each request is sent, then lets ``inner`` pace it.

    The stamp is taken inside ``send()``, where the scheduler lets the request go.
    """

    __slots__ = ("inner", "sent")

    def __init__(self, inner: Scheduler) -> None:
        self.inner = inner
        self.sent: defaultdict[tuple[str, str], list[float]] = defaultdict(list)

    async def run(
        self,
        uid: str,
        endpoint: ep.Endpoint,
        send: Callable[[], Awaitable[T]],
        *,
        max_wait: float | None = None,
        **pacing: Any,  # noqa: ARG002 - flow, priority, deadline: not used here
    ) -> T:
        stamps = self.sent[(uid, endpoint.name)]
        loop = asyncio.get_running_loop()

        async def stamped() -> T:
            stamps.append(loop.time() * 1000)
            return await send()

        return await self.inner.run(uid, endpoint, stamped, max_wait=max_wait)

    def observe(
        self, uid: str, endpoint: ep.Endpoint, *, sent_ms: int, request_time_ms: int
    ) -> None:
        self.inner.observe(uid, endpoint, sent_ms=sent_ms, request_time_ms=request_time_ms)


def scheduler(variant: str, load: Load) -> Scheduler:
    """The scheduler a variant runs with."""
    if variant == "aiolimiter-naive":
        return AiolimiterScheduler(
            lambda endpoint: AsyncLimiter(endpoint.rate, endpoint.window), in_flight=load.pool
        )
    if variant == "aiolimiter-spaced":
        return AiolimiterScheduler(
            lambda endpoint: AsyncLimiter(1, interval(endpoint) * (1 + load.margin)),
            in_flight=load.pool,
        )
    if variant == "lanes":
        return RateLimitScheduler(
            margin=load.margin, ip_budget=None, ip_cap=10**9, max_in_flight=load.pool
        )
    msg = f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}"
    raise ValueError(msg)


async def drive(
    variant: str, load: Load, duration: float, base_url: str
) -> tuple[tuple[float, float], dict[tuple[str, str], list[float]]]:
    """
    Keep every lane saturated for ``duration`` seconds; then stop all callers at once.

    Returns the run's window in loop milliseconds and the send stamps of each lane.
    """
    log = SendLog(scheduler(variant, load))
    connector = aiohttp.TCPConnector(limit=load.pool)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = [
            Client(
                account.credentials,
                base_url=base_url,
                session=session,
                scheduler=log,
                config=CONFIG,
            )
            for account in accounts(load.uids)
        ]

        async def worker(client: Client, call: Callable[[Client], Awaitable[object]]) -> None:
            while True:
                # A 429, or a refusal after the lane counted the request: still load.
                with contextlib.suppress(RateLimitExceededError, APIError):
                    await call(client)

        # loop.time() is time.monotonic(), one clock for this process and the emulator's.
        start = loop.time()
        tasks = [
            asyncio.create_task(worker(client, load_request(endpoint)))
            for client in clients
            for endpoint in ENDPOINTS
            for _ in range(load.workers * endpoint.rate)
        ]
        await asyncio.sleep(duration)
        end = loop.time()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.aclose()
    return (start * 1000, end * 1000), dict(log.sent)


def report(
    variant: str,
    load: Load,
    window: tuple[float, float],
    lanes: Lanes,
    sent: dict[tuple[str, str], list[float]],
) -> dict[str, Any]:
    """The figures of one variant, from the emulator's audit and the send stamps."""
    low, high = window
    seconds = (high - low) / 1000
    physical = load.scenario().physical
    accepted = sum(1 for times, _ in lanes.values() for t in times if low <= t < high)
    densest: dict[int, int] = {}
    densest_sent: dict[int, int] = {}
    min_gap = min_gap_warm = float("inf")
    short_gaps = 0
    for (uid, name), (times, _) in lanes.items():
        endpoint = ep.ENDPOINTS[name]
        rate = endpoint.rate
        densest[rate] = max(densest.get(rate, 0), LaneAudit(accepted=times).max_in_window())
        stamps = sent.get((uid, name), [])
        densest_sent[rate] = max(
            densest_sent.get(rate, 0), LaneAudit(accepted=stamps).max_in_window()
        )
        step = interval(endpoint) * 1000
        for a, b in itertools.pairwise(sorted(times)):
            min_gap = min(min_gap, (b - a) / step)
            if a >= low + 1000:  # the pool's connections are open by then
                min_gap_warm = min(min_gap_warm, (b - a) / step)
            short_gaps += b - a < step
    return {
        "variant": variant,
        "accepted_per_s": round(accepted / seconds, 1),
        "physical_per_s": physical,
        "percent_of_physical": round(100 * accepted / seconds / physical, 1),
        "429s": sum(throttled for _, throttled in lanes.values()),
        # N -> densest window of any lane of that N, accepted and sent.
        "densest_accepted": dict(sorted(densest.items())),
        "densest_sent": dict(sorted(densest_sent.items())),
        "min_gap_of_w_over_n": _fraction(min_gap),
        "min_gap_after_1s": _fraction(min_gap_warm),
        "gaps_under_w_over_n": short_gaps,
        "gaps": sum(max(0, len(times) - 1) for times, _ in lanes.values()),
    }


def _fraction(gap: float) -> float | None:
    return round(gap, 3) if gap != float("inf") else None


def run(variant: str, load: Load, duration: float) -> dict[str, Any]:
    """One variant against a fresh emulator in a child process."""
    parent, child = mp.Pipe()
    process = mp.get_context("fork").Process(
        target=_serve, args=(load.scenario(), child), daemon=True
    )
    process.start()
    try:
        base_url = parent.recv()
        window, sent = asyncio.run(drive(variant, load, duration, base_url))
        parent.send("stop")
        lanes: Lanes = parent.recv()
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
    return report(variant, load, window, lanes, sent)


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table, as benchmarks/README.md shows them."""

    def per_n(figures: dict[int, int]) -> str:
        return " / ".join(f"{count} of {n}" for n, count in figures.items())

    lines = [
        (
            "| Variant | Accepted/s | % of physical | 429s | Densest accepted window "
            "(N = 1 / 5 / 10) | Densest window sent | Min gap (x W/N) "
            "| Min gap after 1 s | Gaps under W/N |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines.extend(
        f"| {row['variant']} | {row['accepted_per_s']} / {row['physical_per_s']:g} "
        f"| {row['percent_of_physical']}% | {row['429s']} | {per_n(row['densest_accepted'])} "
        f"| {per_n(row['densest_sent'])} | {row['min_gap_of_w_over_n']} "
        f"| {row['min_gap_after_1s']} "
        f"| {row['gaps_under_w_over_n']} of {row['gaps']} |"
        for row in rows
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.aiolimiter_comparison",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = Load()
    parser.add_argument("variants", nargs="*", help=f"any of {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per variant")
    parser.add_argument("--uids", type=int, default=defaults.uids)
    parser.add_argument("--workers", type=int, default=defaults.workers, help="per lane, times N")
    parser.add_argument("--pool", type=int, default=defaults.pool, help="connections")
    parser.add_argument("--latency", type=float, default=defaults.latency, help="seconds")
    parser.add_argument("--jitter", type=float, default=defaults.jitter, help="seconds, mean")
    parser.add_argument("--margin", type=float, default=defaults.margin)
    args = parser.parse_args(argv)
    for name in ("duration", "uids", "workers", "pool"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be above 0 (got {getattr(args, name)})")
    for name in ("latency", "jitter", "margin"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must not be negative (got {getattr(args, name)})")
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    load = Load(
        uids=args.uids,
        workers=args.workers,
        pool=args.pool,
        latency=args.latency,
        jitter=args.jitter,
        margin=args.margin,
    )
    print(load, flush=True)
    rows = []
    for variant in args.variants or VARIANTS:
        started = time.perf_counter()
        row = run(variant, load, args.duration)
        row["wall_s"] = round(time.perf_counter() - started, 1)
        print(row, flush=True)
        rows.append(row)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
