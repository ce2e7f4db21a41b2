"""
Rate limits shared by every process and host through Redis: `RedisRateLimitScheduler`.

When to use it. Bitget counts each endpoint's limit per owning UID, whatever process or
host sends. `bitget_keys.limits.RateLimitScheduler` keeps those budgets in one process;
when several processes share master UIDs (a provisioning fleet, trading processes and a
provisioning job on one master), their in-process lanes add up and over-run the limit.
Shard first where you can (one owner process per UID keeps local lanes exact and
cheaper; ``bitget-keys apply --shard`` does that for plans). Where processes really
share UIDs, this scheduler keeps one budget per (UID, endpoint) in Redis, with the same
API as the in-memory one; the in-memory scheduler stays the default.

One atomic script per acquire, timed by Redis. Each lane is a small Redis hash, and
each slot is taken by one Lua script that reads Redis ``TIME`` (never the caller's
clock, so hosts need not agree on the time), decides and writes in one step, and
answers with a *relative* wait: one round trip per acquire, no polling (the scripts are
loaded once per process, then run with EVALSHA). The default policy,
`Policy.SPACING`, is a GCRA reservation with burst 1: the hash holds the lane's
theoretical arrival time ``tat``; a caller is granted ``t = max(tat, now, pause)``,
the script stores ``tat = t + (W/N)·(1+m)`` and returns ``t - now``, which the caller
waits before it sends. Callers across processes are therefore served in reservation
order, each at its own booked time. `Policy.SLIDING` keeps an exact sliding log
instead: the last N reserved times (a capped list, which is all an exact log needs),
and grants ``t = max(now, pause, newest, N-th newest + W·(1+m))``. Times are integer
microseconds (epoch µs is below 2**53, exact in a Lua number).

Sending at the booked time. Counted from when the answer arrived, the wait would make
a slow answer (a new connection, a busy event loop) delay the send by as much, and the
next process's slot would then land closer to it: at start-up, with forty lanes opening
connections at once, answers took up to 200 ms where they take well under 10 ms later.
So the answer also carries Redis's time, and each process keeps an estimate of Redis
``TIME`` minus its loop clock from its fastest recent round trips (within half a round
trip, plus 500 ppm of drift per second of age). The caller waits until the booked time
on that clock, bounded by what the answer proves: no earlier than the send of the call
plus the wait, no later than the answer plus the wait; when it wakes it places the slot
again with the estimate of that moment (the first round trips after start-up can be
slow, so the estimate at the answer can be tens of milliseconds off, and a better one
may have come while it slept). (Under Redis Cluster, whose nodes may keep different
clocks, the wait counts from the answer.) A caller that wakes more than half the margin
(``m·W/2``) after its slot, on a host too busy to wake it in time, gives the slot up
and books again, first in line: sent late, it would land closer than the margin allows
to the slot N after it, which another process may send on time. After three such slots
it sends regardless, so a host that is never on time still makes progress (and its
429s widen the margin). A process's own sends therefore stay within ``m·W/2`` of their
slots; the other half of the margin is for the way to Bitget.

Local FIFO. Within a process each lane is a FIFO of waiting callers, and only its head
holds a Redis reservation at a time: the head takes the in-flight permit, reserves,
sleeps until its slot, stamps it and calls ``send()``; the next caller reserves only
then. A throttled request re-enters at the head of its lane, and a caller whose slot
falls into a pause that began while it waited (a 429 on its lane, `pause_all`) drops
the slot and reserves again, first in line. A caller cancelled while it waits consumes
nothing; one cancelled after its reservation wastes that slot (a reservation is never
given back, which errs on the safe side).

Margins and 429 feedback. The interval carries the caller's margin, or the lane's raised
margin when that is larger, which is stored in the lane's hash and shared: after a 429
the second script raises it by half (from at least 2%, up to ``max_margin``), records
when, and pauses the lane for ``backoff`` plus up to 20% at random. Every process then
waits out that pause (the shared pause key) and uses the raised margin, which each
script call decays by 0.01 per quiet minute. The storm rule (429s on three or more
lanes within one pause widen no margin) and the IP-lockout rule (a 429 while this
process's own count of the last minute is above ``ip_cap`` pauses every lane for
``lockout`` seconds, through the shared IP pause) are applied per process, from what
that process saw.

Counted from completions within a process only. The in-memory scheduler also waits
until W after the request N before *completed*, which makes it exact against a rolling
window however requests are delayed on the way. This scheduler does the same for the
requests this process sent (a slot is reserved no earlier than W after this process's
request N before on the lane completed), which covers a UID owned by one process, as
when a plan is split with ``--shard``. Across processes that would need a second round
trip per request (to record the completion) and callers polling for completions made
elsewhere, so between processes the spacing is by reservation time only: the margin
must cover the spread J of the delay between a slot's
time and Bitget's arrival stamp (``m ≥ J/W`` for a rolling window). The default 5%
covers 50 ms per second of window, and the 429 feedback above handles the rare outlier.
That spread includes everything after the send: a new connection, a busy event loop or
host on either side, the network. Where it exceeds ``m·W`` (a CPU-starved host, many
connections opening at once), 429s follow, and the feedback above pauses and widens the
lane; give such hosts a larger ``margin``.

IP budget. With an `IPBudget` (95/s and 5,700 per 60 s by default), every acquire also
takes a token from a GCRA key per egress IP name (``<prefix>:{ip:<egress>}``),
spaced ``max(1/rate, window/limit)`` apart, which keeps both rules exactly. On a single
Redis server (or a replicated one) the lane and the IP key are read and written by the
same script, so the acquire stays one round trip and atomic: both are committed, or
neither. Redis Cluster cannot run one script over two hash slots, so there the IP token
is a separate call made first (a second round trip per acquire), and the lane is then
reserved no earlier than the IP token's time; a lane refused for ``max_wait`` after its
IP token was taken wastes that token. ``ip_budget=None`` switches the budget off (and
with it the extra call in Cluster mode). Give every process the name of its egress IP
(``egress=``); processes behind different IPs must use different names.

Keys and Redis Cluster. A lane lives at ``<prefix>:{<uid>}:<endpoint>`` (its sliding log
at ``...:log``), so the braces make the UID the hash tag and a lane's keys always share
a Cluster slot. UIDs that are not plain digits (such as the key-scoped lane used before
an API key's UID is known) are hashed, so no API key is stored in Redis. Endpoints that
Bitget counts per IP live under the IP's tag. Every script call re-arms ``PEXPIRE`` so
that idle keys vanish, but never before their state stops mattering: a reservation
outlives its slot by one window, and a raised margin outlives its decay.

Redis down: fail closed by default. A Redis error or timeout (``timeout``, 0.5 s by
default, bounds connecting and every reply of a client built from a URL) raises
`bitget_keys.errors.RateLimitBackendError`, which names the server with its password
masked and says that no request was sent; for the next ``recheck`` seconds calls fail
at once without trying Redis. With ``fallback=f`` (0 < f ≤ 1) a local in-memory
`RateLimitScheduler` paced at the fraction ``f`` of every rate (its margin is
``(1+m)/f - 1``) takes over instead, with a WARNING log, and Redis is tried again every
``recheck`` seconds. The fraction must cover every process that may fall back at once:
with P processes sharing a UID, choose ``f ≤ 1/P``. On a lane, the first local send
comes at least one window ``W·(1+m)`` after this process's last Redis slot, and once
Redis answers again its first Redis slot comes at least one window after the last local
send; requests still queued in the fallback when Redis is tried again leave it unsent
and reserve through Redis. Slots that other processes booked before the outage are
unknown here, which is one more reason for a small ``f``, and why failing closed is the
default. (A Redis failover can lose the latest reservations too; the hold after a
fallback covers this process's share of that.)

Testing hook. Each script accepts an optional ``now`` in microseconds (the last
argument, empty in production, where Redis ``TIME`` is used), so tests can check the
arithmetic on a real server without sleeping; `RedisRateLimitScheduler` never passes
it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, Self, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from bitget_keys._endpoints import Endpoint
from bitget_keys.errors import (
    ClientStateError,
    ConfigurationError,
    RateLimitBackendError,
    RateLimitExceededError,
    RateLimitWaitTooLongError,
)
from bitget_keys.limits.core import StormWatch, bound_loop
from bitget_keys.limits.policy import (
    ANY_UID,
    BACKOFF_JITTER,
    DECAY_EVERY,
    DECAY_STEP,
    DEFAULT_IP_BUDGET,
    IP_CAP_WINDOW,
    MARGIN_SEED,
    SWEEP_EVERY,
    WIDEN,
    DelayLog,
    IPBudget,
    Policy,
    lane_key,
    mark_completed,
    next_slot,
    recent_jitter,
    record_delay,
)
from bitget_keys.limits.scheduler import RateLimitScheduler
from bitget_keys.limits.statistics import LaneStatistics, SchedulerStatistics
from bitget_keys.limits.waiter import Waiter

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = [
    "RedisRateLimitScheduler",
    "RedisSchedulerStatistics",
    "mask_url",
]

T = TypeVar("T")

_log: Final = logging.getLogger("bitget_keys.redis_limits")

_US: Final = 1_000_000
#: What Redis may hold in a key's name between the prefix's braces.
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_PLAIN_UID: Final = re.compile(r"[0-9]{1,32}")
#: How fast the loop's clock may drift from Redis TIME (NTP slews at most 500 ppm).
_DRIFT: Final = 500e-6
#: A pause that ends within this many seconds of a slot does not hold the slot back.
_LATE: Final = 0.001
#: A caller that wakes more than this share of its lane's margin (times the window)
#: after its slot gives the slot up and books again: the rest of the margin is for the
#: way to Bitget.
_LATE_SHARE: Final = 0.5
#: How many slots one attempt gives up for lateness before it sends late regardless
#: (a host too busy ever to be on time must still make progress; 429s then widen the
#: margin).
_MAX_MISSED: Final = 3
#: Query parameters of a Redis URL whose value is masked.
_SECRET_PARAMS: Final = ("pass", "secret", "token", "key")

# -- the scripts ------------------------------------------------------------------------

#: Shared by every script: ``now`` from Redis TIME (or the testing hook), integer
#: formatting (Lua would print 1.7e15 as "1.7e+15") and the decayed margin.
_PRELUDE: Final = """
local now
if ARGV[#ARGV] ~= '' then
  now = tonumber(ARGV[#ARGV])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function int(x) return string.format('%.0f', x) end
local function decayed(raised, at, floor)
  if raised == nil or at == nil then return floor end
  return math.max(floor, raised - $STEP * math.floor((now - at) / $EVERY))
end
local function decay_time(raised, floor)
  if raised == nil or raised <= floor then return 0 end
  return math.ceil((raised - floor) / $STEP) * $EVERY
end
"""

#: Reserve one slot of a lane (and an IP token when KEYS[3] is given).
#: KEYS: lane hash, lane log, [IP hash]. ARGV: window µs, limit, policy, floor margin,
#: max wait µs (-1: none), hold µs, IP interval µs (0: no budget), now µs ('' = TIME).
#: Returns {granted 0/1, wait µs, margin ppm, lane pause left µs, Redis time µs}.
_RESERVE: Final = """
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local sliding = ARGV[3] == 'sliding'
local floor = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local ip_interval = tonumber(ARGV[7])
local lane = redis.call('HMGET', KEYS[1], 'tat', 'pause', 'raised', 'at')
local tat = tonumber(lane[1]) or 0
local pause = tonumber(lane[2]) or 0
local raised = tonumber(lane[3])
local margin = decayed(raised, tonumber(lane[4]), floor)
local period = math.ceil(window * (1 + margin))
local start = math.max(now + tonumber(ARGV[6]), pause)
if sliding then
  local log = redis.call('LRANGE', KEYS[2], 0, -1)
  local n = #log
  if n > 0 then start = math.max(start, tonumber(log[n])) end
  if n >= limit then start = math.max(start, tonumber(log[n - limit + 1]) + period) end
else
  start = math.max(start, tat)
end
local ip = nil
if #KEYS > 2 then
  ip = redis.call('HMGET', KEYS[3], 'tat', 'pause')
  start = math.max(start, tonumber(ip[2]) or 0)
  if ip_interval > 0 then start = math.max(start, tonumber(ip[1]) or 0) end
end
local wait = start - now
local reply = {1, wait, math.floor(margin * 1000000 + 0.5), math.max(0, pause - now), now}
if max_wait >= 0 and wait > max_wait then
  reply[1] = 0
  return reply
end
local keep = math.max(pause - now, 0) + period
if sliding then
  redis.call('RPUSH', KEYS[2], int(start))
  redis.call('LTRIM', KEYS[2], -limit, -1)
  redis.call('PEXPIRE', KEYS[2], math.ceil((start - now + period) / 1000) + 1000)
  keep = math.max(keep, start - now + period)
else
  local next_tat = start + math.ceil(window * (1 + margin) / limit)
  redis.call('HSET', KEYS[1], 'tat', int(next_tat))
  keep = math.max(keep, next_tat - now + period)
end
keep = keep + decay_time(raised, floor)
redis.call('PEXPIRE', KEYS[1], math.ceil(keep / 1000) + 1000)
if ip ~= nil and ip_interval > 0 then
  local ip_tat = start + ip_interval
  redis.call('HSET', KEYS[3], 'tat', int(ip_tat))
  local ip_keep = math.max(ip_tat, tonumber(ip[2]) or 0) - now
  redis.call('PEXPIRE', KEYS[3], math.ceil(ip_keep / 1000) + 1000)
end
return reply
"""

#: A 429 on a lane: widen its margin (unless storm) and pause it, for every process.
#: KEYS: lane hash. ARGV: floor margin, max margin, pause µs, storm '1'/'0', window µs,
#: now µs. Returns {raised margin ppm, pause left µs}.
_THROTTLE: Final = """
local floor = tonumber(ARGV[1])
local lane = redis.call('HMGET', KEYS[1], 'tat', 'pause', 'raised', 'at')
local tat = tonumber(lane[1]) or 0
local pause = tonumber(lane[2]) or 0
local margin = decayed(tonumber(lane[3]), tonumber(lane[4]), floor)
local raised = margin
if ARGV[4] ~= '1' then
  raised = math.min(tonumber(ARGV[2]), $WIDEN * math.max(margin, $SEED))
end
pause = math.max(pause, now + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'raised', string.format('%.17g', raised), 'at', int(now),
  'pause', int(pause))
local keep = math.max(tat, pause) - now + math.ceil(tonumber(ARGV[5]) * (1 + raised))
keep = keep + decay_time(raised, floor)
redis.call('PEXPIRE', KEYS[1], math.ceil(keep / 1000) + 1000)
return {math.floor(raised * 1000000 + 0.5), pause - now}
"""

#: Pause every lane of an egress IP. KEYS: IP hash. ARGV: duration µs, now µs.
#: Returns {pause left µs}.
_PAUSE_IP: Final = """
local ip = redis.call('HMGET', KEYS[1], 'tat', 'pause')
local pause = math.max(tonumber(ip[2]) or 0, now + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'pause', int(pause))
local keep = math.max(pause, tonumber(ip[1]) or 0) - now
redis.call('PEXPIRE', KEYS[1], math.ceil(keep / 1000) + 1000)
return {pause - now}
"""

#: An IP token on its own (Redis Cluster, where the IP key has its own slot).
#: KEYS: IP hash. ARGV: interval µs (0: only the pause), max wait µs (-1: none), now µs.
#: Returns {granted 0/1, wait µs}.
_RESERVE_IP: Final = """
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local ip = redis.call('HMGET', KEYS[1], 'tat', 'pause')
local pause = tonumber(ip[2]) or 0
local start = math.max(now, pause)
if interval > 0 then start = math.max(start, tonumber(ip[1]) or 0) end
local wait = start - now
if max_wait >= 0 and wait > max_wait then return {0, wait} end
if interval > 0 then
  redis.call('HSET', KEYS[1], 'tat', int(start + interval))
  redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(start + interval, pause) - now) / 1000) + 1000)
end
return {1, wait}
"""


def _script(body: str) -> str:
    text = _PRELUDE + body
    for name, value in (
        ("$STEP", DECAY_STEP),
        ("$EVERY", int(DECAY_EVERY * _US)),
        ("$WIDEN", WIDEN),
        ("$SEED", MARGIN_SEED),
    ):
        text = text.replace(name, repr(value))
    return text


class _Script:
    """A Lua script and its SHA1, run with EVALSHA (loaded on a NOSCRIPT answer)."""

    __slots__ = ("name", "sha", "text")

    def __init__(self, name: str, body: str) -> None:
        self.name = name
        self.text = _script(body)
        self.sha = hashlib.sha1(self.text.encode(), usedforsecurity=False).hexdigest()


RESERVE: Final = _Script("reserve", _RESERVE)
THROTTLE: Final = _Script("throttle", _THROTTLE)
PAUSE_IP: Final = _Script("pause_ip", _PAUSE_IP)
RESERVE_IP: Final = _Script("reserve_ip", _RESERVE_IP)


# -- naming ------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """
    ``url`` without its secrets: the password (or a bare user-info token) and any query
    parameter that looks like a password, key or token become ``***``.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user, colon, _ = userinfo.partition(":")
            netloc = f"{user}:***@{host}" if colon else f"***@{host}"
        query = urlencode(
            [
                (name, "***" if any(word in name.lower() for word in _SECRET_PARAMS) else value)
                for name, value in parse_qsl(parts.query, keep_blank_values=True)
            ],
            safe="*",
        )
        if "://" not in url:
            return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
        # urlunsplit would drop the empty host of unix:///path.
        return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    except ValueError:
        return "<a Redis URL that could not be parsed>"


def _tag(uid: str) -> str:
    """A UID as a hash tag: plain digits as they are, anything else hashed."""
    if _PLAIN_UID.fullmatch(uid):
        return uid
    return "h" + hashlib.sha256(uid.encode()).hexdigest()[:24]


def lane_keys(prefix: str, egress: str, uid: str, endpoint: Endpoint) -> tuple[str, str]:
    """The Redis keys of a lane: its hash and its sliding log, in one Cluster slot."""
    tag = f"ip:{egress}" if endpoint.scope == "ip" or uid == ANY_UID else _tag(uid)
    key = f"{prefix}:{{{tag}}}:{endpoint.name}"
    return key, key + ":log"


def ip_key(prefix: str, egress: str) -> str:
    """The Redis key of an egress IP's budget and pause."""
    return f"{prefix}:{{ip:{egress}}}"


# -- statistics --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RedisSchedulerStatistics(SchedulerStatistics):
    """
    A snapshot of a `RedisRateLimitScheduler`, as this process sees it.

    Lane margins and pauses are the shared ones as of the lane's last Redis answer;
    counts (``dispatched``, ``throttled``, ``ip_last_minute``) are this process's own.
    """

    #: The Redis server, password masked.
    backend: str
    #: Calls to Redis so far (each a round trip).
    round_trips: int
    #: Redis calls that failed.
    backend_errors: int
    #: Whether the local fallback paces new requests now (Redis is down).
    fallback_active: bool
    #: Requests sent through the local fallback so far.
    fallback_dispatched: int
    #: Slots given up because their caller woke too late for them (a busy host).
    missed_slots: int = 0


@attrs.frozen(kw_only=True)
class _Grant:
    """What the backend answered to a reservation."""

    granted: bool
    #: Seconds from the answer until the slot.
    wait: float
    #: The margin now in force on the lane (shared, decayed).
    margin: float
    #: Seconds the lane stays paused after a 429 (0 when not paused).
    paused_for: float
    #: Where the slot lies on this process's clock, asked again when the caller wakes;
    #: ``None`` when the wait counts from the answer.
    placed: _Placement | None = None


class _Backend(Protocol):
    """Where slots come from: Redis in production, a fake in tests of the local logic."""

    described: str
    round_trips: int

    async def reserve(
        self, lane: _Lane, *, margin: float, max_wait: float | None, hold: float
    ) -> _Grant: ...

    async def throttle(
        self, lane: _Lane, *, margin: float, max_margin: float, pause: float, storm: bool
    ) -> tuple[float, float]: ...

    async def pause_ip(self, duration: float) -> None: ...

    async def aclose(self) -> None: ...


def _us(seconds: float) -> int:
    return math.ceil(seconds * _US)


class _Offset:
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


class _Placement:
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

    def __init__(self, offset: _Offset, slot: float, *, earliest: float, latest: float) -> None:
        self._offset = offset
        #: The slot in Redis time, in seconds.
        self.slot = slot
        self.earliest = earliest
        self.latest = latest

    def __repr__(self) -> str:
        return f"<_Placement due={self.due()!r} in [{self.earliest!r}, {self.latest!r}]>"

    def due(self) -> float:
        """The slot on the loop's clock, as the current estimate places it."""
        booked = self._offset.local(self.slot)
        return self.latest if booked is None else min(self.latest, max(self.earliest, booked))


class _RedisBackend:
    """Runs the scripts against one Redis (or Redis Cluster) client."""

    __slots__ = (
        "_client",
        "_errors",
        "_ip_interval",
        "_ip_key",
        "_loaded",
        "_loading",
        "_no_script",
        "_offset",
        "_owned",
        "_password",
        "cluster",
        "described",
        "round_trips",
    )

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        cluster: bool,
        owned: bool,
        described: str,
        password: str | None,
        ip_key: str,
        ip_budget: IPBudget | None,
    ) -> None:
        from redis.exceptions import NoScriptError, RedisError  # noqa: PLC0415

        self._client = client
        self.cluster = cluster
        self._owned = owned
        self.described = described
        self._password = password
        self._ip_key = ip_key
        self._ip_interval = (
            0
            if ip_budget is None
            else _us(max(1 / ip_budget.rate, ip_budget.window / ip_budget.limit))
        )
        self._no_script: type[Exception] = NoScriptError
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self.round_trips = 0
        self._offset = _Offset()
        #: Scripts are loaded once, before the first call, not by every lane that
        #: would otherwise get NOSCRIPT at start-up.
        self._loaded = False
        self._loading = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<_RedisBackend {self.described} cluster={self.cluster}>"

    def _detail(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        return text

    async def run(self, script: _Script, keys: Sequence[str], args: Sequence[object]) -> list[int]:
        """Run ``script`` once (EVALSHA; on NOSCRIPT load it and run again)."""
        reply, _ = await self.call(script, keys, args)
        return reply

    async def call(
        self, script: _Script, keys: Sequence[str], args: Sequence[object]
    ) -> tuple[list[int], float]:
        """
        Run ``script`` once; returns its reply and the loop time its EVALSHA was sent.

        The script ran after that instant: loading the scripts first (the first call of
        a process, or after NOSCRIPT) happens before it, so a round trip measured from
        it holds the script's own call only.
        """
        client: Any = self._client
        loop = asyncio.get_running_loop()
        try:
            if not self._loaded:
                await self._load(client)
            self.round_trips += 1
            try:
                sent = loop.time()
                reply = await client.evalsha(script.sha, len(keys), *keys, *args)
            except self._no_script:
                self.round_trips += 2
                await client.script_load(script.text)
                sent = loop.time()
                reply = await client.evalsha(script.sha, len(keys), *keys, *args)
        except self._errors as exc:
            raise RateLimitBackendError(self.described, self._detail(exc)) from exc
        return [int(value) for value in reply], sent

    async def _load(self, client: Any) -> None:
        async with self._loading:
            if self._loaded:
                return
            for script in (RESERVE, THROTTLE, PAUSE_IP, RESERVE_IP):
                self.round_trips += 1
                await client.script_load(script.text)
            self._loaded = True

    async def reserve(
        self,
        lane: _Lane,
        *,
        margin: float,
        max_wait: float | None,
        hold: float,
        now_us: int | None = None,
    ) -> _Grant:
        """
        Reserve the lane's next slot. ``now_us`` is the scripts' testing hook.

        Raises:
            RateLimitBackendError: Redis failed; nothing was reserved for certain.
        """
        endpoint = lane.endpoint
        max_wait_us = -1 if max_wait is None else _us(max_wait)
        now = "" if now_us is None else str(now_us)
        keys = [lane.key, lane.log_key]
        if self.cluster:
            if self._ip_interval:
                ip_granted, ip_wait = await self.run(
                    RESERVE_IP, [self._ip_key], [self._ip_interval, max_wait_us, now]
                )
                if not ip_granted:
                    return _Grant(granted=False, wait=ip_wait / _US, margin=margin, paused_for=0.0)
                hold = max(hold, ip_wait / _US)
            ip_interval = 0
        else:
            keys.append(self._ip_key)
            ip_interval = self._ip_interval
        args = [
            _us(endpoint.window),
            endpoint.rate,
            lane.policy.value,
            repr(margin),
            max_wait_us,
            _us(hold),
            ip_interval,
            now,
        ]
        reply, sent = await self.call(RESERVE, keys, args)
        received = asyncio.get_running_loop().time()
        granted, wait_us, margin_ppm, paused, redis_now = reply
        wait = wait_us / _US
        placed = None
        if now_us is None and not self.cluster:
            # The slot is at Redis time redis_now + wait. Counted from the answer, a slow
            # answer (a busy loop, a new connection) would make the send late by as
            # much, and a later slot of another process then lands closer to it. On the
            # calibrated clock the slot keeps its booked time, bounded by what the
            # answer proves: the script ran between sending and receiving.
            self._offset.sample(sent, received, redis_now / _US)
            placed = _Placement(
                self._offset,
                redis_now / _US + wait,
                earliest=sent + wait,
                latest=received + wait,
            )
            wait = placed.due() - received
        return _Grant(
            granted=bool(granted),
            wait=wait,
            margin=margin_ppm / _US,
            paused_for=paused / _US,
            placed=placed,
        )

    async def throttle(
        self,
        lane: _Lane,
        *,
        margin: float,
        max_margin: float,
        pause: float,
        storm: bool,
        now_us: int | None = None,
    ) -> tuple[float, float]:
        """
        Record a 429 on the lane for every process: returns (raised margin, pause left).

        Raises:
            RateLimitBackendError: Redis failed.
        """
        args = [
            repr(margin),
            repr(max_margin),
            _us(pause),
            "1" if storm else "0",
            _us(lane.endpoint.window),
            "" if now_us is None else str(now_us),
        ]
        raised_ppm, paused = await self.run(THROTTLE, [lane.key], args)
        return raised_ppm / _US, paused / _US

    async def pause_ip(self, duration: float, *, now_us: int | None = None) -> None:
        """
        Pause every lane behind this egress IP, in every process.

        Raises:
            RateLimitBackendError: Redis failed.
        """
        now = "" if now_us is None else str(now_us)
        await self.run(PAUSE_IP, [self._ip_key], [_us(duration), now])

    async def aclose(self) -> None:
        """Close the client if the scheduler made it."""
        if self._owned:
            client: Any = self._client
            await client.aclose()


# -- lanes -------------------------------------------------------------------------------


class _Lane:
    """This process's side of one (UID, endpoint) lane: its FIFO and its counters."""

    __slots__ = (
        "delays",
        "dispatched",
        "done",
        "endpoint",
        "fallback_pending",
        "hold_until",
        "holder",
        "in_flight",
        "key",
        "last_used",
        "log_key",
        "margin",
        "paused_until",
        "policy",
        "queued",
        "settled",
        "shared_until",
        "throttled",
        "uid",
        "waiters",
    )

    def __init__(
        self, uid: str, endpoint: Endpoint, policy: Policy, margin: float, keys: tuple[str, str]
    ) -> None:
        self.uid = uid
        self.endpoint = endpoint
        self.policy = policy
        self.key, self.log_key = keys
        #: Someone holds the lane's turn: it reserves, waits for its slot or stamps it.
        self.holder = False
        #: Callers waiting for the turn, oldest first (a retry goes first). Cancelled
        #: waiters stay until they reach the head.
        self.waiters: deque[Waiter] = deque()
        self.queued = 0
        self.in_flight = 0
        self.dispatched = 0
        self.throttled = 0
        #: The shared margin and pause as of the last answer from Redis.
        self.margin = margin
        self.paused_until = -math.inf
        #: No Redis slot before this loop time (after sending through the fallback).
        self.hold_until = -math.inf
        #: No local send before this loop time (a window after the last Redis slot).
        self.shared_until = -math.inf
        #: Requests of this lane inside the fallback.
        self.fallback_pending = 0
        self.last_used = -math.inf
        self.delays: DelayLog | None = None
        #: When this process's last N dispatches on the lane completed (``inf`` while in
        #: flight), oldest first.
        self.done: list[float] = []
        #: Resolved at the next completion, for a caller waiting for one.
        self.settled: asyncio.Future[None] | None = None

    def local_ready(self) -> float:
        """No slot before this: W after this process's dispatch N before completed."""
        return next_slot(
            self.done, limit=self.endpoint.rate, period=self.endpoint.window, now=-math.inf
        )

    def stamp(self) -> int:
        """Record a dispatch; returns its sequence number."""
        seq = self.dispatched
        self.dispatched = seq + 1
        self.in_flight += 1
        self.done.append(math.inf)
        if len(self.done) > self.endpoint.rate:
            del self.done[0]
        return seq

    def settle(self, seq: int, now: float) -> None:
        """Record that dispatch ``seq`` completed (answered, failed or abandoned)."""
        self.in_flight -= 1
        mark_completed(self.done, self.dispatched, seq, now)
        if self.settled is not None and not self.settled.done():
            self.settled.set_result(None)
        self.settled = None

    def __repr__(self) -> str:
        return (
            f"<_Lane {self.uid}/{self.endpoint.name} {self.policy.value} "
            f"queued={self.queued} in_flight={self.in_flight} dispatched={self.dispatched}>"
        )

    def idle(self, now: float) -> bool:
        return (
            not self.holder
            and self.queued == 0
            and self.in_flight == 0
            and self.fallback_pending == 0
            and self.paused_until <= now
            and self.hold_until <= now
            and self.last_used + SWEEP_EVERY <= now
        )

    def statistics(self, now: float) -> LaneStatistics:
        return LaneStatistics(
            uid=self.uid,
            endpoint=self.endpoint.name,
            policy=self.policy,
            queued=self.queued,
            in_flight=self.in_flight,
            dispatched=self.dispatched,
            throttled=self.throttled,
            margin=self.margin,
            interval=self.endpoint.window / self.endpoint.rate * (1 + self.margin),
            paused_until=self.paused_until if self.paused_until > now else None,
            jitter=recent_jitter(self.delays, now),
        )


async def _answered_n_back(loop: asyncio.AbstractEventLoop, lane: _Lane) -> None:
    """Wait until this process's dispatch N back on the lane has completed."""
    while lane.local_ready() == math.inf:
        if lane.settled is None:
            lane.settled = loop.create_future()
        await asyncio.shield(lane.settled)


def _note_grant(lane: _Lane, grant: _Grant, answered: float) -> None:
    """Keep the shared margin and pause a grant reports."""
    lane.margin = grant.margin
    if grant.paused_for:
        # Redis placed this slot after the pause; on the calibrated clock the slot may
        # come a little before the pause's end counted from here.
        until = answered + min(grant.paused_for, grant.wait)
        lane.paused_until = max(lane.paused_until, until)


async def _sleep_until_slot(
    loop: asyncio.AbstractEventLoop, grant: _Grant, answered: float
) -> float:
    """Sleep until the granted slot; returns how many seconds after it this caller woke."""
    due = answered + grant.wait
    while (delay := due - loop.time()) > 0:
        await asyncio.sleep(delay)
        if grant.placed is not None:
            # A better estimate of Redis time may have come in meanwhile.
            due = grant.placed.due()
    return loop.time() - due


def _check_grant(lane: _Lane, grant: _Grant, waited: float, max_wait: float | None) -> None:
    """Raise `RateLimitWaitTooLongError` if Redis refused the slot for ``max_wait``."""
    if not grant.granted:
        assert max_wait is not None  # noqa: S101 - only a limit refuses
        raise RateLimitWaitTooLongError(lane.endpoint.path, lane.uid, waited + grant.wait, max_wait)


def _describe(client: Any, *, cluster: bool) -> tuple[str, str | None]:
    """A borrowed client's address without credentials, and its password."""
    if cluster:
        nodes = getattr(client, "startup_nodes", None) or []
        first = nodes[0] if nodes else None
        where = f"{first.host}:{first.port}" if first is not None else "?"
        return f"redis-cluster://{where}", None
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    password = kwargs.get("password")
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}", password
    host, port, db = kwargs.get("host", "?"), kwargs.get("port", 6379), kwargs.get("db", 0)
    return f"redis://{host}:{port}/{db}", password


class RedisRateLimitScheduler:
    """
    Keeps every request inside its (UID, endpoint) limit across processes and hosts.

    The same API as `bitget_keys.limits.RateLimitScheduler` (so it is a
    `bitget_keys.Scheduler` for `bitget_keys.Client`), with the budgets kept in Redis.
    One scheduler per event loop and process; every process sharing UIDs points at the
    same Redis with the same ``prefix``. See the module docstring for the design.

    Args:
        redis: a ``redis://``, ``rediss://`` or ``unix://`` URL (the scheduler makes and
            closes its client, with ``timeout``), or a ``redis.asyncio.Redis`` /
            ``RedisCluster`` client, which is borrowed and never closed (its own
            timeouts and retries apply; keep them short).
        prefix: the first part of every key; processes sharing budgets use the same.
        egress: the name of this process's egress IP, for the IP budget.
        cluster: treat ``redis`` (a URL) as a Redis Cluster.
        margin, max_margin, policies, ip_budget, ip_cap, max_in_flight, retries,
            backoff, lockout: as for `RateLimitScheduler`.
        fallback: ``None`` to fail closed while Redis is down (the default), or the
            fraction (0 < f ≤ 1) of every rate a local scheduler keeps to meanwhile.
        recheck: seconds after a Redis failure before Redis is tried again.
        timeout: connect and reply timeout in seconds of a client made from a URL.

    Raises:
        ConfigurationError: a setting is out of range, or redis-py is not installed
            (``pip install 'bitget-keys[redis]'``).
    """

    __slots__ = (
        "_backend",
        "_backoff",
        "_closed",
        "_detours",
        "_down_since",
        "_down_until",
        "_egress",
        "_errors",
        "_fallback",
        "_fallback_dispatched",
        "_fallback_fraction",
        "_fallback_margin",
        "_in_flight",
        "_ip_cap",
        "_lanes",
        "_last_detail",
        "_lockout",
        "_loop",
        "_margin",
        "_max_in_flight",
        "_max_margin",
        "_missed",
        "_paused_until",
        "_permits",
        "_policies",
        "_prefix",
        "_recheck",
        "_retries",
        "_sent",
        "_storms",
        "_sweep_at",
        "_tasks",
        "_window_timer",
    )

    def __init__(
        self,
        redis: str | Redis | RedisCluster,
        *,
        prefix: str = "bitget-keys",
        egress: str = "default",
        cluster: bool = False,
        margin: float = 0.05,
        max_margin: float = 0.5,
        policies: Mapping[str, Policy] | None = None,
        ip_budget: IPBudget | None = DEFAULT_IP_BUDGET,
        ip_cap: int = 6000,
        max_in_flight: int = 100,
        retries: int = 5,
        backoff: float = 1.0,
        lockout: float = 300.0,
        fallback: float | None = None,
        recheck: float = 2.0,
        timeout: float = 0.5,
    ) -> None:
        # The in-memory scheduler checks the settings both share.
        RateLimitScheduler(
            margin=margin,
            max_margin=max_margin,
            policies=policies,
            ip_budget=ip_budget,
            ip_cap=ip_cap,
            max_in_flight=max_in_flight,
            retries=retries,
            backoff=backoff,
            lockout=lockout,
        )
        problems = [
            (not _SAFE_NAME.fullmatch(egress), f"egress must match {_SAFE_NAME.pattern}"),
            (
                not prefix or "{" in prefix or "}" in prefix,
                "prefix must be non-empty and hold no braces",
            ),
            (
                fallback is not None and not 0 < fallback <= 1,
                f"fallback must be a fraction in (0, 1] or None (got {fallback})",
            ),
            (recheck <= 0, f"recheck must be positive (got {recheck})"),
            (timeout <= 0, f"timeout must be positive (got {timeout})"),
        ]
        for failed, problem in problems:
            if failed:
                raise ConfigurationError(f"RedisRateLimitScheduler: {problem}")
        self._prefix = prefix
        self._egress = egress
        self._margin = margin
        self._max_margin = max_margin
        self._policies = dict(policies or {})
        self._ip_cap = ip_cap
        self._max_in_flight = max_in_flight
        self._retries = retries
        self._backoff = backoff
        self._lockout = lockout
        self._recheck = recheck
        self._backend: _Backend = self._connect(
            redis, cluster=cluster, timeout=timeout, ip_budget=ip_budget
        )
        self._fallback: RateLimitScheduler | None = None
        self._fallback_fraction = fallback
        self._fallback_margin = margin
        if fallback is not None:
            self._fallback_margin = (1 + margin) / fallback - 1
            self._fallback = RateLimitScheduler(
                margin=self._fallback_margin,
                max_margin=(1 + max_margin) / fallback - 1,
                policies=policies,
                ip_budget=None
                if ip_budget is None
                else IPBudget(
                    rate=ip_budget.rate * fallback,
                    limit=max(1, int(ip_budget.limit * fallback)),
                    window=ip_budget.window,
                ),
                ip_cap=ip_cap,
                max_in_flight=max_in_flight,
                retries=retries,
                backoff=backoff,
                lockout=lockout,
            )
        self._fallback_dispatched = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._permits = asyncio.Semaphore(max_in_flight)
        self._in_flight = 0
        #: This process's recent dispatches, as many as the IP-lockout rule needs.
        self._sent: deque[float] = deque(maxlen=ip_cap + 1)
        self._storms = StormWatch(backoff * (1 + BACKOFF_JITTER))
        self._paused_until = -math.inf
        self._sweep_at = -math.inf
        #: While Redis is down: since when, until when it is not tried, and why.
        self._down_since: float | None = None
        self._down_until = -math.inf
        self._last_detail = ""
        self._errors = 0
        self._missed = 0
        self._tasks: set[asyncio.Task[None]] = set()
        #: Requests inside the fallback, and the call that ends the outage window.
        self._detours: dict[_Detour, None] = {}
        self._window_timer: asyncio.TimerHandle | None = None
        self._closed = False

    def _connect(
        self,
        redis: str | Redis | RedisCluster,
        *,
        cluster: bool,
        timeout: float,
        ip_budget: IPBudget | None,
    ) -> _RedisBackend:
        try:
            from redis.asyncio import Redis  # noqa: PLC0415
            from redis.asyncio.cluster import RedisCluster  # noqa: PLC0415
            from redis.asyncio.retry import Retry  # noqa: PLC0415
            from redis.backoff import NoBackoff  # noqa: PLC0415
        except ImportError as exc:
            msg = "the Redis rate-limit backend needs redis-py: pip install 'bitget-keys[redis]'"
            raise ConfigurationError(msg) from exc
        client: Redis | RedisCluster
        if isinstance(redis, str):
            described = mask_url(redis)
            password = urlsplit(redis).password
            common: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
            try:
                if cluster:
                    client = RedisCluster.from_url(redis, **common)
                else:
                    # One quick retry on a fresh connection (a pooled one may be stale);
                    # redis-py's default of ten with backoff would hold callers for
                    # seconds before failing closed.
                    client = Redis.from_url(redis, retry=Retry(NoBackoff(), 1), **common)
            except ValueError as exc:
                msg = f"RedisRateLimitScheduler: bad Redis URL {described}: {exc}"
                raise ConfigurationError(msg) from exc
            owned = True
        else:
            client = redis
            cluster = isinstance(redis, RedisCluster)
            described, password = _describe(redis, cluster=cluster)
            owned = False
        return _RedisBackend(
            client,
            cluster=cluster,
            owned=owned,
            described=described,
            password=password,
            ip_key=ip_key(self._prefix, self._egress),
            ip_budget=ip_budget,
        )

    def __repr__(self) -> str:
        busy = sum(1 for lane in self._lanes.values() if lane.queued or lane.holder)
        state = "closed" if self._closed else ("down" if self._down_since is not None else "up")
        return (
            f"<RedisRateLimitScheduler {self._backend.described} {state} "
            f"lanes={len(self._lanes)} busy={busy} "
            f"in_flight={self._in_flight}/{self._max_in_flight} margin={self._margin}>"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the Redis client if the scheduler made it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._window_timer is not None:
            self._window_timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._backend.aclose()

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
        Reserve the lane's next slot in Redis, wait for it, then call ``send()``.

        Requests of one lane in this process go strictly in the order of their calls;
        across processes, in the order Redis granted their slots. If ``send()`` raises
        `RateLimitExceededError`, the lane pauses for every process and the request
        goes again first in its lane here, up to ``retries`` times.

        Args:
            uid: the UID that owns the calling API key (ignored for IP-scoped endpoints).
            endpoint: what is called; its rate, window and scope set the limit.
            send: sends the request once; called at the instant the slot is stamped.
            max_wait: the longest this call may wait for a slot, each attempt alike.

        Raises:
            RateLimitBackendError: Redis failed (and no fallback is configured); the
                request was not sent.
            RateLimitWaitTooLongError: the slot would come, or did not come, within
                ``max_wait`` seconds; nothing was sent for this attempt.
            RateLimitExceededError: still throttled after ``retries`` retries, or a
                retry would wait longer than ``max_wait``.
            ClientStateError: the scheduler is closed or bound to another event loop.
        """
        loop = self._bind()
        lane = self._lane(uid, endpoint, loop.time())
        attempt = 0
        while True:
            if self._local(loop.time()):
                try:
                    return await self._run_fallback(loop, lane, send, max_wait)
                except _Rerouted:
                    continue  # Redis is to be tried again; this request was not sent.
            try:
                seq = await self._acquire(loop, lane, max_wait, retry=attempt > 0)
            except RateLimitBackendError:
                if self._fallback is None:
                    raise
                continue  # Redis is marked down: the next round goes local.
            try:
                return await send()
            except RateLimitExceededError:
                paused_for = await self._throttle(loop, lane)
                attempt += 1
                if attempt > self._retries or (max_wait is not None and paused_for > max_wait):
                    raise
            finally:
                lane.settle(seq, loop.time())
                self._in_flight -= 1
                self._permits.release()

    def pause_all(self, duration: float) -> None:
        """
        Send nothing on any lane for ``duration`` seconds from now (IP-level throttle).

        The pause takes effect here at once and is written to the egress IP's key in
        Redis for every process behind that IP (in Redis Cluster, only when the IP
        budget is on); a failure to write it is logged.

        Raises:
            ClientStateError: the scheduler is closed or bound to another event loop.
        """
        loop = self._bind()
        self._paused_until = max(self._paused_until, loop.time() + duration)
        task = loop.create_task(self._share_pause(duration))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def observe(self, uid: str, endpoint: Endpoint, *, sent_ms: int, request_time_ms: int) -> None:
        """
        Record one response's ``requestTime`` against the wall time its request was sent.

        As `RateLimitScheduler.observe`: the spread of the difference is each lane's
        observed jitter in `statistics`.

        Raises:
            ClientStateError: the scheduler is closed or bound to another event loop.
        """
        now = self._bind().time()
        lane = self._lanes.get(lane_key(uid, endpoint))
        if lane is None:
            return
        lane.delays = record_delay(lane.delays, now, float(request_time_ms - sent_ms))

    def statistics(self) -> RedisSchedulerStatistics:
        """A frozen snapshot of this process's lanes and of what it knows of the shared state."""
        now = self._loop.time() if self._loop is not None else 0.0
        lanes = tuple(lane.statistics(now) for lane in self._lanes.values())
        return RedisSchedulerStatistics(
            lanes=lanes,
            in_flight=self._in_flight,
            max_in_flight=self._max_in_flight,
            ip_last_minute=sum(1 for at in self._sent if at > now - IP_CAP_WINDOW),
            paused_until=self._paused_until if self._paused_until > now else None,
            backend=self._backend.described,
            round_trips=self._backend.round_trips,
            backend_errors=self._errors,
            fallback_active=self._local(now),
            fallback_dispatched=self._fallback_dispatched,
            missed_slots=self._missed,
        )

    # -- lanes -----------------------------------------------------------------------

    def _bind(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            msg = "this RedisRateLimitScheduler is closed"
            raise ClientStateError(msg)
        self._loop = bound_loop(self._loop, "RedisRateLimitScheduler")
        return self._loop

    def _lane(self, uid: str, endpoint: Endpoint, now: float) -> _Lane:
        if now >= self._sweep_at:
            self._lanes = {key: lane for key, lane in self._lanes.items() if not lane.idle(now)}
            self._sweep_at = now + SWEEP_EVERY
        key = lane_key(uid, endpoint)
        lane = self._lanes.get(key)
        if lane is None:
            policy = self._policies.get(endpoint.name, Policy.SPACING)
            keys = lane_keys(self._prefix, self._egress, key[0], endpoint)
            lane = self._lanes[key] = _Lane(key[0], endpoint, policy, self._margin, keys)
        return lane

    # -- the turn: one reservation per lane and process at a time ----------------------

    async def _take_turn(
        self, loop: asyncio.AbstractEventLoop, lane: _Lane, *, first: bool
    ) -> None:
        if not lane.holder:
            # Whoever gives the turn up hands it to a live waiter, so a free turn means
            # nobody waits.
            lane.holder = True
            return
        waiter = Waiter(loop)
        if first:
            lane.waiters.appendleft(waiter)
        else:
            lane.waiters.append(waiter)
        lane.queued += 1
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # The turn came, and the caller left before using it: pass it on.
                self._pass_turn(lane)
            else:
                waiter.cancel()
                lane.queued -= 1
            raise

    @staticmethod
    def _pass_turn(lane: _Lane) -> None:
        waiters = lane.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                lane.queued -= 1
                waiter.grant()
                return
        lane.holder = False

    async def _acquire(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: _Lane,
        max_wait: float | None,
        *,
        retry: bool,
    ) -> int:
        """
        Wait for the turn and a permit, reserve a slot in Redis, wait for it, stamp it.

        Returns the dispatch's sequence number, holding an in-flight permit; on any
        exception holds nothing.
        """
        started = loop.time()
        deadline = None if max_wait is None else started + max_wait
        self._check_backend(lane, started)
        missed = 0
        while True:
            turn = permit = False
            try:
                try:
                    async with asyncio.timeout_at(deadline):
                        await self._take_turn(loop, lane, first=retry)
                        turn = True
                        await self._permits.acquire()
                        permit = True
                        await _answered_n_back(loop, lane)
                except TimeoutError:
                    assert max_wait is not None  # noqa: S101 - only a deadline times out
                    estimate = max_wait + lane.queued * lane.endpoint.window / lane.endpoint.rate
                    raise RateLimitWaitTooLongError(
                        lane.endpoint.path, lane.uid, estimate, max_wait
                    ) from None
                now = loop.time()
                # Waiting callers find out about an outage without calling Redis each.
                self._check_backend(lane, now)
                hold = max(self._paused_until, lane.hold_until, lane.local_ready(), now) - now
                remaining = None if deadline is None else max(0.0, deadline - now)
                grant = await self._reserve(loop, lane, remaining, hold)
                answered = loop.time()
                _note_grant(lane, grant, answered)
                _check_grant(lane, grant, answered - started, max_wait)
                late = await _sleep_until_slot(loop, grant, answered)
                now = loop.time()
                paused = max(lane.paused_until, self._paused_until) > now + _LATE
                if not paused and (missed == _MAX_MISSED or not self._too_late(lane, late)):
                    break
                # A 429 on this lane (or an IP pause) came while this caller waited: its
                # slot falls into the pause, so it is dropped, and the caller reserves
                # again behind the pause, first in line after any retry. Or the caller
                # woke too late for its slot (see `_too_late`), and books again, first
                # in line.
                if not paused:
                    missed += 1
            except BaseException:
                if permit:
                    self._permits.release()
                if turn:
                    self._pass_turn(lane)
                raise
            self._permits.release()
            self._pass_turn(lane)
            retry = True
        # Stamped here, in the caller's task, just before it sends: the next caller of
        # this lane may reserve now.
        seq = lane.stamp()
        lane.last_used = now
        lane.shared_until = now + lane.endpoint.window * (1 + lane.margin)
        self._in_flight += 1
        self._sent.append(now)
        self._pass_turn(lane)
        return seq

    def _too_late(self, lane: _Lane, late: float) -> bool:
        """
        Whether a caller that woke ``late`` seconds after its slot must give it up.

        Sent now, it would land closer than the margin allows to the slot N after it,
        which another process may send on time. The slot is given up (never given back,
        so nobody sends in it) once the caller is later than half the margin; the other
        half is for the way to Bitget.
        """
        if late <= lane.margin * lane.endpoint.window * _LATE_SHARE:
            return False
        self._missed += 1
        _log.debug(
            "%s %s: woke %.0f ms after its slot; booking again",
            lane.uid,
            lane.endpoint.name,
            late * 1000,
        )
        return True

    async def _reserve(
        self, loop: asyncio.AbstractEventLoop, lane: _Lane, max_wait: float | None, hold: float
    ) -> _Grant:
        try:
            grant = await self._backend.reserve(
                lane, margin=self._margin, max_wait=max_wait, hold=hold
            )
        except RateLimitBackendError as exc:
            self._mark_down(loop.time(), exc.detail)
            raise RateLimitBackendError(
                exc.backend, exc.detail, lane.endpoint.path, lane.uid
            ) from exc.__cause__
        if self._down_since is not None:
            _log.warning(
                "rate-limit backend %s is back after %.1f s; limits are shared again",
                self._backend.described,
                loop.time() - self._down_since,
            )
            self._down_since = None
        return grant

    async def _throttle(self, loop: asyncio.AbstractEventLoop, lane: _Lane) -> float:
        """Record a 429 for every process; returns how long the lane is paused."""
        now = loop.time()
        lane.throttled += 1
        storm = self._storms.seen(now, (lane.uid, lane.endpoint.name))
        pause = self._backoff * (1 + random.uniform(0, BACKOFF_JITTER))  # noqa: S311
        try:
            raised, paused_for = await self._backend.throttle(
                lane, margin=self._margin, max_margin=self._max_margin, pause=pause, storm=storm
            )
        except RateLimitBackendError as exc:
            # The 429 still pauses this process's lane; other processes will see their own.
            self._mark_down(loop.time(), exc.detail)
            raised, paused_for = lane.margin, pause
            lane.hold_until = max(lane.hold_until, now + pause)
        lane.margin = raised
        lane.paused_until = loop.time() + paused_for
        # Only our own count proves the IP cap was breached.
        if next_slot(self._sent, limit=self._ip_cap + 1, period=IP_CAP_WINDOW, now=now) > now:
            self.pause_all(self._lockout)
        return paused_for

    async def _share_pause(self, duration: float) -> None:
        try:
            await self._backend.pause_ip(duration)
        except RateLimitBackendError as exc:
            _log.warning("could not share a pause of every lane through Redis: %s", exc.detail)

    # -- Redis down ------------------------------------------------------------------

    def _local(self, now: float) -> bool:
        """Whether new requests go through the local fallback now."""
        return self._fallback is not None and now < self._down_until

    def _check_backend(self, lane: _Lane, now: float) -> None:
        """Fail at once while Redis is known to be down (until the next recheck)."""
        if now < self._down_until:
            left = self._down_until - now
            raise RateLimitBackendError(
                self._backend.described,
                f"{self._last_detail}; not tried again for {left:.1f} s",
                lane.endpoint.path,
                lane.uid,
            )

    def _mark_down(self, now: float, detail: str) -> None:
        self._errors += 1
        self._last_detail = detail
        self._down_until = now + self._recheck
        if self._fallback is not None and self._loop is not None:
            if self._window_timer is not None:
                self._window_timer.cancel()
            self._window_timer = self._loop.call_at(self._down_until, self._close_window)
        if self._down_since is not None:
            _log.debug("rate-limit backend %s still down: %s", self._backend.described, detail)
            return
        self._down_since = now
        if self._fallback_fraction is None:
            _log.warning(
                "rate-limit backend %s failed (%s): no request is sent until it is back "
                "(retried every %.1f s)",
                self._backend.described,
                detail,
                self._recheck,
            )
        else:
            _log.warning(
                "rate-limit backend %s failed (%s): pacing locally at %.0f%% of the rates "
                "until it is back (retried every %.1f s)",
                self._backend.described,
                detail,
                100 * self._fallback_fraction,
                self._recheck,
            )

    async def _run_fallback(
        self,
        loop: asyncio.AbstractEventLoop,
        lane: _Lane,
        send: Callable[[], Awaitable[T]],
        max_wait: float | None,
    ) -> T:
        """
        Send through the local fallback while Redis is down.

        Raises:
            _Rerouted: Redis is to be tried again before this request was sent.
        """
        fallback = self._fallback
        assert fallback is not None  # noqa: S101 - only called with a fallback
        hold = lane.endpoint.window * (1 + self._margin)
        detour = _Detour()

        async def stamped() -> T:
            now = loop.time()
            if not self._local(now):
                # Redis is tried again from now on: no local send may follow a Redis slot.
                raise _Rerouted
            detour.sent = True
            # Back on Redis, this lane's next slot comes a window after this send.
            lane.hold_until = max(lane.hold_until, now + hold)
            lane.last_used = now
            self._fallback_dispatched += 1
            return await send()

        async def detour_run() -> T:
            # Nothing local within a window of this lane's last Redis slot: slots other
            # processes booked are unknown, but this process never crowds its own.
            if (delay := lane.shared_until - loop.time()) > 0:
                await asyncio.sleep(delay)
            return await fallback.run(lane.uid, lane.endpoint, stamped, max_wait=max_wait)

        # A task of its own, so that it can be taken out of the fallback's queue when the
        # outage window closes (it costs a task per request only while Redis is down).
        task = loop.create_task(detour_run())
        detour.task = task
        self._detours[detour] = None
        lane.fallback_pending += 1
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if detour.rerouted and current is not None and not current.cancelling():
                raise _Rerouted from None
            raise
        finally:
            lane.fallback_pending -= 1
            self._detours.pop(detour, None)

    def _close_window(self) -> None:
        """The outage window ended: what still waits in the fallback goes back to Redis."""
        self._window_timer = None
        for detour in list(self._detours):
            if not detour.sent and detour.task is not None and not detour.task.done():
                detour.rerouted = True
                detour.task.cancel()


class _Rerouted(Exception):  # noqa: N818 - control flow, never leaves the scheduler
    """A request leaves the fallback unsent, to be tried through Redis again."""


class _Detour:
    """One request sent (or waiting to be sent) through the fallback."""

    __slots__ = ("rerouted", "sent", "task")

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None
        self.sent = False
        self.rerouted = False
