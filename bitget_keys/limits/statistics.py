"""
Frozen snapshots of a scheduler and its lanes, as `statistics()` returns them.

Both schedulers return these (the Redis one a subclass with its backend's counters), so
code that reads statistics works with either.
"""

from __future__ import annotations

import attrs

from bitget_keys.limits.policy import Policy

__all__ = ["LaneStatistics", "SchedulerStatistics"]


@attrs.frozen(kw_only=True)
class LaneStatistics:
    """A snapshot of one (UID, endpoint) lane. Times are ``loop.time()`` seconds."""

    uid: str
    endpoint: str
    policy: Policy
    #: Requests waiting for a slot.
    queued: int
    #: Requests dispatched whose ``send()`` has not finished.
    in_flight: int
    #: Slots stamped so far, retries and throttled attempts included.
    dispatched: int
    #: 429s answered on this lane.
    throttled: int
    #: The safety margin now in force (0.05 is 5%).
    margin: float
    #: Mean seconds between dispatches when saturated: ``(W/N)·(1+margin)``.
    interval: float
    #: Until when the lane is paused after a 429, or ``None``.
    paused_until: float | None
    #: Observed spread of Bitget's ``requestTime`` minus our send time, in seconds
    #: (99th percentile minus minimum over the last five minutes), or ``None``.
    jitter: float | None


@attrs.frozen(kw_only=True)
class SchedulerStatistics:
    """A snapshot of a whole `RateLimitScheduler`."""

    lanes: tuple[LaneStatistics, ...]
    #: Requests dispatched whose ``send()`` has not finished, over every lane.
    in_flight: int
    max_in_flight: int
    #: IP tokens taken in the last 60 s (counted up to ``ip_cap + 1``).
    ip_last_minute: int
    #: Until when every lane is paused (`RateLimitScheduler.pause_all`), or ``None``.
    paused_until: float | None

    def lane(self, uid: str, endpoint: str) -> LaneStatistics | None:
        """The lane of this UID and endpoint name, if the scheduler holds it."""
        for lane in self.lanes:
            if lane.uid == uid and lane.endpoint == endpoint:
                return lane
        return None
