"""
The Redis backend's benchmarks, run once in CI so that they cannot rot.

The figures in ``benchmarks/README.md`` come from ``python benchmarks/redis_limits.py``;
this wrapper runs the same code at a small size. ``--benchmark-only`` also times one
acquire round of 200 calls.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.redis_limits import acquire_latency, cross_process
from benchmarks.redis_shards import run as run_shards
from bitget_keys.testing._redis_server import RedisServer, find_redis_server


@pytest.fixture(scope="module")
def server() -> object:
    if find_redis_server() is None:
        if os.environ.get("BITGET_KEYS_REQUIRE_REDIS"):
            pytest.fail("redis-server is required here (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    with RedisServer() as running:
        yield running


def test_acquire_latency(server: RedisServer, benchmark: BenchmarkFixture) -> None:
    """
    Two round trips per request on a lane whose slot is free: the reservation, and the
    completion every process counts the lane's windows from (sent after the answer).
    """
    figures = benchmark.pedantic(  # type: ignore[no-untyped-call]
        lambda: asyncio.run(acquire_latency(server.url, 200, ip_budget=None)),
        rounds=1 if benchmark.disabled else 5,
        iterations=1,
    )
    assert figures["round_trips_per_acquire"] == 2.0
    assert figures["server_commands_per_acquire"] == 2.0


def test_cross_process_throughput(server: RedisServer) -> None:
    """Two processes on two UIDs for two seconds: no lane over N."""
    figures = asyncio.run(cross_process(server.url, processes=2, uids=2, duration=2.0))
    assert figures["lanes_over_n"] == 0
    assert figures["sent"] > 0


def test_sharded_applies_share_master_uids() -> None:
    """Two apply --shard processes on one master UID through one Redis: no 429, no lane over N."""
    if find_redis_server() is None:
        pytest.skip("redis-server is not installed")
    (figures,) = run_shards(1, 3, 2, 1)
    assert figures["exit_codes"] == [0, 0]
    assert figures["statuses"] == {"created": 18}  # 6 sub-accounts, 12 keys
    assert figures["429s"] == 0
    assert figures["lanes_over_n"] == 0
