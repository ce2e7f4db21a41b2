"""Fixtures of the rate-limit tests that need a real redis-server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from bitget_keys.testing._redis_server import RedisServer, find_redis_server


def require_redis() -> None:
    """Skip (or fail, where redis-server is required) when redis-server is missing."""
    if find_redis_server() is None:
        if os.environ.get("BITGET_KEYS_REQUIRE_REDIS"):
            pytest.fail("redis-server is required here (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the module; tests keep apart by key prefix."""
    require_redis()
    with RedisServer() as server:
        yield server


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"
