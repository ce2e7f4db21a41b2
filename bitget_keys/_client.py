"""
`Client`: one async method per Bitget endpoint.

Lifecycle::

    UNOPENED --async with / first request--> OPENED --aclose()--> CLOSED
    second __aenter__, or any use after CLOSED -> ClientStateError

Every signed request is stamped with Bitget's clock: the offset is measured from the
public time endpoint (round-trip midpoint) before the first signed request, refreshed
every ``clock_resync_interval`` seconds, and re-measured once when Bitget answers 40008.

Every request goes through a rate-limit scheduler (`bitget_keys.limits`), keyed by the
UID that owns the calling key, so every client of a UID shares one budget. The
scheduler re-queues a throttled request (429); the client itself re-sends only what
certainly did not take effect: a connection that could not be opened, and a 40008
after resyncing.
Anything that fails after the bytes may have left raises an error that says the outcome
is unknown (`TransportError.maybe_sent`); creates must be reconciled through the list
endpoints, never blindly re-sent.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import os
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol, Self, TypeVar

import aiohttp
import attrs
import yarl

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys._gate import DispatchGate
from bitget_keys._serde import decode, encode_body, query_params
from bitget_keys._signing import Credentials, build_query, signed_headers
from bitget_keys._transport import AiohttpTransport, RawResponse, Transport
from bitget_keys.errors import (
    APIError,
    ClientStateError,
    ClockSkewError,
    ConfigurationError,
    DispatchStoppedError,
    ResponseDecodeError,
    TransportError,
)
from bitget_keys.limits import RateLimitScheduler

__all__ = ["DEFAULT_BASE_URL", "Client", "ClientConfig", "Scheduler", "shared_scheduler"]

T = TypeVar("T")

_log: Final = logging.getLogger("bitget_keys.client")

#: Bitget's production API.
DEFAULT_BASE_URL: Final = "https://api.bitget.com"
#: The environment variable that overrides the default base URL.
BASE_URL_ENV: Final = "BITGET_BASE_URL"


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        msg = f"ClientConfig.{attribute.name} must be positive (got {value})"
        raise ConfigurationError(msg)


def _optional_positive(
    _instance: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and value <= 0:
        msg = f"ClientConfig.{attribute.name} must be positive or None (got {value})"
        raise ConfigurationError(msg)


def _not_negative(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        msg = f"ClientConfig.{attribute.name} must not be negative (got {value})"
        raise ConfigurationError(msg)


@attrs.frozen(kw_only=True)
class ClientConfig:
    """How a `Client` talks to Bitget. Every field has a sensible default."""

    #: Seconds allowed to open a connection.
    connect_timeout: float = attrs.field(default=5.0, validator=_positive)
    #: Seconds allowed for one attempt, from sending to the last byte of the answer.
    request_timeout: float = attrs.field(default=15.0, validator=_positive)
    #: Sent as the ``locale`` header, as in every Bitget example.
    locale: str = "en-US"
    #: Stamp requests with Bitget's clock (measured from the public time endpoint).
    sync_clock: bool = True
    #: Seconds after which the clock offset is measured again.
    clock_resync_interval: float = attrs.field(default=300.0, validator=_positive)
    #: The longest a request may wait for its rate-limit slot; ``None`` waits as long
    #: as it takes. Past it, `RateLimitWaitTooLongError` is raised and nothing is sent.
    max_rate_limit_wait: float | None = attrs.field(default=None, validator=_optional_positive)
    #: How often a request whose connection could not be opened is tried again.
    max_connect_retries: int = attrs.field(default=2, validator=_not_negative)
    #: Seconds between those attempts.
    connect_retry_backoff: float = attrs.field(default=0.5, validator=_positive)


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class ServerClock:
    """
    Bitget's clock as measured from here: one offset that any number of clients share.

    Every client keeps one of its own unless given one. Give the same `ServerClock` to
    all clients of one base URL (``Client(server_clock=...)``) and it is measured once
    for all of them instead of once each: Bitget allows its time endpoint 20 requests a
    second per IP, so a hundred clients that each sync first wait five seconds.

    Args:
        wall_ms: the local wall clock in epoch milliseconds.
    """

    __slots__ = ("lock", "offset_ms", "synced_at", "wall_ms")

    def __init__(self, wall_ms: Callable[[], int] = _wall_clock_ms) -> None:
        self.wall_ms = wall_ms
        #: Bitget's clock minus the local one, in ms, as last measured.
        self.offset_ms = 0
        #: ``time.monotonic()`` of the last measurement, or ``None``.
        self.synced_at: float | None = None
        #: Held while measuring, so clients sharing the clock measure it once.
        self.lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"<ServerClock offset_ms={self.offset_ms} synced={self.synced_at is not None}>"

    def now_ms(self) -> int:
        """Bitget's time now, as far as the last measurement tells."""
        return self.wall_ms() + self.offset_ms


def _current_task() -> asyncio.Task[object]:
    task = asyncio.current_task()
    if task is None:  # pragma: no cover - a client call always runs in a task
        msg = "a client call must run in an asyncio task"
        raise ClientStateError(msg)
    return task


def _resolve_base_url(base_url: str | None) -> str:
    url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    parsed = yarl.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        msg = f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL} (got {url!r})"
        raise ConfigurationError(msg)
    return url.rstrip("/")


class Scheduler(Protocol):
    """
    What paces a client's requests: `bitget_keys.limits.RateLimitScheduler`, or a
    stand-in such as `bitget_keys.testing.Unpaced` in tests of transport facts.
    """

    async def run(
        self,
        uid: str,
        endpoint: ep.Endpoint,
        send: Callable[[], Awaitable[T]],
        *,
        max_wait: float | None = None,
    ) -> T: ...

    def observe(
        self, uid: str, endpoint: ep.Endpoint, *, sent_ms: int, request_time_ms: int
    ) -> None: ...


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RateLimitScheduler] = (
    weakref.WeakKeyDictionary()
)


def shared_scheduler() -> RateLimitScheduler:
    """
    The running loop's scheduler, shared by every client that was not given one.

    Clients of one UID in one process therefore share one budget per endpoint.
    """
    loop = asyncio.get_running_loop()
    scheduler = _SHARED.get(loop)
    if scheduler is None:
        scheduler = _SHARED[loop] = RateLimitScheduler()
    return scheduler


@attrs.define
class _Retries:
    """What one call has re-sent so far."""

    connect: int = 0
    resynced: bool = False


def _log_answer(
    endpoint: ep.Endpoint, status: int, code: str | None, attempt_started: float
) -> None:
    _log.debug(
        "%s %s -> HTTP %d, code %s, %.1f ms",
        endpoint.method,
        endpoint.path,
        status,
        code,
        (time.monotonic() - attempt_started) * 1000,
    )


def _key_hint(api_key: str) -> str:
    return api_key[:6] + "…" if len(api_key) > 6 else "…"


class Client:
    """
    An asyncio client for Bitget's API-key endpoints.

    Use it as ``async with Client(credentials) as client:``. A session passed in is
    borrowed and never closed; otherwise the client makes one inside the running loop
    and closes it in `aclose`.

    Args:
        credentials: the calling key. Its UID keys the rate limits; when not given it
            is learned once from the account-info endpoint.
        base_url: defaults to ``$BITGET_BASE_URL``, then ``https://api.bitget.com``.
        config: timeouts, clock and retry settings.
        session: an `aiohttp.ClientSession` to borrow.
        transport: a `Transport` to borrow instead of a session (tests, emulators).
        scheduler: what paces requests; by default one `RateLimitScheduler` shared by
            every client of the running loop, so clients of one UID share its budget.
        clock_ms: the wall clock in epoch milliseconds, for signing.
        server_clock: Bitget's clock offset, shared with other clients (see
            `ServerClock`); by default the client keeps its own, on ``clock_ms``.
        gate: stops new requests while letting those on the wire finish (see
            `DispatchGate`); share one between the clients of a run.
    """

    __slots__ = (
        "_base_url",
        "_clock_ms",
        "_config",
        "_credentials",
        "_gate",
        "_owns_transport",
        "_scheduler",
        "_server_clock",
        "_state",
        "_transport",
        "_uid",
        "_uid_lock",
    )

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str | None = None,
        config: ClientConfig | None = None,
        session: aiohttp.ClientSession | None = None,
        transport: Transport | None = None,
        scheduler: Scheduler | None = None,
        clock_ms: Callable[[], int] = _wall_clock_ms,
        server_clock: ServerClock | None = None,
        gate: DispatchGate | None = None,
    ) -> None:
        checked: object = credentials
        if not isinstance(checked, Credentials):
            msg = f"credentials must be a Credentials, not {type(checked).__name__}"
            raise TypeError(msg)
        if session is not None and transport is not None:
            msg = "pass a session or a transport, not both"
            raise ConfigurationError(msg)
        self._credentials = credentials
        self._config = config or ClientConfig()
        self._base_url = _resolve_base_url(base_url)
        self._server_clock = server_clock or ServerClock(clock_ms)
        self._clock_ms = self._server_clock.wall_ms
        self._owns_transport = transport is None
        self._transport: Transport = transport or AiohttpTransport(
            session,
            timeout=aiohttp.ClientTimeout(
                total=self._config.request_timeout,
                sock_connect=self._config.connect_timeout,
            ),
        )
        self._scheduler = scheduler
        self._gate = gate
        self._state = _State.UNOPENED
        self._uid = credentials.uid
        self._uid_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"<Client {self._state.value} {self._base_url} "
            f"key={_key_hint(self._credentials.api_key)} uid={self._uid or '?'}>"
        )

    # -- lifecycle -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The Bitget API root this client talks to."""
        return self._base_url

    @property
    def config(self) -> ClientConfig:
        """The client's settings."""
        return self._config

    @property
    def clock_offset_ms(self) -> int:
        """Bitget's clock minus the local one, in ms, as last measured."""
        return self._server_clock.offset_ms

    @property
    def closed(self) -> bool:
        """Whether `aclose` has run."""
        return self._state is _State.CLOSED

    def _open(self) -> None:
        if self._state is _State.CLOSED:
            msg = "this Client is closed; create a new one"
            raise ClientStateError(msg)
        self._state = _State.OPENED

    async def __aenter__(self) -> Self:
        if self._state is not _State.UNOPENED:
            msg = f"this Client is already {self._state.value}; a Client is opened once"
            raise ClientStateError(msg)
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    if not TYPE_CHECKING:

        def __enter__(self) -> None:
            msg = "Client is asynchronous: use 'async with Client(...)'"
            raise TypeError(msg)

        def __exit__(self, *args: object) -> None:  # pragma: no cover - never entered
            pass

    async def aclose(self) -> None:
        """Close the client (and its session, if the client made it). Idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        if self._owns_transport:
            await self._transport.aclose()

    # -- identity and clock ----------------------------------------------------------

    async def uid(self) -> str:
        """
        The UID that owns the calling key, from the credentials or learned once.

        Raises:
            APIError: account-info failed (for example 40085 on a unified account).
            TransportError: no answer arrived.
        """
        if self._uid is None:
            async with self._uid_lock:
                if self._uid is None:
                    self._uid = (await self.account_info()).user_id
        return self._uid

    async def sync_clock(self) -> int:
        """
        Measure Bitget's clock now; return the offset in ms (server minus local).

        Raises:
            APIError: the time endpoint answered with an error.
            TransportError: no answer arrived.
        """
        clock = self._server_clock
        before = clock.wall_ms()
        server = await self.server_time()
        after = clock.wall_ms()
        clock.offset_ms = server.server_time_ms - (before + after) // 2
        clock.synced_at = time.monotonic()
        _log.debug("clock offset %+d ms (round trip %d ms)", clock.offset_ms, after - before)
        return clock.offset_ms

    async def _ensure_clock(self, *, stale_before: float | None = None) -> None:
        if not self._config.sync_clock:
            return
        async with self._server_clock.lock:
            synced_at = self._server_clock.synced_at
            fresh = (
                synced_at is not None
                and time.monotonic() - synced_at < self._config.clock_resync_interval
                and (stale_before is None or synced_at > stale_before)
            )
            if not fresh:
                await self.sync_clock()

    def _timestamp_ms(self) -> int:
        return self._server_clock.now_ms()

    # -- sending ---------------------------------------------------------------------

    def _ensure_usable(self) -> None:
        if self._state is _State.CLOSED:
            msg = "this Client is closed; create a new one"
            raise ClientStateError(msg)
        if self._state is _State.UNOPENED:
            self._open()

    def _headers(self, endpoint: ep.Endpoint, query: str, body: bytes) -> dict[str, str]:
        if not endpoint.signed:
            return {"locale": self._config.locale}
        # Stamped now, right before sending: a stamp taken before a wait can expire.
        return signed_headers(
            self._credentials,
            timestamp_ms=self._timestamp_ms(),
            method=endpoint.method,
            path=endpoint.path,
            query=query,
            body=body,
            locale=self._config.locale,
        )

    @property
    def scheduler(self) -> Scheduler:
        """What paces this client's requests."""
        if self._scheduler is None:
            self._scheduler = shared_scheduler()
        return self._scheduler

    async def _lane_uid(self, endpoint: ep.Endpoint) -> str:
        """The UID whose budget a request draws on (Bitget counts per owning UID)."""
        if endpoint.scope == "ip":
            return "*"
        if self._uid is not None:
            return self._uid
        if endpoint is ep.ACCOUNT_INFO:
            # Learning the UID costs one account-info call, paced per key meanwhile.
            return f"key:{self._credentials.api_key}"
        return await self.uid()

    async def _send_once(
        self,
        endpoint: ep.Endpoint,
        response_type: type[T],
        *,
        url: yarl.URL,
        query: str,
        payload: bytes | None,
        lane_uid: str,
    ) -> T:
        """Sign and send once; the scheduler calls this the instant the slot is stamped."""
        # Stamped now, so the timestamp is fresh however long the wait for the slot was.
        headers = self._headers(endpoint, query, payload or b"")
        started = time.monotonic()
        sent_ms = self._clock_ms()
        request_time: int | None = None
        response = await self._on_wire(endpoint, url, headers, payload)
        try:
            value, request_time = decode(
                response.body, response_type, http_status=response.status, endpoint=endpoint.path
            )
        except APIError as exc:
            _log_answer(endpoint, response.status, exc.code, started)
            request_time = exc.request_time
            raise
        else:
            _log_answer(endpoint, response.status, "00000", started)
            return value
        finally:
            if request_time is not None:
                self.scheduler.observe(
                    lane_uid, endpoint, sent_ms=sent_ms, request_time_ms=request_time
                )

    async def _on_wire(
        self,
        endpoint: ep.Endpoint,
        url: yarl.URL,
        headers: dict[str, str],
        payload: bytes | None,
    ) -> RawResponse:
        """Hand the request to the transport, telling the gate it is on the wire."""
        gate = self._gate
        if gate is None:
            return await self._transport.send(
                endpoint.method, url, headers, payload, endpoint=endpoint.path
            )
        task = _current_task()
        change = endpoint.method != "GET"
        gate.sending(task, change=change, request=f"{endpoint.method} {endpoint.path}")
        try:
            return await self._transport.send(
                endpoint.method, url, headers, payload, endpoint=endpoint.path
            )
        except asyncio.CancelledError:
            if not gate.stopped(task):
                raise
            # The gate gave up on this answer: the request may have been carried out.
            task.uncancel()
            raise TransportError(
                endpoint.path, f"answer abandoned ({gate.reason})", maybe_sent=True
            ) from None
        finally:
            gate.answered(task, change=change)

    async def _slot(
        self, lane_uid: str, endpoint: ep.Endpoint, send_once: Callable[[], Awaitable[T]]
    ) -> T:
        """Wait for the lane's slot and send; a closed gate stops a request still waiting."""
        gate = self._gate
        if gate is None:
            return await self.scheduler.run(
                lane_uid, endpoint, send_once, max_wait=self._config.max_rate_limit_wait
            )
        change = endpoint.method != "GET"
        gate.check(change=change, endpoint=endpoint.path)
        task = _current_task()
        gate.waiting(task, change=change)
        try:
            return await self.scheduler.run(
                lane_uid, endpoint, send_once, max_wait=self._config.max_rate_limit_wait
            )
        except asyncio.CancelledError:
            if not gate.stopped(task):
                raise
            task.uncancel()
            raise DispatchStoppedError(endpoint.path, gate.reason) from None
        finally:
            gate.left(task)

    async def _call(
        self,
        endpoint: ep.Endpoint,
        response_type: type[T],
        *,
        params: object | None = None,
        body: object | None = None,
    ) -> T:
        self._ensure_usable()
        query = build_query(query_params(params)) if params is not None else ""
        # Serialised once: exactly these bytes are signed and sent.
        payload = encode_body(body) if body is not None else None
        url = yarl.URL(
            self._base_url + endpoint.path + (f"?{query}" if query else ""), encoded=True
        )
        lane_uid = await self._lane_uid(endpoint)
        send_once = functools.partial(
            self._send_once,
            endpoint,
            response_type,
            url=url,
            query=query,
            payload=payload,
            lane_uid=lane_uid,
        )
        retries = _Retries()
        while True:
            if endpoint.signed:
                await self._ensure_clock()
            # After the clock check: a resync triggered by this attempt's 40008 must be
            # newer than the offset this attempt was signed with.
            attempt_started = time.monotonic()
            try:
                return await self._slot(lane_uid, endpoint, send_once)
            except TransportError as exc:
                _log.debug("%s %s: %s", endpoint.method, endpoint.path, exc)
                # Only a connection that never opened proves nothing was sent.
                if exc.maybe_sent or retries.connect >= self._config.max_connect_retries:
                    raise
                retries.connect += 1
                await asyncio.sleep(self._config.connect_retry_backoff * retries.connect)
            except ClockSkewError as exc:
                if exc.code != "40008" or retries.resynced or not self._config.sync_clock:
                    raise
                retries.resynced = True
                _log.debug("%s %s -> 40008, resyncing the clock", endpoint.method, endpoint.path)
                await self._ensure_clock(stale_before=attempt_started)

    # -- endpoints -------------------------------------------------------------------

    async def server_time(self) -> m.ServerTime:
        """
        Bitget's clock (public, unsigned).

        Raises:
            APIError: an error answer.
            TransportError: no answer arrived.
            ResponseDecodeError: an answer of the wrong shape.
        """
        return await self._call(ep.SERVER_TIME, m.ServerTime)

    async def account_info(self) -> m.AccountInfo:
        """
        Who owns the calling key (``user_id`` is its UID).

        Raises:
            UnifiedAccountModeError: the master is in unified-account mode.
            APIError: any other error answer.
            TransportError: no answer arrived.
            ResponseDecodeError: an answer of the wrong shape.
        """
        return await self._call(ep.ACCOUNT_INFO, m.AccountInfo)

    async def create_copy_api_key(self, request: m.CreateCopyAPIKeyRequest) -> m.CopyAPIKey:
        """
        Create the copy-trading API key of a new-model copy trader. Works once, ever.

        The secret is in the result only: store it before doing anything else.

        Raises:
            CopyAPIKeyExistsError: this trader already has its copy key.
            CopyModelNotSupportedError: the trader is on the old copy model.
            APIError: any other error answer.
            TransportError: no answer; if ``maybe_sent``, the key may exist and its
                secret is lost; do not retry blindly.
            ResponseDecodeError: an answer of the wrong shape.
        """
        rows = await self._call(ep.CREATE_COPY_API_KEY, tuple[m.CopyAPIKey, ...], body=request)
        if not rows:
            raise ResponseDecodeError(ep.CREATE_COPY_API_KEY.path, ("data: empty list",))
        return rows[0]

    async def create_virtual_subaccount_api_key(
        self, request: m.CreateVirtualSubaccountAPIKeyRequest
    ) -> m.CreatedVirtualSubaccountAPIKey:
        """
        Create one more API key for a virtual sub-account.

        The secret is in the result only: store it before doing anything else.

        Raises:
            QuotaExceededError: the sub-account has its 10 keys.
            APIError: any other error answer.
            TransportError: no answer; if ``maybe_sent``, list the sub-account's keys
                before trying again.
            ResponseDecodeError: an answer of the wrong shape.
        """
        return await self._call(
            ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY, m.CreatedVirtualSubaccountAPIKey, body=request
        )

    async def batch_create_virtual_subaccounts(
        self, request: m.BatchCreateVirtualSubaccountsRequest
    ) -> tuple[m.CreatedVirtualSubaccount, ...]:
        """
        Create 1-5 virtual sub-accounts, each with its first API key.

        Rows come back matched by nothing but their label; names and UIDs may be
        masked. The secrets are in the result only: store them before anything else.

        Raises:
            ConflictError: a name is taken.
            QuotaExceededError: the master has its 20 sub-accounts.
            APIError: any other error answer.
            TransportError: no answer; if ``maybe_sent``, list the sub-accounts before
                trying again.
            ResponseDecodeError: an answer of the wrong shape.
        """
        return await self._call(
            ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS,
            tuple[m.CreatedVirtualSubaccount, ...],
            body=request,
        )

    async def modify_broker_subaccount_api_key(
        self, request: m.ModifyBrokerSubaccountAPIKeyRequest
    ) -> m.BrokerSubaccountAPIKey:
        """
        Replace an ND-broker sub-account key's permissions, type, whitelist or label.

        Raises:
            PermissionDeniedError: the caller is not an ND broker (40029).
            APIError: any other error answer.
            TransportError: no answer arrived.
            ResponseDecodeError: an answer of the wrong shape.
        """
        return await self._call(
            ep.MODIFY_BROKER_SUBACCOUNT_API_KEY, m.BrokerSubaccountAPIKey, body=request
        )

    async def create_broker_subaccount_api_key(
        self, request: m.CreateBrokerSubaccountAPIKeyRequest
    ) -> m.BrokerSubaccountAPIKey:
        """
        Create an API key for an ND-broker sub-account; its secret is shown only here.

        Raises:
            PermissionDeniedError: the caller is not an ND broker (40029).
            APIError: any other error answer.
            TransportError: no answer; if ``maybe_sent``, list the keys first.
            ResponseDecodeError: an answer of the wrong shape.
        """
        return await self._call(
            ep.CREATE_BROKER_SUBACCOUNT_API_KEY, m.BrokerSubaccountAPIKey, body=request
        )

    async def list_broker_subaccount_api_keys(
        self, sub_uid: str
    ) -> tuple[m.BrokerSubaccountAPIKey, ...]:
        """
        The keys of an ND-broker sub-account.

        Raises:
            APIError: an error answer.
            TransportError: no answer arrived.
            ResponseDecodeError: an answer of the wrong shape.
        """
        return await self._call(
            ep.LIST_BROKER_SUBACCOUNT_API_KEYS,
            tuple[m.BrokerSubaccountAPIKey, ...],
            params=m.ListBrokerSubaccountAPIKeysRequest(sub_uid=sub_uid),
        )

    async def list_virtual_subaccounts(
        self, request: m.ListVirtualSubaccountsRequest | None = None
    ) -> m.VirtualSubaccountPage:
        """
        One page of the master's virtual sub-accounts, newest first.

        Raises:
            APIError: an error answer.
            TransportError: no answer arrived.
            ResponseDecodeError: an answer of the wrong shape.
        """
        return await self._call(
            ep.LIST_VIRTUAL_SUBACCOUNTS,
            m.VirtualSubaccountPage,
            params=request or m.ListVirtualSubaccountsRequest(),
        )

    async def iter_virtual_subaccounts(
        self, *, page_size: int = 100, status: m.SubaccountStatus | None = None
    ) -> AsyncIterator[m.VirtualSubaccount]:
        """
        Every virtual sub-account of the master, following the ``endId`` cursor.

        Paging stops on an empty or short page, or when the cursor stops moving.

        Raises:
            APIError: an error answer.
            TransportError: no answer arrived.
            ResponseDecodeError: an answer of the wrong shape.
        """
        cursor: str | None = None
        while True:
            page = await self.list_virtual_subaccounts(
                m.ListVirtualSubaccountsRequest(limit=page_size, id_less_than=cursor, status=status)
            )
            for subaccount in page.subaccounts:
                yield subaccount
            if len(page.subaccounts) < page_size or not page.end_id or page.end_id == cursor:
                return
            cursor = page.end_id

    async def list_virtual_subaccount_api_keys(
        self, subaccount_uid: str
    ) -> tuple[m.VirtualSubaccountAPIKey, ...]:
        """
        The keys of a virtual sub-account (never with secrets).

        Raises:
            APIError: an error answer.
            TransportError: no answer arrived.
            ResponseDecodeError: an answer of the wrong shape.
        """
        return await self._call(
            ep.LIST_VIRTUAL_SUBACCOUNT_API_KEYS,
            tuple[m.VirtualSubaccountAPIKey, ...],
            params=m.ListVirtualSubaccountAPIKeysRequest(subaccount_uid=subaccount_uid),
        )

    async def modify_virtual_subaccount_api_key(
        self, request: m.ModifyVirtualSubaccountAPIKeyRequest
    ) -> m.VirtualSubaccountAPIKey:
        """
        Replace a virtual sub-account key's label, whitelist and (optionally) rights.

        Raises:
            APIError: an error answer.
            TransportError: no answer arrived.
            ResponseDecodeError: an answer of the wrong shape.
        """
        return await self._call(
            ep.MODIFY_VIRTUAL_SUBACCOUNT_API_KEY, m.VirtualSubaccountAPIKey, body=request
        )

    async def create_virtual_subaccounts(
        self, request: m.CreateVirtualSubaccountsRequest
    ) -> m.CreatedVirtualSubaccounts:
        """
        Create virtual sub-accounts without keys; the result lists refusals per name.

        Raises:
            APIError: an error answer.
            TransportError: no answer; if ``maybe_sent``, list the sub-accounts first.
            ResponseDecodeError: an answer of the wrong shape.
        """
        return await self._call(
            ep.CREATE_VIRTUAL_SUBACCOUNTS, m.CreatedVirtualSubaccounts, body=request
        )
