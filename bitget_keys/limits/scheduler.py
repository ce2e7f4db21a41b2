"""
Client-side rate limits for Bitget: one FIFO lane per (UID, endpoint), one budget per IP.

Keying. Bitget counts each endpoint's limit against the UID that owns the calling API
key (the master or broker UID, never the target ``subUid``), and counts every endpoint
separately. All keys and all processes of one UID therefore share one budget per
endpoint, and `RateLimitScheduler` keeps one lane per ``(owner UID, endpoint name)``.
An endpoint whose ``scope`` is ``"ip"`` is counted per IP address instead, so it has a
single lane (UID ``"*"``): one scheduler stands for one egress IP.

Spacing or sliding. Bitget documents "N requests per W seconds" (W is 1 s everywhere)
but not how it counts them: a rolling window, fixed windows or strict spacing. The
default policy, `Policy.SPACING`, releases a lane's requests at least ``(W/N)·(1+m)``
seconds apart. Any N+1 consecutive releases then span more than W, so no window of W
seconds, rolling or fixed, ever holds more than N, and a server that enforces spacing
accepts them too. `Policy.SLIDING` keeps an exact log instead and allows up to N
requests in any ``W·(1+m)``, so after a quiet spell N requests go at once. That is
faster for short bursts but a spacing server rejects most of them; use it only for an
endpoint that calibration showed to be counted in a rolling window.

Counted from completions. Under both policies a dispatch waits until W (sliding:
``W·(1+m)``) after the dispatch N before it *completed* (its answer arrived, or it
failed or was abandoned). The server had received that request by then, and it cannot
receive the new one before it is sent, so however the two were delayed on the way (a
busy event loop, a connection wait, the network), no window of W seconds at the server
holds both: against a rolling window this is exact, not probabilistic. Spacing on send
stamps alone is not: when the first of N+1 requests is held up on our side and the
last is not, the server sees them closer than we sent them. A dispatch whose answer
has not come holds its lane until it does. The cost is one round trip per N requests,
not per request.

Margins. The server counts arrival times, not our send times. When the first of N+1
requests takes the slow path and the last the fast one, their span shrinks by the
delay spread J, so a rolling window needs ``m ≥ J/W`` and a spacing server
``m ≥ N·J/W``. The default of 5% covers a warm connection in the same region; with 0%
any jitter at all draws 429s. `RateLimitScheduler.observe` records Bitget's
``requestTime`` against our send time, and `RateLimitScheduler.statistics` reports the
spread of the difference (99th percentile minus minimum, over the last five minutes) as
each lane's observed jitter, which is the number to set the margin from.

429 feedback. A throttled request is feedback for its lane alone: that lane pauses for
about a second (plus up to 20% random jitter, so lanes throttled together do not retry
together), its margin grows by half (up to ``max_margin``) and shrinks back by 0.01 per
quiet minute, and the request is queued again at the head of its lane and retried, up
to ``retries`` times. When 429s hit three or more lanes within one pause, that is a
storm (the IP, or the exchange), not a thin margin: the lanes pause but their margins
stay, so they are back at full speed as soon as the storm ends. Other lanes carry on.
A slot is never given back once its request was dispatched: a request that failed,
timed out or was cancelled after sending may well have been counted.

IP budget. Bitget allows 6,000 requests per IP per minute and locks an IP out for five
minutes when it sees more, so from one egress IP this, not the per-UID limits, is the
real ceiling for bulk work. Every lane takes an IP token before it dispatches: token k
is due ``k/rate`` seconds after the first (95/s by default; GCRA, so a wake-up that
comes up to one interval late is made up by the next token instead of lowering the rate
for good, so two tokens may go at once), and at most ``limit`` (5,700) are taken in
any ``window`` (60 s). A token is never refunded, not even when the caller gives its
slot back. When a 429 arrives while the scheduler's own count of the last minute is
above ``ip_cap`` (Bitget's 6,000), the IP cap was certainly breached, so every lane
pauses for ``lockout`` seconds (`RateLimitScheduler.pause_all`). A storm of 429s on
many lanes at once is not taken as proof: the lanes back off on their own and recover
as soon as the storm ends.

Stamping at dispatch. A lane's slot is stamped with ``loop.time()`` read in the
caller's own task immediately before it calls ``send()``, not when the waiter was
woken. A lane hands out one slot at a time and does not compute the next one until the
previous one is stamped, and it takes the global in-flight permit (keep
``max_in_flight`` no larger than the HTTP connection pool) and the IP token before it
wakes the caller. A busy event loop, a stall or a wait for a pooled connection can then
only make a lane later, never denser; what happens inside ``send()`` before the bytes
leave is covered by counting from completions (above).

Why not aiolimiter. Its compliant configuration is ``AsyncLimiter(1, T)`` per lane
(``AsyncLimiter(N, W)`` lets ``2N-1`` through in one window), which would fit a plain
spacing lane. But it spends a lane's capacity inside ``acquire()``, before the in-flight
permit can be taken, so a wait for a connection falls between the slot and the send, and
two requests of one lane can reach Bitget closer than ``W/N``; a lane here takes the
permit first. Neither keeps the spacing when ``send()`` itself is held up before the
bytes leave (a connection being opened, an overloaded loop); counting from completions
still keeps the rolling window then. ``benchmarks/aiolimiter_comparison.py`` runs both
side by side on the emulator; its figures are in ``benchmarks/README.md``. aiolimiter
also lets a newcomer take a free slot ahead of a woken waiter (which then goes to the
back of the queue), has no exact sliding log (so the 5,700-per-minute count could not be
expressed with it), and cannot pause one lane, widen its interval or put a retry at the
head of its queue without being replaced, nor count a slot from when its request
completed.

No task per lane or per request. A lane is a FIFO of waiters, one per waiting caller
(a 72-byte future-like object that wakes exactly one task, where an `asyncio.Future`
and its ``await`` iterator take 183), its last N send and completion stamps, and at
most one timer handle: when its head may go, a loop callback wakes it, or queues the
lane for a permit and an IP token, which are granted in the order lanes became
ready. A completion, a give-back or a timer is what moves a lane on. All the
arithmetic is in small pure functions (`next_slot`, `widened_margin`,
`decayed_margin`, `jitter`).
"""

from __future__ import annotations

import asyncio
import enum
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import attrs

from bitget_keys._endpoints import ENDPOINTS, Endpoint
from bitget_keys.errors import (
    ClientStateError,
    ConfigurationError,
    RateLimitExceededError,
    RateLimitWaitTooLongError,
)
from bitget_keys.limits.waiter import Waiter

__all__ = [
    "ANY_UID",
    "DEFAULT_IP_BUDGET",
    "DelayLog",
    "IPBudget",
    "LaneStatistics",
    "Policy",
    "RateLimitScheduler",
    "SchedulerStatistics",
    "StormWatch",
    "bound_loop",
    "decayed_margin",
    "jitter",
    "lane_key",
    "mark_completed",
    "next_slot",
    "recent_jitter",
    "record_delay",
    "widened_margin",
]

T = TypeVar("T")

#: The UID of the single lane of an endpoint that Bitget counts per IP.
ANY_UID: Final = "*"
#: Bitget counts its per-IP cap over this many seconds.
_IP_CAP_WINDOW: Final = 60.0
#: After a 429 the margin grows by this factor, starting from at least _MARGIN_SEED.
_WIDEN: Final = 1.5
_MARGIN_SEED: Final = 0.02
#: Each whole _DECAY_EVERY seconds without a 429 takes _DECAY_STEP off a widened margin.
_DECAY_STEP: Final = 0.01
_DECAY_EVERY: Final = 60.0
#: The pause after a 429 is the backoff plus up to this fraction of it, at random.
_BACKOFF_JITTER: Final = 0.2
#: 429s on this many lanes within one pause are a storm, which widens no margin.
_STORM_LANES: Final = 3
#: Jitter is measured over the responses of the last five minutes (at most 1,000).
_JITTER_WINDOW: Final = 300.0
_JITTER_SAMPLES: Final = 1000
#: Idle lanes are looked for at most this often (seconds), by the next `run` call.
_SWEEP_EVERY: Final = 10.0
#: asyncio runs a timer up to its clock's resolution early: a slot due within this many
#: seconds counts as due, or the lane would re-arm its timer for the same instant.
_EARLY: Final = 1e-6


class Policy(enum.Enum):
    """How a lane spreads an endpoint's N requests per W seconds."""

    #: At most one dispatch per ``(W/N)·(1+m)``: safe against every way of counting.
    SPACING = "spacing"
    #: At most N dispatches in any ``W·(1+m)`` (exact log): bursts of N after idling.
    SLIDING = "sliding"


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        msg = f"IPBudget.{attribute.name} must be positive (got {value})"
        raise ConfigurationError(msg)


@attrs.frozen(kw_only=True)
class IPBudget:
    """What one egress IP may send, whatever the UID or the endpoint."""

    #: Dispatches per second, enforced as spacing of ``1/rate`` seconds.
    rate: float = attrs.field(default=95.0, validator=_positive)
    #: At most ``limit`` dispatches in any ``window`` seconds.
    limit: int = attrs.field(default=5700, validator=_positive)
    window: float = attrs.field(default=60.0, validator=_positive)


#: 95/s and 5,700 per minute: 5% under Bitget's 6,000 per IP per minute.
DEFAULT_IP_BUDGET: Final = IPBudget()


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
    return max(floor, raised - _DECAY_STEP * (quiet // _DECAY_EVERY))


def widened_margin(margin: float, maximum: float) -> float:
    """The margin after a 429: half as large again (from at least 2%), up to ``maximum``."""
    return min(maximum, _WIDEN * max(margin, _MARGIN_SEED))


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
        log = deque(maxlen=_JITTER_SAMPLES)
    log.append((now, delay_ms))
    return log


def recent_jitter(log: DelayLog | None, now: float) -> float | None:
    """The lane's observed jitter in seconds over the last five minutes, if any."""
    spread = jitter([delay for at, delay in log or () if at >= now - _JITTER_WINDOW])
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


def bound_loop(bound: asyncio.AbstractEventLoop | None, owner: str) -> asyncio.AbstractEventLoop:
    """
    The running loop, which must be ``bound`` unless the scheduler is not bound yet.

    Raises:
        ClientStateError: ``owner`` is bound to another event loop.
    """
    loop = asyncio.get_running_loop()
    if bound is not None and bound is not loop:
        msg = f"this {owner} is bound to another event loop; create one scheduler per loop"
        raise ClientStateError(msg)
    return loop


class StormWatch:
    """
    Tells a storm of 429s from one lane's thin margin.

    429s on `_STORM_LANES` or more lanes within ``window`` seconds point at the IP or
    the exchange: widening every lane's margin then would only slow everything down for
    the many minutes the margins take to decay, while the storm itself ends on its own.
    """

    __slots__ = ("_recent", "_window")

    def __init__(self, window: float) -> None:
        self._window = window
        self._recent: deque[tuple[float, tuple[str, str]]] = deque()

    def seen(self, now: float, key: tuple[str, str]) -> bool:
        """Record a 429 on lane ``key``; return whether it is part of a storm."""
        recent = self._recent
        while recent and recent[0][0] < now - self._window:
            recent.popleft()
        recent.append((now, key))
        return len({lane for _, lane in recent}) >= _STORM_LANES


class _Lane:
    """One (UID, endpoint) lane: its waiters, its recent dispatches and its 429 state."""

    __slots__ = (
        "blocked",
        "delays",
        "dispatched",
        "done",
        "endpoint",
        "floor",
        "granted",
        "head",
        "in_flight",
        "paused_until",
        "policy",
        "queued",
        "raised",
        "sent",
        "throttled",
        "throttled_at",
        "timer",
        "uid",
        "waiters",
    )

    def __init__(self, uid: str, endpoint: Endpoint, policy: Policy, margin: float) -> None:
        self.uid = uid
        self.endpoint = endpoint
        self.policy = policy
        #: FIFO of waiting callers from index ``head`` on (a list with a moving head is
        #: a fifth of a deque's size for the few waiters a lane usually holds). A waiter
        #: is granted when its caller may stamp its slot. Cancelled waiters stay until they
        #: reach the head, where they are dropped.
        self.waiters: list[Waiter] = []
        self.head = 0
        #: Live (not cancelled) waiters.
        self.queued = 0
        #: The head was woken and has not stamped its slot (or given it back) yet.
        self.granted = False
        #: The lane's head waits in the scheduler's queue for a permit or an IP token.
        self.blocked = False
        #: The wake-up call for when the lane's head may go.
        self.timer: asyncio.TimerHandle | None = None
        #: Dispatch stamps and completion stamps (``inf`` while in flight) of the last
        #: N dispatches, oldest first.
        self.sent: list[float] = []
        self.done: list[float] = []
        self.floor = margin
        self.raised = margin
        self.throttled_at: float | None = None
        self.paused_until = -math.inf
        self.in_flight = 0
        self.dispatched = 0
        self.throttled = 0
        #: (loop time, Bitget's requestTime minus our send time in ms) per response;
        #: made on the first one, since most lanes are never observed.
        self.delays: DelayLog | None = None

    def __repr__(self) -> str:
        return (
            f"<_Lane {self.uid}/{self.endpoint.name} {self.policy.value} "
            f"queued={self.queued} in_flight={self.in_flight} "
            f"dispatched={self.dispatched} throttled={self.throttled}>"
        )

    # -- the FIFO ----------------------------------------------------------------------

    def push(self, waiter: Waiter, *, first: bool) -> None:
        if not first:
            self.waiters.append(waiter)
        elif self.head:
            self.head -= 1
            self.waiters[self.head] = waiter
        else:
            self.waiters.insert(0, waiter)
        self.queued += 1

    def live_head(self) -> Waiter | None:
        """The first waiter that still waits, dropping cancelled ones before it."""
        waiters = self.waiters
        while self.head < len(waiters):
            waiter = waiters[self.head]
            if not waiter.done():
                return waiter
            self.pop()
        return None

    def pop(self) -> Waiter:
        waiters = self.waiters
        waiter = waiters[self.head]
        self.head += 1
        if self.head == len(waiters):
            waiters.clear()
            self.head = 0
        elif self.head > 32 and 2 * self.head > len(waiters):
            del waiters[: self.head]
            self.head = 0
        return waiter

    # -- the rule ----------------------------------------------------------------------

    def margin(self, now: float) -> float:
        if self.throttled_at is None:
            return self.floor
        return decayed_margin(self.raised, self.floor, now - self.throttled_at)

    def interval(self, margin: float) -> float:
        return self.endpoint.window / self.endpoint.rate * (1 + margin)

    def next_at(self, now: float, ahead: int = 0, *, estimate: bool = False) -> float:
        """
        When the lane's next dispatch (after ``ahead`` others) may go by the lane's rule.

        ``inf`` while the dispatch N back is still in flight; with ``estimate``, such a
        dispatch counts as completed when it was sent, for a guess at a wait.
        """
        rate, window = self.endpoint.rate, self.endpoint.window
        margin = self.margin(now)
        done = self.done
        if estimate and math.inf in done:
            done = [
                sent if at == math.inf else at for sent, at in zip(self.sent, done, strict=True)
            ]
        if self.policy is Policy.SLIDING:
            return next_slot(done, limit=rate, period=window * (1 + margin), now=now, ahead=ahead)
        interval = self.interval(margin)
        first = max(now, self.sent[-1] + interval) if self.sent else now
        first = next_slot(done, limit=rate, period=window, now=first)
        return first + ahead * interval

    def stamp(self, now: float) -> int:
        """Record a dispatch at ``now``; returns its sequence number."""
        seq = self.dispatched
        self.dispatched = seq + 1
        self.in_flight += 1
        sent, done = self.sent, self.done
        sent.append(now)
        done.append(math.inf)
        if len(sent) > self.endpoint.rate:
            del sent[0], done[0]
        return seq

    def settle(self, seq: int, now: float) -> None:
        """Record that dispatch ``seq`` completed (answered, failed or abandoned) at ``now``."""
        self.in_flight -= 1
        mark_completed(self.done, self.dispatched, seq, now)

    def fresh(self, now: float) -> bool:
        """Whether the lane behaves exactly as a new one would, so it can be dropped."""
        return (
            self.queued == 0
            and self.timer is None
            and not self.granted
            and not self.blocked
            and self.in_flight == 0
            and self.paused_until <= now
            and self.margin(now) == self.floor
            and (not self.sent or self.sent[-1] + self.interval(self.floor) <= now)
            and (not self.done or max(self.done) + self.endpoint.window * (1 + self.floor) <= now)
        )

    def statistics(self, now: float) -> LaneStatistics:
        margin = self.margin(now)
        return LaneStatistics(
            uid=self.uid,
            endpoint=self.endpoint.name,
            policy=self.policy,
            queued=self.queued,
            in_flight=self.in_flight,
            dispatched=self.dispatched,
            throttled=self.throttled,
            margin=margin,
            interval=self.interval(margin),
            paused_until=self.paused_until if self.paused_until > now else None,
            jitter=recent_jitter(self.delays, now),
        )


class RateLimitScheduler:
    """
    Keeps every request inside its (UID, endpoint) limit and the IP's budget.

    Share one scheduler between all clients that send from one egress IP in one event
    loop; it binds to the first loop that uses it. See the module docstring for the
    theory.

    Args:
        margin: the safety margin every lane starts from and decays back to.
        max_margin: the most a lane's margin grows to after repeated 429s.
        policies: `Policy` per endpoint name; `Policy.SPACING` where not given.
        ip_budget: the per-IP budget shared by every lane; ``None`` switches it off.
        ip_cap: Bitget's per-IP cap per 60 s. A 429 while the scheduler's own count of
            the last 60 s is above it pauses every lane for ``lockout`` seconds.
        max_in_flight: requests sent and not yet answered, over all lanes; keep it no
            larger than the HTTP connection pool.
        retries: how often a throttled request is sent again before its 429 is raised.
        backoff: seconds a lane pauses after a 429, plus up to 20% at random.
        lockout: seconds every lane pauses once the IP cap was breached.

    Raises:
        ConfigurationError: a setting is out of range or names an unknown endpoint.
    """

    __slots__ = (
        "_backoff",
        "_blocked",
        "_free",
        "_ip_budget",
        "_ip_cap",
        "_ip_tat",
        "_ip_timer",
        "_lanes",
        "_lockout",
        "_loop",
        "_margin",
        "_max_in_flight",
        "_max_margin",
        "_paused_until",
        "_policies",
        "_retries",
        "_sent",
        "_storms",
        "_sweep_at",
    )

    def __init__(
        self,
        *,
        margin: float = 0.05,
        max_margin: float = 0.5,
        policies: Mapping[str, Policy] | None = None,
        ip_budget: IPBudget | None = DEFAULT_IP_BUDGET,
        ip_cap: int = 6000,
        max_in_flight: int = 100,
        retries: int = 5,
        backoff: float = 1.0,
        lockout: float = 300.0,
    ) -> None:
        policies = dict(policies or {})
        unknown = sorted(set(policies) - set(ENDPOINTS))
        problems = [
            (margin < 0, f"margin must not be negative (got {margin})"),
            (max_margin < margin, f"max_margin must be at least margin (got {max_margin})"),
            (bool(unknown), f"policies name unknown endpoints: {', '.join(unknown)}"),
            (ip_cap < 1, f"ip_cap must be positive (got {ip_cap})"),
            (max_in_flight < 1, f"max_in_flight must be positive (got {max_in_flight})"),
            (retries < 0, f"retries must not be negative (got {retries})"),
            (backoff <= 0, f"backoff must be positive (got {backoff})"),
            (lockout < 0, f"lockout must not be negative (got {lockout})"),
        ]
        for failed, problem in problems:
            if failed:
                raise ConfigurationError(f"RateLimitScheduler: {problem}")
        self._margin = margin
        self._max_margin = max_margin
        self._policies = policies
        self._ip_budget = ip_budget
        self._ip_cap = ip_cap
        self._max_in_flight = max_in_flight
        self._retries = retries
        self._backoff = backoff
        self._lockout = lockout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lanes: dict[tuple[str, str], _Lane] = {}
        #: In-flight permits left.
        self._free = max_in_flight
        #: Lanes whose head may go by its own rule and waits for a permit or an IP
        #: token, in the order they became ready.
        self._blocked: deque[_Lane] = deque()
        self._ip_timer: asyncio.TimerHandle | None = None
        #: The IP budget's theoretical arrival time (GCRA): the next token is due then.
        self._ip_tat = -math.inf
        #: When the last IP tokens were taken, as many as the budget and the cap need.
        self._sent: deque[float] = deque(
            maxlen=max(ip_cap + 1, ip_budget.limit if ip_budget else 0)
        )
        self._paused_until = -math.inf
        self._sweep_at = -math.inf
        self._storms = StormWatch(backoff * (1 + _BACKOFF_JITTER))

    def __repr__(self) -> str:
        busy = sum(1 for lane in self._lanes.values() if lane.queued)
        return (
            f"<RateLimitScheduler lanes={len(self._lanes)} busy={busy} "
            f"in_flight={self._max_in_flight - self._free}"
            f"/{self._max_in_flight} margin={self._margin} "
            f"loop={'bound' if self._loop else 'unbound'}>"
        )

    # -- public ----------------------------------------------------------------------

    async def run(
        self,
        uid: str,
        endpoint: Endpoint,
        send: Callable[[], Awaitable[T]],
        *,
        max_wait: float | None = None,
    ) -> T:
        """
        Wait for the lane's next slot, then call ``send()`` in this task; return its result.

        Requests of one lane go strictly in the order of their calls. If ``send()``
        raises `RateLimitExceededError`, the lane pauses, and the request goes again
        first in its lane, up to ``retries`` times.

        Args:
            uid: the UID that owns the calling API key (ignored for IP-scoped endpoints).
            endpoint: what is called; its rate, window and scope set the limit.
            send: sends the request once; called at the instant the slot is stamped.
                The slot counts as completed when it returns or raises.
            max_wait: the longest this call may wait for a slot, each attempt alike.

        Raises:
            RateLimitWaitTooLongError: the slot would come, or did not come, within
                ``max_wait`` seconds; nothing was sent for this attempt.
            RateLimitExceededError: still throttled after ``retries`` retries, or a
                retry would wait longer than ``max_wait``.
            ClientStateError: the scheduler is bound to another event loop.
        """
        loop = self._bind()
        lane = self._lane(uid, endpoint, loop.time())
        attempt = 0
        while True:
            # No coroutine of its own for the wait: a queued request costs its waiter.
            now = loop.time()
            if self._free_now(lane, now):
                seq = self._dispatch(lane, now)
            else:
                waiter = self._enqueue(loop, lane, now, max_wait, retry=attempt > 0)
                try:
                    if max_wait is None:
                        await waiter
                    else:
                        async with asyncio.timeout(max_wait):
                            await waiter
                except BaseException as exc:
                    self._abandon(lane, waiter)
                    if isinstance(exc, TimeoutError) and max_wait is not None:
                        wait = max_wait + self._wait(lane, loop.time(), retry=True)
                        raise RateLimitWaitTooLongError(
                            lane.endpoint.path, lane.uid, wait, max_wait
                        ) from None
                    raise
                # Stamped here, in the caller's task, at the instant it runs: a busy
                # loop can only make the lane later, never denser.
                lane.granted = False
                seq = self._dispatch(lane, loop.time(), taken=True)
            try:
                return await send()
            except RateLimitExceededError:
                now = loop.time()
                self._throttle(lane, now)
                attempt += 1
                if attempt > self._retries or (
                    max_wait is not None and self._wait(lane, now, retry=True) > max_wait
                ):
                    raise
            finally:
                self._settle(loop, lane, seq)

    def pause_all(self, duration: float) -> None:
        """
        Send nothing on any lane for ``duration`` seconds from now (IP-level throttle).

        Raises:
            ClientStateError: the scheduler is bound to another event loop.
        """
        now = self._bind().time()
        self._paused_until = max(self._paused_until, now + duration)

    def observe(self, uid: str, endpoint: Endpoint, *, sent_ms: int, request_time_ms: int) -> None:
        """
        Record one response's ``requestTime`` against the wall time its request was sent.

        The difference is the clock offset (constant over minutes) plus the delay, so its
        spread over recent responses is the delay spread that margins must cover. Call it
        for every response, errors included; a lane that was dropped as idle ignores it.

        Raises:
            ClientStateError: the scheduler is bound to another event loop.
        """
        now = self._bind().time()
        lane = self._lanes.get(lane_key(uid, endpoint))
        if lane is None:
            return
        lane.delays = record_delay(lane.delays, now, float(request_time_ms - sent_ms))

    def statistics(self) -> SchedulerStatistics:
        """A frozen snapshot of every lane and of the shared budgets."""
        now = self._loop.time() if self._loop is not None else 0.0
        lanes = tuple(lane.statistics(now) for lane in self._lanes.values())
        return SchedulerStatistics(
            lanes=lanes,
            in_flight=sum(lane.in_flight for lane in lanes),
            max_in_flight=self._max_in_flight,
            ip_last_minute=sum(1 for at in self._sent if at > now - _IP_CAP_WINDOW),
            paused_until=self._paused_until if self._paused_until > now else None,
        )

    # -- lanes -----------------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        self._loop = bound_loop(self._loop, "RateLimitScheduler")
        return self._loop

    def _lane(self, uid: str, endpoint: Endpoint, now: float) -> _Lane:
        if now >= self._sweep_at:
            # Only lanes that equal a fresh one go, so dropping them changes nothing.
            self._lanes = {key: lane for key, lane in self._lanes.items() if not lane.fresh(now)}
            self._sweep_at = now + _SWEEP_EVERY
        key = lane_key(uid, endpoint)
        lane = self._lanes.get(key)
        if lane is None:
            policy = self._policies.get(endpoint.name, Policy.SPACING)
            lane = self._lanes[key] = _Lane(key[0], endpoint, policy, self._margin)
        return lane

    def _ready_at(self, lane: _Lane, now: float) -> float:
        """When the lane's head may go, as far as the lane and the pauses are concerned."""
        return max(lane.next_at(now), lane.paused_until, self._paused_until)

    def _ip_ready_at(self, now: float) -> float:
        budget = self._ip_budget
        if budget is None:
            return now
        # One token of tolerance (GCRA burst 2): a wake-up up to one interval late is
        # made up, so the budget's rate holds on a busy loop.
        spaced = self._ip_tat - 1 / budget.rate
        counted = next_slot(self._sent, limit=budget.limit, period=budget.window, now=now)
        return max(now, spaced, counted)

    def _take_ip(self, now: float) -> None:
        self._sent.append(now)
        if self._ip_budget is not None:
            self._ip_tat = max(self._ip_tat, now) + 1 / self._ip_budget.rate

    def _wait(self, lane: _Lane, now: float, *, retry: bool) -> float:
        """Roughly how long a new request (or a retry, at the head) would wait."""
        start = max(now, lane.paused_until, self._paused_until)
        ahead = 0 if retry else lane.queued
        return max(lane.next_at(start, ahead, estimate=True), self._ip_ready_at(now)) - now

    def _throttle(self, lane: _Lane, now: float) -> None:
        lane.throttled += 1
        if self._storms.seen(now, (lane.uid, lane.endpoint.name)):
            lane.raised = lane.margin(now)
        else:
            lane.raised = widened_margin(lane.margin(now), self._max_margin)
        lane.throttled_at = now
        # Random so that lanes throttled together do not all come back together.
        jittered = self._backoff * (1 + random.uniform(0, _BACKOFF_JITTER))  # noqa: S311
        lane.paused_until = max(lane.paused_until, now + jittered)
        # Only our own count proves the IP cap was breached; a storm of 429s on many
        # lanes may have other causes, and the lanes recover from it on their own.
        if next_slot(self._sent, limit=self._ip_cap + 1, period=_IP_CAP_WINDOW, now=now) > now:
            self.pause_all(self._lockout)

    # -- the caller's side -----------------------------------------------------------

    def _free_now(self, lane: _Lane, now: float) -> bool:
        """Whether a request may go at once: nobody waits for anything it needs."""
        return (
            lane.queued == 0
            and lane.timer is None
            and not lane.granted
            and self._free > 0
            and not self._blocked
            and self._ready_at(lane, now) <= now + _EARLY
            and self._ip_ready_at(now) <= now + _EARLY
        )

    def _dispatch(self, lane: _Lane, now: float, *, taken: bool = False) -> int:
        """Stamp a slot at ``now``, taking its permit and IP token unless ``taken``."""
        if not taken:
            self._free -= 1
            self._take_ip(now)
        seq = lane.stamp(now)
        if taken:
            self._pump(lane)
        return seq

    def _enqueue(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: _Lane,
        now: float,
        max_wait: float | None,
        *,
        retry: bool,
    ) -> Waiter:
        """Queue a request (a retry at the head); its waiter is granted when it may go."""
        if max_wait is not None and (wait := self._wait(lane, now, retry=retry)) > max_wait:
            raise RateLimitWaitTooLongError(lane.endpoint.path, lane.uid, wait, max_wait)
        waiter = Waiter(loop)
        lane.push(waiter, first=retry)
        self._pump(lane)
        return waiter

    def _abandon(self, lane: _Lane, waiter: Waiter) -> None:
        """The caller stopped waiting (cancelled, timed out): consume nothing."""
        if waiter.done() and not waiter.cancelled():
            # Granted but not stamped: give the slot back (the IP token is spent).
            lane.granted = False
            self._release()
        else:
            waiter.cancel()
            lane.queued -= 1
        # If it was the head, the lane's next look drops it.
        self._pump(lane)

    def _settle(self, loop: asyncio.AbstractEventLoop, lane: _Lane, seq: int) -> None:
        lane.settle(seq, loop.time())
        # The lane's next slot may have waited for this completion.
        self._pump(lane)
        self._release()

    def _release(self) -> None:
        self._free += 1
        if self._blocked:
            self._serve_blocked()

    # -- waking lanes: callbacks, no task per lane or per request ------------------------

    def _pump(self, lane: _Lane) -> None:
        """Wake the lane's head if it may go now, or arrange to look again when it may."""
        if lane.granted or lane.blocked or lane.timer is not None:
            return
        if lane.live_head() is None:
            return
        loop = self._loop
        assert loop is not None  # noqa: S101 - bound by run() before any waiter exists
        now = loop.time()
        ready = self._ready_at(lane, now)
        if ready > now + _EARLY:
            if ready < math.inf:
                lane.timer = loop.call_at(ready, self._wake, lane)
            # else: a dispatch still in flight decides; its completion pumps the lane.
            return
        lane.blocked = True
        self._blocked.append(lane)
        self._serve_blocked()

    def _wake(self, lane: _Lane) -> None:
        lane.timer = None
        self._pump(lane)

    def _wake_ip(self) -> None:
        self._ip_timer = None
        self._serve_blocked()

    def _serve_blocked(self) -> None:
        """Grant permits and IP tokens to ready lanes, in the order they became ready."""
        blocked = self._blocked
        loop = self._loop
        assert loop is not None  # noqa: S101 - bound by run() before any waiter exists
        while blocked and self._free > 0:
            lane = blocked[0]
            now = loop.time()
            head = lane.live_head()
            if head is None or self._ready_at(lane, now) > now + _EARLY:
                # Left, or paused meanwhile: the lane looks again on its own.
                blocked.popleft()
                lane.blocked = False
                self._pump(lane)
                continue
            ip_ready = self._ip_ready_at(now)
            if ip_ready > now + _EARLY:
                if self._ip_timer is None:
                    self._ip_timer = loop.call_at(ip_ready, self._wake_ip)
                return
            blocked.popleft()
            lane.blocked = False
            self._free -= 1
            self._take_ip(now)
            lane.pop()
            lane.queued -= 1
            lane.granted = True
            head.grant()
