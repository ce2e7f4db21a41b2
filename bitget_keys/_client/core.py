"""
`ClientCore`: what every endpoint family of `Client` shares.

Its settings, credentials and borrowed or owned transport, and its lifecycle::

    UNOPENED --async with / first request--> OPENED --aclose()--> CLOSED
    second __aenter__, or any use after CLOSED -> ClientStateError
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Hashable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Self

import aiohttp

from bitget_keys._client.call_pacing import check_flow, check_priority
from bitget_keys._client.clock import ServerClock, shared_server_clock, wall_clock_ms
from bitget_keys._client.config import ClientConfig, resolve_base_url
from bitget_keys._client.modes import AccountModes, shared_account_modes
from bitget_keys._client.observe import Observers, RequestObserver
from bitget_keys._gate import DispatchGate
from bitget_keys._signing import Credentials
from bitget_keys._transport import AiohttpTransport, Transport
from bitget_keys.errors import ClientStateError, ConfigurationError
from bitget_keys.limits import Scheduler, shared_scheduler

__all__ = ["ClientCore"]


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


def _key_hint(api_key: str) -> str:
    return api_key[:6] + "…" if len(api_key) > 6 else "…"


def _check_egress(
    config: ClientConfig, session: aiohttp.ClientSession | None, transport: Transport | None
) -> None:
    """Refuse proxy settings that the transport or session given would silently ignore."""
    if transport is not None and (config.proxy is not None or config.trust_env):
        msg = (
            "ClientConfig.proxy and trust_env configure the built-in transport; a transport "
            "passed in is used as it is, so give it its own proxy"
        )
        raise ConfigurationError(msg)
    if session is not None and config.trust_env and not session.trust_env:
        msg = (
            "ClientConfig.trust_env needs a session that reads the environment: create it "
            "with aiohttp.ClientSession(trust_env=True), or let the client make its own"
        )
        raise ConfigurationError(msg)


class ClientCore:
    """A client's state and lifecycle; `Client` documents the arguments."""

    __slots__ = (
        "_account_modes",
        "_base_url",
        "_clock_ms",
        "_config",
        "_credentials",
        "_flow",
        "_gate",
        "_observers",
        "_owns_transport",
        "_priority",
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
        clock_ms: Callable[[], int] = wall_clock_ms,
        server_clock: ServerClock | None = None,
        gate: DispatchGate | None = None,
        account_modes: AccountModes | None = None,
        flow: Hashable | None = None,
        priority: int = 0,
        observers: Iterable[RequestObserver] = (),
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
        _check_egress(self._config, session, transport)
        self._base_url = resolve_base_url(base_url)
        # Resolved on first use, in the loop the client runs in (`server_clock`).
        self._server_clock = server_clock
        self._clock_ms = server_clock.wall_ms if server_clock is not None else clock_ms
        self._owns_transport = transport is None
        self._transport: Transport = transport or AiohttpTransport(
            session,
            timeout=aiohttp.ClientTimeout(
                total=self._config.request_timeout,
                sock_connect=self._config.connect_timeout,
            ),
            proxy=self._config.proxy,
            trust_env=self._config.trust_env,
        )
        self._scheduler = scheduler
        self._gate = gate
        self._account_modes = account_modes
        # A lane serves its flows in turn: by default each client is one, so clients
        # sharing a UID's budget share its slots too.
        self._flow: Hashable = self if flow is None else check_flow("Client", flow)
        self._priority = check_priority("Client", priority)
        self._observers = Observers(observers)
        self._state = _State.UNOPENED
        self._uid = credentials.uid
        self._uid_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"<Client {self._state.value} {self._base_url} "
            f"key={_key_hint(self._credentials.api_key)} uid={self._uid or '?'}>"
        )

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
        """Bitget's clock minus the local one, in ms, as last measured (0 before)."""
        if self._server_clock is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return 0  # no loop yet, so no shared clock measured in it either
        return self.server_clock.offset_ms

    @property
    def server_clock(self) -> ServerClock:
        """
        Bitget's clock as this client keeps it: the one it was given, or the running
        loop's for its base URL and ``clock_ms`` (`shared_server_clock`).
        """
        if self._server_clock is None:
            self._server_clock = shared_server_clock(self._base_url, self._clock_ms)
        return self._server_clock

    @property
    def flow(self) -> Hashable:
        """Whose turn this client's requests take on their lanes (itself by default)."""
        return self._flow

    @property
    def priority(self) -> int:
        """The priority of this client's requests on their lanes (`pacing` may change it)."""
        return self._priority

    @property
    def closed(self) -> bool:
        """Whether `aclose` has run."""
        return self._state is _State.CLOSED

    @property
    def scheduler(self) -> Scheduler:
        """What paces this client's requests."""
        if self._scheduler is None:
            self._scheduler = shared_scheduler()
        return self._scheduler

    @property
    def account_modes(self) -> AccountModes:
        """Where this client keeps and finds the account mode of each UID."""
        if self._account_modes is None:
            self._account_modes = shared_account_modes()
        return self._account_modes

    # -- lifecycle -------------------------------------------------------------------

    def _open(self) -> None:
        if self._state is _State.CLOSED:
            msg = "this Client is closed; create a new one"
            raise ClientStateError(msg)
        self._state = _State.OPENED

    def _ensure_usable(self) -> None:
        """Open on first use, as ``async with`` would; refuse once closed."""
        if self._state is not _State.OPENED:
            self._open()

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
