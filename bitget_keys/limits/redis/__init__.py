"""
Rate limits shared by every process and host through Redis: `RedisRateLimitScheduler`.

Bitget counts each endpoint's limit per owning UID, whatever process sends; when several
processes share master UIDs, their in-memory lanes add up and over-run the limit. This
scheduler keeps one budget per (UID, endpoint) in Redis, with the same API as
`bitget_keys.limits.RateLimitScheduler` (shard by UID first where you can; the in-memory
scheduler stays the default).

Each slot is reserved by one Lua script (`scripts`) that reads Redis ``TIME``, decides
and writes in one step, and answers with a relative wait; the caller sleeps until the
slot on its own clock (`clock.Offset`, `clock.Placement`) and sends. Every dispatch is
in the lane's shared log from its reservation until its process records its completion
(or its lease ends), and dispatch k goes no earlier than W after dispatch k-N completed,
whichever processes sent them: a late send in any process cannot crowd a window. Within
a process only the head of a lane's FIFO holds a reservation (`booking`). A 429 widens
and pauses the lane for every process; the storm and IP-lockout rules are the shared
core's. While Redis is down the scheduler fails closed, or with ``fallback=f`` paces
locally at the fraction ``f`` (`outage`). Where slots come from is a `RateLimitBackend`
passed as ``backend=`` (by default a `RedisBackend` built from the URL or client).

Each script takes an optional ``now`` in microseconds as its last argument (empty in
production), so tests can check the arithmetic on a real server without sleeping.

The design, its figures and the reasoning are in ``docs/rate-limits.md``.
"""

from bitget_keys.limits.redis.backend import (
    BackendLane,
    Grant,
    RateLimitBackend,
    RedisBackend,
    ip_key,
    lane_keys,
    mask_url,
)
from bitget_keys.limits.redis.booking import RedisLane
from bitget_keys.limits.redis.scheduler import RedisRateLimitScheduler, RedisSchedulerStatistics

__all__ = [
    "BackendLane",
    "Grant",
    "RateLimitBackend",
    "RedisBackend",
    "RedisLane",
    "RedisRateLimitScheduler",
    "RedisSchedulerStatistics",
    "ip_key",
    "lane_keys",
    "mask_url",
]
