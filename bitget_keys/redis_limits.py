"""
`RedisRateLimitScheduler`: rate limits shared across processes and hosts through Redis.

Kept importable here; the implementation is `bitget_keys.limits.redis`, where its design
is described.
"""

from bitget_keys.limits.redis import RedisRateLimitScheduler, RedisSchedulerStatistics, mask_url

__all__ = ["RedisRateLimitScheduler", "RedisSchedulerStatistics", "mask_url"]
