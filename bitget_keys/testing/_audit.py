"""What the emulated exchange accepted, throttled and refused, per (UID, endpoint) lane."""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from typing import Final

import attrs

from bitget_keys import _endpoints as ep

__all__ = ["WINDOW_MS", "Audit", "LaneAudit"]

#: The window Bitget's per-UID rates are stated for, in ms.
WINDOW_MS: Final = 1000.0


@attrs.define
class LaneAudit:
    """What one (UID, endpoint) lane saw."""

    accepted: list[float] = attrs.field(factory=list)
    throttled: int = 0
    rejected: int = 0

    def max_in_window(self, window_ms: float = WINDOW_MS, *, closed: bool = False) -> int:
        """The most accepted requests in any window of ``window_ms`` (two pointers)."""
        times = sorted(self.accepted)
        best = 0
        for start, at in enumerate(times):
            end = (
                bisect.bisect_right(times, at + window_ms)
                if closed
                else bisect.bisect_left(times, at + window_ms)
            )
            best = max(best, end - start)
        return best

    def min_gap(self) -> float | None:
        """The smallest gap between accepted requests, in ms."""
        times = sorted(self.accepted)
        return min((b - a for a, b in itertools.pairwise(times)), default=None)


@attrs.define
class Audit:
    """Everything the emulator accepted, refused and created."""

    lanes: dict[tuple[str, str], LaneAudit] = attrs.field(factory=lambda: defaultdict(LaneAudit))

    def lane(self, uid: str, endpoint: str) -> LaneAudit:
        """The audit of one (UID, endpoint name) lane."""
        return self.lanes[(uid, endpoint)]

    def worst_window(self) -> int:
        """The largest number of accepted requests any lane saw in any 1000 ms."""
        return max((lane.max_in_window() for lane in self.lanes.values()), default=0)

    def violations(self) -> dict[tuple[str, str], int]:
        """Lanes whose densest 1000 ms window holds more than the endpoint's rate."""
        found = {}
        for (uid, name), lane in self.lanes.items():
            densest = lane.max_in_window()
            if densest > ep.ENDPOINTS[name].rate:
                found[(uid, name)] = densest
        return found

    @property
    def throttled(self) -> int:
        """How many requests got a 429 in all."""
        return sum(lane.throttled for lane in self.lanes.values())

    @property
    def accepted(self) -> int:
        """How many requests were let through in all."""
        return sum(len(lane.accepted) for lane in self.lanes.values())
