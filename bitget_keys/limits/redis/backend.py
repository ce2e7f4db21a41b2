"""
Where the Redis scheduler's slots come from: the `RateLimitBackend` protocol and Redis.

`RedisRateLimitScheduler` asks its backend for a lane's next slot (`reserve`), records a
429 for every process (`throttle`) and pauses an egress IP (`pause_ip`). `RedisBackend`
does so with the scripts of `bitget_keys.limits.redis.scripts` against one Redis (or
Redis Cluster) client, and places each slot on this process's loop clock (`Offset`,
`Placement`); tests and other stores pass their own backend as ``backend=``. Key
naming (`lane_keys`, `ip_key`) and URL masking (`mask_url`) live here too.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from bitget_keys._endpoints import Endpoint
from bitget_keys._secret import userinfo_masked
from bitget_keys.errors import ConfigurationError, RateLimitBackendError
from bitget_keys.limits.policy import ANY_UID, IPBudget, IPPolicy, Policy
from bitget_keys.limits.redis.clock import Offset, Placement
from bitget_keys.limits.redis.scripts import (
    COMPLETE,
    PAUSE_IP,
    RESERVE,
    RESERVE_IP,
    SCRIPTS,
    THROTTLE,
    US,
    Script,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = [
    "BackendLane",
    "Grant",
    "Offset",
    "Placement",
    "RateLimitBackend",
    "RedisBackend",
    "connect",
    "ip_key",
    "lane_keys",
    "mask_url",
]

_PLAIN_UID: Final = re.compile(r"[0-9]{1,32}")
#: Query parameters of a Redis URL whose value is masked.
_SECRET_PARAMS: Final = ("pass", "secret", "token", "key")


def mask_url(url: str) -> str:
    """
    ``url`` without its secrets: the password (or a bare user-info token) and any query
    parameter that looks like a password, key or token become ``***``.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        masked = userinfo_masked(url)
        if masked is not None and masked != url and "@" not in netloc:
            # The user-info did not parse as such (an unencoded '/', '?' or '#' in the
            # password): mask all of it, then the rest as usual.
            return mask_url(masked)
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


@attrs.frozen(kw_only=True)
class Grant:
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
    placed: Placement | None = None
    #: The dispatch's number in the lane's shared log, to report its completion with
    #: (`RateLimitBackend.complete`); ``None`` when the backend keeps no such log.
    seq: int | None = None
    #: Seconds from the answer within which the dispatch must be sent, or given up:
    #: after its lease a dispatch counts as completed for every process.
    lease: float = math.inf
    #: The lane's dispatch N back is still in flight: nothing was reserved, and ``wait``
    #: is the earliest the slot could come.
    blocked: bool = False
    #: The slot lies further ahead than the reservation's ``horizon``: nothing was
    #: reserved, and ``wait`` is when the slot would come.
    deferred: bool = False


class BackendLane(Protocol):
    """What a backend reads of a lane: its keys, its endpoint and its policy."""

    key: str
    log_key: str
    endpoint: Endpoint
    policy: Policy


class RateLimitBackend(Protocol):
    """
    Where slots come from: Redis in production, an in-process fake in tests.

    Every method raises `bitget_keys.errors.RateLimitBackendError` when the store
    failed; the scheduler then fails closed or falls back.
    """

    #: The store, credentials masked, for errors and statistics.
    described: str
    #: Calls to the store so far (each a round trip).
    round_trips: int

    async def reserve(
        self,
        lane: BackendLane,
        *,
        margin: float,
        max_wait: float | None,
        hold: float,
        horizon: float | None = None,
    ) -> Grant:
        """
        Reserve the lane's next slot, no earlier than ``hold`` seconds from now; with
        ``horizon``, only if the slot comes within that many seconds (else the grant is
        ``deferred`` and nothing is reserved).
        """
        ...

    async def complete(self, lane: BackendLane, seq: int, *, at: float) -> None:
        """
        Record that dispatch ``seq`` of the lane completed (or was given up unsent) at
        loop time ``at``, for every process.
        """
        ...

    async def throttle(
        self, lane: BackendLane, *, margin: float, max_margin: float, pause: float, storm: bool
    ) -> tuple[float, float]:
        """Record a 429 on the lane for every process: (raised margin, pause left)."""
        ...

    async def pause_ip(self, duration: float) -> None:
        """Pause every lane behind this egress IP, in every process."""
        ...

    async def aclose(self) -> None:
        """Release what the backend owns."""
        ...


def _us(seconds: float) -> int:
    return math.ceil(seconds * US)


class RedisBackend:
    """Runs the scripts against one Redis (or Redis Cluster) client."""

    __slots__ = (
        "_client",
        "_errors",
        "_ip_held",
        "_ip_interval",
        "_ip_key",
        "_ip_limit",
        "_ip_window",
        "_lease",
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
        lease: float = 30.0,
    ) -> None:
        from redis.exceptions import NoScriptError, RedisError  # noqa: PLC0415

        self._client = client
        self.cluster = cluster
        self._owned = owned
        self.described = described
        self._password = password
        self._ip_key = ip_key
        self._lease = _us(lease)
        #: The IP budget: spacing (`IPPolicy.EVEN`) or a rolling count (`IPPolicy.ROLLING`)
        #: of this scheduler's share; both 0 without a budget.
        self._ip_interval = self._ip_limit = self._ip_window = 0
        if ip_budget is not None:
            self._ip_window = _us(ip_budget.window)
            if ip_budget.policy is IPPolicy.ROLLING:
                self._ip_limit = ip_budget.effective_limit
            else:
                self._ip_interval = _us(
                    max(1 / ip_budget.effective_rate, ip_budget.window / ip_budget.effective_limit)
                )
        #: Redis Cluster: an IP slot taken for a lane whose reservation came back blocked,
        #: kept for its next try (on this loop's clock).
        self._ip_held: dict[str, float] = {}
        self._no_script: type[Exception] = NoScriptError
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError)
        self.round_trips = 0
        self._offset = Offset()
        #: Scripts are loaded once, before the first call, not by every lane that
        #: would otherwise get NOSCRIPT at start-up.
        self._loaded = False
        self._loading = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<RedisBackend {self.described} cluster={self.cluster}>"

    def _detail(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        return text

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[object]) -> list[int]:
        """Run ``script`` once (EVALSHA; on NOSCRIPT load it and run again)."""
        reply, _ = await self.call(script, keys, args)
        return reply

    async def call(
        self, script: Script, keys: Sequence[str], args: Sequence[object]
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
            for script in SCRIPTS:
                self.round_trips += 1
                await client.script_load(script.text)
            self._loaded = True

    async def reserve(
        self,
        lane: BackendLane,
        *,
        margin: float,
        max_wait: float | None,
        hold: float,
        horizon: float | None = None,
        now_us: int | None = None,
    ) -> Grant:
        """
        Reserve the lane's next slot (see `RateLimitBackend.reserve`). ``now_us`` is the
        scripts' testing hook.

        Raises:
            RateLimitBackendError: Redis failed; nothing was reserved for certain.
        """
        endpoint = lane.endpoint
        max_wait_us = -1 if max_wait is None else _us(max_wait)
        now = "" if now_us is None else str(now_us)
        keys = [lane.key, lane.log_key]
        ip_keys = [self._ip_key, self._ip_key + ":log", self._ip_key + ":slots"]
        ip_args = [self._ip_interval, self._ip_limit, self._ip_window]
        if self.cluster:
            if self._ip_interval or self._ip_limit:
                hold = await self._cluster_ip(
                    lane, keys=ip_keys, args=ip_args, max_wait_us=max_wait_us, hold=hold, now=now
                )
                if hold < 0:
                    return Grant(granted=False, wait=-hold, margin=margin, paused_for=0.0)
            ip_args = [0, 0, 0]
        else:
            keys += ip_keys
        args = [
            _us(endpoint.window),
            endpoint.rate,
            lane.policy.value,
            repr(margin),
            max_wait_us,
            _us(hold),
            self._lease,
            *ip_args,
            -1 if horizon is None else _us(horizon),
            now,
        ]
        reply, sent = await self.call(RESERVE, keys, args)
        received = asyncio.get_running_loop().time()
        granted, wait_us, margin_ppm, paused, redis_now, seq, lease_us = reply
        wait = wait_us / US
        placed = None
        if now_us is None and not self.cluster:
            # The slot is at Redis time redis_now + wait. Counted from the answer, a slow
            # answer (a busy loop, a new connection) would make the send late by as
            # much, and a later slot of another process then lands closer to it. On the
            # calibrated clock the slot keeps its booked time, bounded by what the
            # answer proves: the script ran between sending and receiving.
            self._offset.sample(sent, received, redis_now / US)
            placed = Placement(
                self._offset,
                redis_now / US + wait,
                earliest=sent + wait,
                latest=received + wait,
            )
            wait = placed.due() - received
        if granted == 1:
            self._ip_held.pop(lane.key, None)
        return Grant(
            granted=granted != 0,
            wait=wait,
            margin=margin_ppm / US,
            paused_for=paused / US,
            placed=placed,
            seq=seq if granted == 1 else None,
            # Send within the first half of the lease (the rest is for the way from
            # send() to the wire), counted from the call's send: never too long.
            lease=(lease_us - self._lease / 2) / US - (received - sent),
            blocked=granted == 2,
            deferred=granted == 3,
        )

    async def _cluster_ip(
        self,
        lane: BackendLane,
        *,
        keys: list[str],
        args: list[int],
        max_wait_us: int,
        hold: float,
        now: str,
    ) -> float:
        """
        Take an IP slot first (Redis Cluster): the hold it puts on the lane, or minus
        the wait when refused for ``max_wait``. A slot taken for a lane whose
        reservation came back blocked is kept for the lane's next try, not taken again.
        """
        loop = asyncio.get_running_loop()
        held = self._ip_held.get(lane.key)
        if held is None:
            ip_granted, ip_wait = await self.run(RESERVE_IP, keys, [*args, max_wait_us, now])
            if not ip_granted:
                return -ip_wait / US
            # Under Cluster waits count from the answer (nodes may keep other clocks).
            self._ip_held[lane.key] = loop.time() + ip_wait / US
            return max(hold, ip_wait / US)
        return max(hold, held - loop.time())

    async def complete(
        self, lane: BackendLane, seq: int, *, at: float, now_us: int | None = None
    ) -> None:
        """
        Record that dispatch ``seq`` of the lane completed at loop time ``at``.

        The script records the latest Redis time ``at`` can be on the calibrated clock
        (or the time it runs, when that is earlier or no estimate exists), so that
        the wait for the call itself does not hold the lane.

        Raises:
            RateLimitBackendError: Redis failed; the dispatch then counts as completed at
                the end of its lease.
        """
        keep_ms = math.ceil(lane.endpoint.window * 2 * 1000) + 1000
        latest = None if self.cluster else self._offset.latest(at)
        claimed = "" if latest is None else str(math.ceil(latest * US))
        now = "" if now_us is None else str(now_us)
        await self.run(COMPLETE, [lane.key, lane.log_key], [seq, keep_ms, claimed, now])

    async def throttle(
        self,
        lane: BackendLane,
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
        return raised_ppm / US, paused / US

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


def describe(client: Any, *, cluster: bool) -> tuple[str, str | None]:
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


def connect(
    redis: str | Redis | RedisCluster,
    *,
    cluster: bool,
    timeout: float,
    ip_budget: IPBudget | None,
    ip_key: str,
    lease: float = 30.0,
) -> RedisBackend:
    """
    The backend of a Redis URL (a client made here, closed with the backend) or client.

    Raises:
        ConfigurationError: redis-py is not installed, or the URL is malformed.
    """
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
        described, password = describe(redis, cluster=cluster)
        owned = False
    return RedisBackend(
        client,
        cluster=cluster,
        owned=owned,
        described=described,
        password=password,
        ip_key=ip_key,
        ip_budget=ip_budget,
        lease=lease,
    )
