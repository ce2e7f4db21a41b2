"""
Redis ``TIME`` on this process's loop clock: the estimate (`Offset`) and a booked slot
placed by it (`Placement`).

Each reservation's answer carries Redis's time, so a process can sleep until a slot's
booked time rather than for a wait counted from a possibly slow answer, and bound when
a completion happened in Redis time; ``docs/rate-limits.md`` says why.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["Offset", "Placement"]

#: How fast the loop's clock may drift from Redis TIME (NTP slews at most 500 ppm).
_DRIFT: Final = 500e-6


class Offset:
    """
    Redis ``TIME`` minus the loop's clock, as this process measures it.

    Each reservation's answer carries Redis's time at the moment the script ran, which
    lies between the call's send and receive instants, so ``redis_now - midpoint`` is the
    offset within half the round trip. The estimate kept is the one with the smallest
    error, counting ``_DRIFT`` per second of age so that a newer sample wins in time.
    """

    __slots__ = ("at", "error", "offset")

    def __init__(self) -> None:
        self.offset = 0.0
        self.error = math.inf
        self.at = 0.0

    def sample(self, sent: float, received: float, redis_now: float) -> None:
        error = (received - sent) / 2
        if error <= self.error + (received - self.at) * _DRIFT:
            self.offset = redis_now - (sent + received) / 2
            self.error = error
            self.at = received

    def local(self, redis_time: float) -> float | None:
        """A Redis time on the loop's clock, once a sample exists."""
        return redis_time - self.offset if self.error < math.inf else None

    def latest(self, local: float) -> float | None:
        """The latest Redis time a loop time can be, once a sample exists."""
        if self.error == math.inf:
            return None
        return local + self.offset + self.error + abs(local - self.at) * _DRIFT


class Placement:
    """
    A slot booked in Redis time, placed on this process's clock by the latest estimate.

    The script ran between the call's send and its answer, so the slot lies between
    ``earliest`` (send plus wait) and ``latest`` (answer plus wait) on the loop's clock;
    the estimate of Redis ``TIME`` places it inside those bounds. It is asked again when
    the caller wakes: the estimate at the answer may be tens of milliseconds off (the
    first round trips after start-up are slow), and a wait of seconds leaves time for a
    better one to come in.
    """

    __slots__ = ("_offset", "earliest", "latest", "slot")

    def __init__(self, offset: Offset, slot: float, *, earliest: float, latest: float) -> None:
        self._offset = offset
        #: The slot in Redis time, in seconds.
        self.slot = slot
        self.earliest = earliest
        self.latest = latest

    def __repr__(self) -> str:
        return f"<Placement due={self.due()!r} in [{self.earliest!r}, {self.latest!r}]>"

    def due(self) -> float:
        """The slot on the loop's clock, as the current estimate places it."""
        booked = self._offset.local(self.slot)
        return self.latest if booked is None else min(self.latest, max(self.earliest, booked))
