"""
The aiolimiter comparison, run small in CI so that it cannot rot.

The figures in ``benchmarks/README.md`` come from
``python -m benchmarks.aiolimiter_comparison``; this runs the same code for well under a
second per variant and asserts only what holds on any machine, however busy. The
``2N-1`` burst of ``AsyncLimiter(N, W)`` is asserted on the fake loop clock, where it
is exact.
"""

from __future__ import annotations

import asyncio
import itertools

import attrs

from benchmarks.aiolimiter_comparison import (
    ENDPOINTS,
    VARIANTS,
    AiolimiterScheduler,
    Load,
    interval,
    run,
    scheduler,
    table,
)
from bitget_keys import _endpoints as ep
from bitget_keys.testing import LaneAudit, LoopClock

SMALL = Load(uids=2)
# On the fake clock, a lane of 4 a second with a 25% margin: every interval is exact in
# binary. With 0.1 s steps, float rounding leaves aiolimiter's waker a remainder of
# 1e-16, so it re-arms its timer for the instant it is already at, which a frozen clock
# never leaves.
FOUR = attrs.evolve(ep.MODIFY_BROKER_SUBACCOUNT_API_KEY, rate=4)
EXACT = Load(uids=1, margin=0.25)


def test_every_variant_runs_against_the_emulator() -> None:
    """The lanes draw no 429; every variant sends and its figures print as a table."""
    rows = {variant: run(variant, SMALL, 0.7) for variant in VARIANTS}
    for row in rows.values():
        assert row["accepted_per_s"] > 0
        # The emulator is strict: what would pass N in a window is refused instead.
        assert all(count <= n for n, count in row["densest_accepted"].items())
    lanes = rows["lanes"]
    assert lanes["429s"] == 0
    assert set(lanes["densest_sent"]) == {endpoint.rate for endpoint in ENDPOINTS}
    assert all(count <= n for n, count in lanes["densest_sent"].items())
    assert len(table(list(rows.values())).splitlines()) == 2 + len(VARIANTS)


async def _release_times(variant: str, requests: int, seconds: float) -> list[float]:
    """Loop times at which a variant's scheduler lets ``requests`` callers of one lane send."""
    paced = scheduler(variant, EXACT)
    assert isinstance(paced, AiolimiterScheduler)
    sent: list[float] = []
    with LoopClock() as clock:

        async def send() -> None:
            sent.append(clock.now)

        tasks = [asyncio.create_task(paced.run("u1", FOUR, send)) for _ in range(requests)]
        await clock.advance(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return sent


async def test_naive_limiter_sends_2n_minus_1_in_one_window() -> None:
    """``AsyncLimiter(N, W)``: N at once, then one per W/N, so 2N-1 before W has passed."""
    sent = await _release_times("aiolimiter-naive", 30, 0.999)
    assert len(sent) == 2 * FOUR.rate - 1
    assert LaneAudit(accepted=[t * 1000 for t in sent]).max_in_window() == 2 * FOUR.rate - 1


async def test_spaced_limiter_keeps_its_interval() -> None:
    """``AsyncLimiter(1, W/N*(1+m))`` alone (no pool wait) spaces every release."""
    sent = await _release_times("aiolimiter-spaced", 30, 2.0)
    assert len(sent) == 7  # at 0, 0.3125, ... 1.875 s
    assert LaneAudit(accepted=[t * 1000 for t in sent]).max_in_window() <= FOUR.rate
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= interval(FOUR) * (1 + EXACT.margin)
