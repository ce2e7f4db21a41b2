"""
What ``bitget-keys demo`` counts: per mode of master, the emulator's audit of requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from bitget_keys._endpoints import ENDPOINTS
from bitget_keys.provision.apply import ItemResult, Status
from bitget_keys.testing import Emulator

__all__ = ["ModeSummary", "busiest_seconds", "count", "create_requests", "plural"]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def count(results: Sequence[ItemResult], kind: str, status: Status) -> int:
    return sum(1 for result in results if result.kind == kind and result.status is status)


def create_requests(emulator: Emulator) -> int:
    return sum(
        len(lane.accepted)
        for (_, name), lane in emulator.audit.lanes.items()
        if ENDPOINTS[name].creates
    )


def busiest_seconds(emulator: Emulator) -> dict[str, tuple[int, int]]:
    """Per endpoint: the most requests any UID got accepted in one window, and the limit."""
    busiest: dict[str, tuple[int, int]] = {}
    for (_, name), lane in emulator.audit.lanes.items():
        endpoint = ENDPOINTS[name]
        densest = lane.max_in_window(1000 * endpoint.window)
        if densest > busiest.get(name, (0, 0))[0]:
            busiest[name] = (densest, endpoint.rate)
    return dict(sorted(busiest.items()))


@attrs.frozen(kw_only=True)
class ModeSummary:
    """What the first apply created on the masters of one mode, and their requests."""

    mode: str
    #: The API family serving the mode: ``v2`` (classic) or ``v3`` (unified).
    api: str
    masters: int
    subaccounts: int
    keys: int
    #: Requests signed by these masters that the emulator accepted, and refused (429s
    #: aside); the unsigned time requests are the machine's, not a master's.
    accepted: int
    refused: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "api": self.api,
            "masters": self.masters,
            "created": {"subaccounts": self.subaccounts, "keys": self.keys},
            "requests": {"accepted": self.accepted, "refused": self.refused},
        }

    def line(self) -> str:
        """The mode's summary line, without its heading."""
        return (
            f"{plural(self.masters, 'master')}: {self.subaccounts} sub-accounts and "
            f"{self.keys} keys created; {self.accepted} requests accepted, "
            f"{self.refused} refused"
        )
