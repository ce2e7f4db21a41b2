"""
`Emulator`: the emulated exchange served over HTTP on loopback, or in process.

Both paths run the same `Exchange.handle`, with the same fault injection: the HTTP
server for end-to-end tests through aiohttp, the in-process `EmulatorTransport` (a
`bitget_keys.Transport`) where sockets would only add CPU (large benchmarks).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from types import TracebackType
from typing import Final, Self, TypeVar

import attrs
import orjson
import yarl
from aiohttp import web
from multidict import CIMultiDict

from bitget_keys._endpoints import ENDPOINTS, Endpoint
from bitget_keys._transport import RawResponse
from bitget_keys.errors import ClientStateError, RateLimitExceededError, TransportError
from bitget_keys.testing._accounts import EmulatorAccount
from bitget_keys.testing._audit import Audit
from bitget_keys.testing._limits import Limits
from bitget_keys.testing._state import Exchange
from bitget_keys.testing._wire import BY_PATH, Answer

__all__ = ["DroppedAnswer", "Emulator", "EmulatorTransport", "Faults", "Unpaced"]

_LOCAL_IP: Final = "127.0.0.1"
#: Where a create's answer names the key it made, per answer shape.
_API_KEY_FIELDS: Final = ("subAccountApiKey", "apikey", "apiKey")

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class Faults:
    """
    Faults to inject, all off by default and all drawn from one seeded generator.

    Latency is one-way delay before a request reaches the exchange (so it shifts the
    arrival times the rate limits count), ``latency`` plus an exponential extra with
    mean ``jitter`` (seconds).
    """

    latency: float = 0.0
    jitter: float = 0.0
    #: Probability that a request is carried out and its connection then cut.
    drop_after_commit: float = 0.0
    #: Probability that a request gets HTTP 503 without being carried out.
    server_error: float = 0.0
    #: Milliseconds added to the exchange's clock (40008 for clients that don't sync).
    clock_skew_ms: int = 0
    #: Endpoint names the faults apply to; ``None`` means all.
    endpoints: frozenset[str] | None = None
    seed: int = 0

    def applies_to(self, endpoint: str | None) -> bool:
        """Whether faults hit this endpoint."""
        return self.endpoints is None or endpoint in self.endpoints


@attrs.frozen(kw_only=True)
class DroppedAnswer:
    """A request the exchange carried out whose answer was then withheld (connection cut)."""

    #: The endpoint's name, or ``None`` for a path the exchange does not know.
    endpoint: str | None
    status: int
    #: The answer as it would have been sent; a create's holds the new secrets.
    body: bytes = attrs.field(repr=False)

    @property
    def api_keys(self) -> tuple[str, ...]:
        """The API keys a create made but whose answer (and secret) never arrived."""
        found = ENDPOINTS.get(self.endpoint or "")
        if found is None or not found.creates:
            return ()
        data = orjson.loads(self.body).get("data")
        rows = data if isinstance(data, list) else [data]
        return tuple(
            row[field]
            for row in rows
            if isinstance(row, dict)
            for field in _API_KEY_FIELDS
            if isinstance(row.get(field), str)
        )


class Emulator:
    """
    A strict emulation of Bitget's key-management API, for tests and demos.

    Use ``async with Emulator() as emulator:`` and point a client at
    ``emulator.base_url`` (a real aiohttp server on 127.0.0.1), or pass
    ``transport=emulator.transport()`` to skip sockets. Three accounts are generated
    unless ``accounts`` are given; ``emulator.accounts[i].credentials`` signs as one.
    ``emulator.audit`` tells what was accepted and throttled per (UID, endpoint);
    ``emulator.dropped`` and ``emulator.server_errors`` tell which faults were injected.

    Args:
        accounts: the master accounts; generated when ``None``.
        generate: how many accounts to generate.
        limits: rate limits, quotas and masking.
        faults: latency, dropped connections, server errors, clock skew.
        host: the address to listen on.
        port: the port to listen on (0 picks a free one).
        wall_clock: epoch ms, for timestamps (defaults to the real clock).
        monotonic: seconds, for rate limits (defaults to the running loop's time).
    """

    __slots__ = (
        "_monotonic",
        "_rng",
        "_runner",
        "_site",
        "_wall_clock",
        "accounts",
        "base_url",
        "dropped",
        "exchange",
        "faults",
        "host",
        "port",
        "server_errors",
    )

    def __init__(
        self,
        accounts: Sequence[EmulatorAccount] | None = None,
        *,
        generate: int = 3,
        limits: Limits | None = None,
        faults: Faults | None = None,
        host: str = _LOCAL_IP,
        port: int = 0,
        seed: int = 0,
        wall_clock: Callable[[], int] | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        rng = random.Random(seed)
        self.accounts: list[EmulatorAccount] = list(
            accounts
            if accounts is not None
            else [EmulatorAccount.generate(rng) for _ in range(generate)]
        )
        self.exchange = Exchange(self.accounts, limits=limits, seed=seed)
        self.exchange.wall_clock = self._wall_ms
        self.faults = faults or Faults()
        self._rng = random.Random(self.faults.seed)
        #: Requests carried out whose answers were withheld, in order.
        self.dropped: list[DroppedAnswer] = []
        #: Endpoint names of the requests answered 503 without being carried out.
        self.server_errors: list[str | None] = []
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self.host = host
        self.port = port
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    def __repr__(self) -> str:
        where = self.base_url or "not serving"
        return f"<Emulator {where} {self.exchange!r}>"

    @property
    def audit(self) -> Audit:
        """What the exchange accepted, throttled and refused, per (UID, endpoint)."""
        return self.exchange.audit

    # -- clocks and faults -------------------------------------------------------------

    def _now_ms(self) -> float:
        if self._monotonic is not None:
            return self._monotonic() * 1000
        return asyncio.get_running_loop().time() * 1000

    def _wall_ms(self) -> int:
        base = self._wall_clock() if self._wall_clock is not None else time.time_ns() // 1_000_000
        return base + self.faults.clock_skew_ms

    async def _delay(self, endpoint: str | None) -> None:
        faults = self.faults
        if not faults.applies_to(endpoint) or (faults.latency <= 0 and faults.jitter <= 0):
            return
        extra = self._rng.expovariate(1 / faults.jitter) if faults.jitter > 0 else 0.0
        await asyncio.sleep(faults.latency + extra)

    def _draw(self, probability: float, endpoint: str | None) -> bool:
        return (
            probability > 0
            and self.faults.applies_to(endpoint)
            and self._rng.random() < probability
        )

    async def process(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        client_ip: str,
    ) -> tuple[Answer | None, bool]:
        """
        Run one request through faults and the exchange.

        Returns the answer (``None`` when the connection is to be cut after the
        request took effect) and whether it took effect.
        """
        found = BY_PATH.get((method, path))
        endpoint = found.name if found is not None else None
        await self._delay(endpoint)
        if self._draw(self.faults.server_error, endpoint):
            self.server_errors.append(endpoint)
            unavailable = "System is abnormal, please try again later"
            return Answer.envelope(503, "40015", unavailable, self._wall_ms(), None), False
        answer, _, took_effect = self.exchange.handle(
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            client_ip=client_ip,
            now_ms=self._now_ms(),
            wall_ms=self._wall_ms(),
        )
        if took_effect and self._draw(self.faults.drop_after_commit, endpoint):
            self.dropped.append(
                DroppedAnswer(endpoint=endpoint, status=answer.status, body=answer.body)
            )
            return None, True
        return answer, took_effect

    # -- HTTP --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        # Bitget verifies the path and query exactly as received: aiohttp's `path` and
        # `query_string` are percent-decoded, so a client signing the decoded text but
        # sending escapes (ccxt#28888) would pass. Split the raw request target instead.
        path, _, query = request.raw_path.partition("?")
        answer, _ = await self.process(
            method=request.method,
            path=path,
            query=query,
            headers=request.headers,
            body=body,
            client_ip=request.remote or _LOCAL_IP,
        )
        if answer is None:
            # Carried out, then the connection is cut: the client never sees an answer.
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        return web.Response(status=answer.status, body=answer.body, content_type="application/json")

    async def __aenter__(self) -> Self:
        if self._runner is not None:
            msg = "this Emulator is already serving"
            raise ClientStateError(msg)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # The body is taken as the bytes on the wire, never decoded by Content-Encoding:
        # Bitget verifies signatures over the body exactly as received, and decoding
        # here would turn an undecodable body into an HTTP 500 instead of the 4xx
        # envelope the pipeline gives any body it can't use (a bad signature, or 40017
        # for a body that is not JSON).
        runner = web.AppRunner(app, access_log=None, handle_signals=False, auto_decompress=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner, self._site = runner, site
        server = site._server  # noqa: SLF001 - the only way to learn the port chosen for 0
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        self.base_url = f"http://{self.host}:{self.port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop serving. Idempotent."""
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = self._site = None

    def transport(self, client_ip: str = _LOCAL_IP) -> EmulatorTransport:
        """A `bitget_keys.Transport` that reaches this emulator without sockets."""
        return EmulatorTransport(self, client_ip)


class EmulatorTransport:
    """Sends requests straight into an `Emulator`, with the same faults, no sockets."""

    __slots__ = ("_client_ip", "_emulator")

    def __init__(self, emulator: Emulator, client_ip: str = _LOCAL_IP) -> None:
        self._emulator = emulator
        self._client_ip = client_ip

    def __repr__(self) -> str:
        return f"<EmulatorTransport to {self._emulator!r}>"

    async def send(
        self,
        method: str,
        url: yarl.URL,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        endpoint: str,
    ) -> RawResponse:
        answer, _ = await self._emulator.process(
            method=method,
            path=url.raw_path,
            query=url.raw_query_string,
            # HTTP header names are case-insensitive, as they are over the socket.
            headers=CIMultiDict(headers),
            body=body or b"",
            client_ip=self._client_ip,
        )
        if answer is None:
            raise TransportError(endpoint, "connection lost after sending", maybe_sent=True)
        return RawResponse(answer.status, answer.body, {"Content-Type": "application/json"})

    async def aclose(self) -> None:
        """Nothing to close."""


class Unpaced:
    """
    A scheduler that never waits, for tests of transport facts; never for real traffic.

    It calls ``send()`` at once and re-sends a throttled request (429) up to
    ``retries`` times, straight away. ``observed`` keeps what `observe` was told.
    """

    __slots__ = ("observed", "retries")

    def __init__(self, *, retries: int = 0) -> None:
        self.retries = retries
        self.observed: list[tuple[str, str, int, int]] = []

    def __repr__(self) -> str:
        return f"<Unpaced retries={self.retries}>"

    def alias(self, lane_uid: str, uid: str) -> None:
        """Nothing to join: no lane paces anything."""

    async def run(  # the `Scheduler` protocol's signature; only `send` matters here
        self,
        uid: str,  # noqa: ARG002
        endpoint: Endpoint,  # noqa: ARG002
        send: Callable[[], Awaitable[T]],
        *,
        max_wait: float | None = None,  # noqa: ARG002
        flow: Hashable | None = None,  # noqa: ARG002
        priority: int = 0,  # noqa: ARG002
        deadline: float | None = None,  # noqa: ARG002
    ) -> T:
        """Send now; on a 429, send again up to ``retries`` times."""
        attempt = 0
        while True:
            try:
                return await send()
            except RateLimitExceededError:
                if attempt >= self.retries:
                    raise
                attempt += 1

    def observe(self, uid: str, endpoint: Endpoint, *, sent_ms: int, request_time_ms: int) -> None:
        """Keep the observation for the test to read."""
        self.observed.append((uid, endpoint.name, sent_ms, request_time_ms))
