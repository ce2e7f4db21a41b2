"""
The pure arithmetic of the rate limits: policies, budgets and the functions that place slots.

Nothing here holds state or reads a clock: both schedulers (`bitget_keys.limits.scheduler`
and `bitget_keys.limits.redis`) call these with their own stamps and times, so the rules
they apply are the same by construction. Why the numbers are what they are is in
``docs/rate-limits.md``.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Sequence
from typing import Any, Final

import attrs

from bitget_keys._endpoints import Endpoint
from bitget_keys.errors import ConfigurationError

__all__ = [
    "ANY_UID",
    "DEFAULT_IP_BUDGET",
    "DelayLog",
    "IPBudget",
    "IPPolicy",
    "Policy",
    "decayed_margin",
    "jitter",
    "lane_key",
    "mark_completed",
    "next_slot",
    "recent_jitter",
    "record_delay",
    "widened_margin",
]

#: The UID of the single lane of an endpoint that Bitget counts per IP.
ANY_UID: Final = "*"
#: Bitget counts its per-IP cap over this many seconds.
IP_CAP_WINDOW: Final = 60.0
#: After a 429 the margin grows by this factor, starting from at least MARGIN_SEED.
WIDEN: Final = 1.5
MARGIN_SEED: Final = 0.02
#: Each whole DECAY_EVERY seconds without a 429 takes DECAY_STEP off a widened margin.
DECAY_STEP: Final = 0.01
DECAY_EVERY: Final = 60.0
#: The pause after a 429 is the backoff plus up to this fraction of it, at random.
BACKOFF_JITTER: Final = 0.2
#: 429s on this many lanes within one pause are a storm, which widens no margin.
STORM_LANES: Final = 3
#: Jitter is measured over the responses of the last five minutes (at most 1,000).
JITTER_WINDOW: Final = 300.0
JITTER_SAMPLES: Final = 1000
#: Idle lanes are looked for at most this often (seconds), by the next `run` call.
SWEEP_EVERY: Final = 10.0
#: asyncio runs a timer up to its clock's resolution early: a slot due within this many
#: seconds counts as due, or the lane would re-arm its timer for the same instant.
EARLY: Final = 1e-6


class Policy(enum.Enum):
    """How a lane spreads an endpoint's N requests per W seconds."""

    #: At most one dispatch per ``(W/N)·(1+m)``: safe against every way of counting.
    SPACING = "spacing"
    #: At most N dispatches in any ``W·(1+m)`` (exact log): bursts of N after idling.
    SLIDING = "sliding"


def _number(attribute: attrs.Attribute[Any], value: object, rule: str) -> float:
    """``value`` as a finite number, or a `ConfigurationError` naming the field and rule."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"IPBudget.{attribute.name} must be a number that is {rule} (got {value!r})"
        raise ConfigurationError(msg)
    return value


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if _number(attribute, value, "positive") <= 0:
        msg = f"IPBudget.{attribute.name} must be positive (got {value})"
        raise ConfigurationError(msg)


def _count(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"IPBudget.{attribute.name} must be a whole number of at least 1 (got {value!r})"
        raise ConfigurationError(msg)


def _fraction(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 < _number(attribute, value, "more than 0 and at most 1") <= 1:
        msg = f"IPBudget.{attribute.name} must be more than 0 and at most 1 (got {value})"
        raise ConfigurationError(msg)


def _ip_policy(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, IPPolicy):
        choices = ", ".join(f"IPPolicy.{policy.name}" for policy in IPPolicy)
        msg = f"IPBudget.{attribute.name} must be one of {choices} (got {value!r})"
        raise ConfigurationError(msg)


class IPPolicy(enum.Enum):
    """How the per-IP budget spreads its ``limit`` requests per ``window``."""

    #: At most ``rate`` per second, evenly spaced, and at most ``limit`` per ``window``.
    EVEN = "even"
    #: At most ``limit`` in any rolling ``window``, with no pacing within it: Bitget's
    #: documented rule (requests per IP per minute) kept exactly, at full speed.
    ROLLING = "rolling"


@attrs.frozen(kw_only=True)
class IPBudget:
    """
    What one egress IP may send, whatever the UID or the endpoint.

    By default at most 5,700 dispatches in any rolling 60 s (`IPPolicy.ROLLING`): 5%
    under Bitget's documented 6,000 per IP per minute, with no pacing within the
    minute, so bulk work is bound by the per-UID limits rather than by the IP. Pass
    ``policy=IPPolicy.EVEN`` to also spread the minute's budget at ``rate`` per second.
    """

    #: Dispatches per second, enforced as spacing of ``1/rate`` seconds; only under
    #: `IPPolicy.EVEN`.
    rate: float = attrs.field(default=95.0, validator=_positive)
    #: At most ``limit`` dispatches in any ``window`` seconds, under either policy.
    limit: int = attrs.field(default=5700, validator=_count)
    window: float = attrs.field(default=60.0, validator=_positive)
    #: Whether the budget only counts per window (`IPPolicy.ROLLING`) or also paces
    #: per second (`IPPolicy.EVEN`).
    policy: IPPolicy = attrs.field(default=IPPolicy.ROLLING, validator=_ip_policy)
    #: The fraction of the budget this scheduler may use, leaving the rest of the IP's
    #: budget to other programs on the same egress (a trading system beside a job).
    share: float = attrs.field(default=1.0, validator=_fraction)

    @property
    def effective_rate(self) -> float:
        """Dispatches per second this scheduler may make (``rate`` times ``share``)."""
        return self.rate * self.share

    @property
    def effective_limit(self) -> int:
        """Dispatches per ``window`` this scheduler may make (``limit`` times ``share``)."""
        return max(1, int(self.limit * self.share))


#: 5,700 in any rolling minute: 5% under Bitget's 6,000 per IP per minute (why rolling
#: rather than an even 95/s is in ``docs/rate-limits.md``).
DEFAULT_IP_BUDGET: Final = IPBudget()


def next_slot(
    stamps: Sequence[float], *, limit: int, period: float, now: float, ahead: int = 0
) -> float:
    """
    When a dispatch could go, with ``ahead`` others before it going as early as allowed.

    The rule is at most ``limit`` dispatches in any ``period`` seconds: dispatch k may
    go no earlier than dispatch k-limit plus ``period``. Spacing is the case
    ``limit == 1``. ``stamps`` holds at least the last ``limit`` dispatch times, oldest
    first; nothing goes before ``now``.
    """
    rounds, offset = divmod(ahead, limit)
    index = len(stamps) - limit + offset
    first = max(now, stamps[index] + period) if index >= 0 else now
    return first + rounds * period


def decayed_margin(raised: float, floor: float, quiet: float) -> float:
    """A margin raised to ``raised``, after ``quiet`` seconds without a 429."""
    return max(floor, raised - DECAY_STEP * (quiet // DECAY_EVERY))


def widened_margin(margin: float, maximum: float) -> float:
    """The margin after a 429: half as large again (from at least 2%), up to ``maximum``."""
    return min(maximum, WIDEN * max(margin, MARGIN_SEED))


def jitter(delays: Sequence[float]) -> float | None:
    """The spread of ``delays``: 99th percentile minus minimum (``None`` when empty)."""
    if not delays:
        return None
    ordered = sorted(delays)
    return ordered[math.ceil(0.99 * len(ordered)) - 1] - ordered[0]


#: Per lane: (loop time, Bitget's requestTime minus our send time in ms) per response.
DelayLog = deque[tuple[float, float]]


def record_delay(log: DelayLog | None, now: float, delay_ms: float) -> DelayLog:
    """Add one response's delay to a lane's log (made on the first, as most lanes have none)."""
    if log is None:
        log = deque(maxlen=JITTER_SAMPLES)
    log.append((now, delay_ms))
    return log


def recent_jitter(log: DelayLog | None, now: float) -> float | None:
    """The lane's observed jitter in seconds over the last five minutes, if any."""
    spread = jitter([delay for at, delay in log or () if at >= now - JITTER_WINDOW])
    return spread / 1000 if spread is not None else None


def lane_key(uid: str, endpoint: Endpoint) -> tuple[str, str]:
    """The lane of a request: (owner UID, endpoint name), or (`ANY_UID`, name) per IP."""
    return (uid if endpoint.scope == "uid" else ANY_UID, endpoint.name)


def mark_completed(done: list[float], dispatched: int, seq: int, now: float) -> None:
    """
    Record in ``done`` that dispatch ``seq`` completed at ``now``.

    ``done`` holds the completion times of the last dispatches, the newest being
    dispatch ``dispatched - 1``; a dispatch already out of it is ignored.
    """
    index = seq - (dispatched - len(done))
    if index >= 0:
        done[index] = now
