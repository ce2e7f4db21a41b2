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

from bitget_keys.limits.redis.backend import (
    BackendLane,
    Grant,
    RateLimitBackend,
    RedisBackend,
    ip_key,
    lane_keys,
    mask_url,
)
from bitget_keys.limits.redis.booking import RedisLane
from bitget_keys.limits.redis.scheduler import RedisRateLimitScheduler, RedisSchedulerStatistics

__all__ = [
    "BackendLane",
    "Grant",
    "RateLimitBackend",
    "RedisBackend",
    "RedisLane",
    "RedisRateLimitScheduler",
    "RedisSchedulerStatistics",
    "ip_key",
    "lane_keys",
    "mask_url",
]
