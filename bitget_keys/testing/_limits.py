"""
The emulated exchange's limits: what it counts, and the sliding windows that count it.

Each per-(UID, endpoint) lane keeps an exact log of the arrival times it accepted over
the endpoint's window, and so does each client IP over ``ip_window``; a request that
would make a log hold more than its limit is refused with a 429. Every acceptance and
refusal goes to the `Audit`.
"""

from __future__ import annotations

from collections import defaultdict, deque

import attrs

from bitget_keys import _endpoints as ep
from bitget_keys.testing._audit import WINDOW_MS, Audit
from bitget_keys.testing._wire import too_many_requests

__all__ = ["Limits", "RateLimits"]


@attrs.frozen(kw_only=True)
class Limits:
    """How strictly the emulator counts."""

    #: Enforce each endpoint's documented per-UID rate (exact sliding log of 1000 ms).
    per_uid: bool = True
    #: Requests allowed per client IP per ``ip_window`` seconds; ``None`` disables it.
    ip_limit: int | None = 6000
    ip_window: float = 60.0
    #: Seconds an IP stays locked out once it went over ``ip_limit``.
    lockout: float = 300.0
    #: Sub-accounts per master, keys per sub-account.
    max_subaccounts: int = 20
    max_keys: int = 10
    #: The same two quotas for unified (v3) masters. Bitget documents no UTA quotas;
    #: these follow the classic ones until a live account shows otherwise.
    max_uta_subaccounts: int = 20
    max_uta_keys: int = 10
    #: Timestamp window for signed requests, in ms.
    timestamp_window_ms: int = 30_000
    #: Mask sub-account names in the batch-create answer, as Bitget's example shows.
    mask_batch_names: bool = True
    #: Mask sub-account names in the sub-account list (whether Bitget does is unconfirmed).
    mask_list_names: bool = False
    #: Send the v3 lists' ``hasNext`` as the string ``"true"``/``"false"``, as Bitget's
    #: tables type it, instead of the boolean its examples show.
    has_next_as_string: bool = False
    #: How long (wall-clock ms) a new sub-account key answers 40006 "Invalid ACCESS_KEY"
    #: before it works: a new key takes a while to reach all of Bitget's gateways.
    key_propagation_ms: int = 0


def _admit(log: deque[float], now_ms: float, window_ms: float, limit: float) -> bool:
    """Log ``now_ms`` if fewer than ``limit`` arrivals lie within ``window_ms`` before it."""
    while log and log[0] <= now_ms - window_ms:
        log.popleft()
    if len(log) >= limit:
        return False
    log.append(now_ms)
    return True


class RateLimits:
    """The per-IP limit with its lockout, the per-lane rates, and storms on demand."""

    def __init__(self, limits: Limits, audit: Audit) -> None:
        self.limits = limits
        self.audit = audit
        #: Lanes answering 429 to everything until a given monotonic time (ms).
        self.storm_until: dict[str | None, float] = {}
        self._rate_log: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._ip_log: dict[str, deque[float]] = defaultdict(deque)
        self._locked_until: dict[str, float] = {}

    def admit_ip(self, client_ip: str, now_ms: float) -> None:
        """Count one request from ``client_ip``; over the limit locks the IP out for a while."""
        limit = self.limits.ip_limit
        if limit is None:
            return
        if self._locked_until.get(client_ip, 0.0) > now_ms:
            raise too_many_requests()
        window = self.limits.ip_window * 1000
        if not _admit(self._ip_log[client_ip], now_ms, window, limit):
            self._locked_until[client_ip] = now_ms + self.limits.lockout * 1000
            raise too_many_requests()

    def admit(self, endpoint: ep.Endpoint, lane_uid: str, now_ms: float) -> None:
        """Count one request on the (``lane_uid``, endpoint) lane, or refuse it with a 429."""
        if (
            self.storm_until.get(None, 0.0) > now_ms
            or self.storm_until.get(endpoint.name, 0.0) > now_ms
        ):
            raise too_many_requests()
        if self.limits.per_uid:
            log = self._rate_log[(lane_uid, endpoint.name)]
            if not _admit(log, now_ms, WINDOW_MS * endpoint.window, endpoint.rate):
                raise too_many_requests()
        self.audit.lane(lane_uid, endpoint.name).accepted.append(now_ms)
