"""
Client-side rate limits for Bitget: one FIFO lane per (UID, endpoint), one budget per IP.

The public face of the rate-limit subsystem:

- `RateLimitScheduler` (`scheduler`): the in-memory scheduler every client uses by
  default; its module docstring explains the design (keying, spacing or sliding,
  counting from completions, stamping at dispatch, 429 feedback).
- `RedisRateLimitScheduler` (`redis`): the same API with one budget per (UID, endpoint)
  shared by every process through Redis (the ``redis`` extra).
- `Policy`, `IPBudget`, the statistics types, and the pure arithmetic (`next_slot`,
  `widened_margin`, `decayed_margin`, `jitter`).
- `waiter`: the future-like object a queued request waits on.
"""

from bitget_keys.limits.redis import RedisRateLimitScheduler, RedisSchedulerStatistics
from bitget_keys.limits.scheduler import (
    ANY_UID,
    DEFAULT_IP_BUDGET,
    IPBudget,
    LaneStatistics,
    Policy,
    RateLimitScheduler,
    SchedulerStatistics,
    decayed_margin,
    jitter,
    next_slot,
    widened_margin,
)
from bitget_keys.limits.scheduler import (
    DelayLog as DelayLog,  # importable as before; shared with the Redis scheduler
)
from bitget_keys.limits.scheduler import (
    StormWatch as StormWatch,  # importable as before; shared with the Redis scheduler
)
from bitget_keys.limits.scheduler import (
    bound_loop as bound_loop,  # importable as before; shared with the Redis scheduler
)
from bitget_keys.limits.scheduler import (
    lane_key as lane_key,  # importable as before; shared with the Redis scheduler
)
from bitget_keys.limits.scheduler import (
    mark_completed as mark_completed,  # importable as before; shared with the Redis scheduler
)
from bitget_keys.limits.scheduler import (
    recent_jitter as recent_jitter,  # importable as before; shared with the Redis scheduler
)
from bitget_keys.limits.scheduler import (
    record_delay as record_delay,  # importable as before; shared with the Redis scheduler
)

__all__ = [
    "ANY_UID",
    "DEFAULT_IP_BUDGET",
    "IPBudget",
    "LaneStatistics",
    "Policy",
    "RateLimitScheduler",
    "RedisRateLimitScheduler",
    "RedisSchedulerStatistics",
    "SchedulerStatistics",
    "decayed_margin",
    "jitter",
    "next_slot",
    "widened_margin",
]
