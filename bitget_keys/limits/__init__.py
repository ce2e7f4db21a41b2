"""
Client-side rate limits for Bitget: one fair lane per (UID, endpoint), one budget per IP.

The public face of the rate-limit subsystem:

- `RateLimitScheduler` (`scheduler`): the in-memory scheduler every client uses by
  default.
- `RedisRateLimitScheduler` (`redis`): the same API with one budget per (UID, endpoint)
  shared by every process through Redis (the ``redis`` extra); its store is a
  `bitget_keys.limits.redis.RateLimitBackend`.
- `Policy`, `IPBudget`, the statistics types, and the pure arithmetic (`next_slot`,
  `widened_margin`, `decayed_margin`, `jitter`) from `policy` and `statistics`.
- `Scheduler`, the protocol a client paces its requests through, and
  `shared_scheduler()`, the one `RateLimitScheduler` per event loop that clients share
  unless given their own, and `default_scheduler()`, which sets it for a block
  (`shared`).
- `core`: what both schedulers share (options, lane table, 429 rules, retry loop).
- `flows`: the fair queue of a lane (priorities, then flows in turn) and of ready lanes.
- `waiter`: the future-like object a queued request waits on.

The design and its measured figures are in ``docs/rate-limits.md``.
"""

from bitget_keys.limits.core import StormWatch as StormWatch
from bitget_keys.limits.core import bound_loop as bound_loop
from bitget_keys.limits.policy import (
    ANY_UID,
    DEFAULT_IP_BUDGET,
    IPBudget,
    IPPolicy,
    Policy,
    decayed_margin,
    jitter,
    next_slot,
    widened_margin,
)
from bitget_keys.limits.policy import DelayLog as DelayLog
from bitget_keys.limits.policy import lane_key as lane_key
from bitget_keys.limits.policy import mark_completed as mark_completed
from bitget_keys.limits.policy import recent_jitter as recent_jitter
from bitget_keys.limits.policy import record_delay as record_delay
from bitget_keys.limits.redis import RedisRateLimitScheduler, RedisSchedulerStatistics
from bitget_keys.limits.scheduler import RateLimitScheduler
from bitget_keys.limits.shared import Scheduler, default_scheduler, shared_scheduler
from bitget_keys.limits.statistics import LaneStatistics, SchedulerStatistics

__all__ = [
    "ANY_UID",
    "DEFAULT_IP_BUDGET",
    "IPBudget",
    "IPPolicy",
    "LaneStatistics",
    "Policy",
    "RateLimitScheduler",
    "RedisRateLimitScheduler",
    "RedisSchedulerStatistics",
    "Scheduler",
    "SchedulerStatistics",
    "decayed_margin",
    "default_scheduler",
    "jitter",
    "next_slot",
    "shared_scheduler",
    "widened_margin",
]
