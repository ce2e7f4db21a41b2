"""
The HTTP layer: the only module that imports aiohttp for sending.

It sends exactly the bytes it is given, never retries, and translates aiohttp's
exceptions into `TransportError` with an honest ``maybe_sent``: only a connection that
could not be opened (or a tunnel a proxy refused) proves the request never left.

A proxy is given as a URL that may carry a user name and password. Those are secrets:
they are taken out of the URL before aiohttp sees it (so no aiohttp error or request
record can show them) and sent only as the ``Proxy-Authorization`` header; every repr
and message shows the URL with ``***`` in their place (`masked_proxy`).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final, Protocol

import aiohttp
import attrs
import yarl

from bitget_keys._secret import Secret, userinfo_masked
from bitget_keys.errors import ConfigurationError, RequestTimeoutError, TransportError

__all__ = ["AiohttpTransport", "RawResponse", "Transport", "masked_proxy", "parse_proxy"]

#: The host of Bitget's production API: errors that name it say so, since reaching (or
#: failing to reach) production is not the same as a test server being down.
PRODUCTION_HOST: Final = "api.bitget.com"

#: The proxy schemes aiohttp speaks without another library.
PROXY_SCHEMES: Final = ("http", "https")
_PROXY_EXAMPLE: Final = "http://proxy.example:3128 or http://user:password@10.0.0.5:3128"


def host_described(host: str | None) -> str:
    """A host as errors name it: ``api.bitget.com (Bitget production)`` for production."""
    if not host:
        return "the server"
    return f"{host} (Bitget production)" if host == PRODUCTION_HOST else host


def _unreachable(exc: aiohttp.ClientConnectorError, *, via_proxy: bool) -> str:
    """Why a connection could not be opened, naming the host (or the proxy) it was to."""
    host = host_described(exc.host)
    if via_proxy:
        host = f"the proxy {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"could not connect: DNS lookup failed for {host}"
    return f"could not connect to {host}:{exc.port} ({type(exc).__name__})"


def masked_proxy(url: str) -> str:
    """``url`` with any user name and password shown as ``***``: what reprs and logs show."""
    masked = userinfo_masked(url)
    if masked is not None:
        return masked
    try:
        return str(yarl.URL(url))
    except (TypeError, ValueError):
        return "<a proxy URL that cannot be parsed>"


def parse_proxy(url: str, *, what: str = "proxy") -> tuple[yarl.URL, Secret | None]:
    """
    The proxy's URL without credentials, and the ``Proxy-Authorization`` value its user
    name and password make (``None`` without them).

    Raises `ConfigurationError`, naming the URL only masked, unless ``url`` is
    ``http://`` or ``https://``, a host, an optional port and nothing else. SOCKS proxies
    are refused: aiohttp needs another library for them.
    """
    checked: object = url
    if not isinstance(checked, str):
        msg = f"{what}: must be a URL string such as {_PROXY_EXAMPLE}"
        raise ConfigurationError(msg)
    try:
        parsed = yarl.URL(url)
        host, port = parsed.host, parsed.port
    except ValueError:
        msg = f"{what}: not a URL that can be parsed; expected one such as {_PROXY_EXAMPLE}"
        raise ConfigurationError(msg) from None
    shown = masked_proxy(url)
    problem = None
    if parsed.scheme.startswith("socks"):
        problem = "SOCKS proxies are not supported; give an http:// or https:// proxy"
    elif parsed.scheme not in PROXY_SCHEMES:
        problem = "must start with http:// or https://"
    elif not host or port is None:
        problem = "must name the proxy's host"
    elif parsed.raw_path not in ("", "/") or parsed.raw_query_string or parsed.raw_fragment:
        problem = "must be scheme://[user:password@]host[:port] with no path or query"
    if problem is not None:
        msg = f"{what}: {problem} (got {shown}); for example {_PROXY_EXAMPLE}"
        raise ConfigurationError(msg)
    if parsed.raw_user is None and parsed.raw_password is None:
        return parsed, None
    user, password = parsed.user or "", parsed.password or ""
    if ":" in user:
        msg = f"{what}: a proxy user name cannot hold ':' (got {shown})"
        raise ConfigurationError(msg)
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return parsed.with_user(None), Secret(f"Basic {token}")


@attrs.frozen
class RawResponse:
    """An HTTP answer, undecoded."""

    status: int
    body: bytes
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)


class Transport(Protocol):
    """
    Sends one request and returns the raw answer; raises `TransportError`.

    `AiohttpTransport` is the default; ``Client(transport=...)`` takes any other, such
    as `bitget_keys.testing.Emulator.transport` in tests. A transport given to a client
    is borrowed: the client never closes it.
    """

    async def send(
        self,
        method: str,
        url: yarl.URL,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        endpoint: str,
    ) -> RawResponse:
        """
        Send the request once, exactly as given, and return the answer undecoded.

        The request is already signed: Bitget verifies the signature over the method,
        the path with its query as written, and the body's bytes, so an
        implementation must keep:

        - ``url`` is sent as it is (it is pre-encoded: never re-encode, re-order or
          normalise its query), ``body`` byte for byte, ``headers`` as given.
        - Once: never retry and never follow a redirect. The client alone decides what
          may be sent again, from the error's ``maybe_sent``.
        - Any HTTP answer, error statuses included, is returned as a `RawResponse`:
          the client reads Bitget's code from the body whatever the status.
        - No answer raises `TransportError` (`RequestTimeoutError` for a timeout) with
          ``maybe_sent=False`` only when the request certainly never left (the
          connection could not be opened, a proxy refused the tunnel); otherwise
          ``maybe_sent=True``, since Bitget may have carried it out.
        - Cancellation propagates (the client treats an abandoned request as maybe
          sent).
        - Nothing of ``headers`` or ``body`` appears in an error or a log: they hold
          the key's passphrase and signature.

        Args:
            method: ``"GET"`` or ``"POST"``.
            url: the whole URL, query included, already encoded.
            headers: the signed headers to send.
            body: the JSON body's bytes, or ``None`` for a GET.
            endpoint: the endpoint's path, to name in errors.

        Raises:
            TransportError: no usable answer arrived; ``maybe_sent`` says whether the
                request may have reached Bitget.
        """
        ...

    async def aclose(self) -> None:
        """Release what the transport holds (its sessions and connections); idempotent."""
        ...


class AiohttpTransport:
    """
    A `Transport` over an `aiohttp.ClientSession`.

    A session passed in is borrowed and never closed; otherwise one is created (inside
    the running loop, on first use) and closed by `aclose`. The session this transport
    creates never re-sends a request on its own; a borrowed one is used as it is
    (aiohttp 3.14 re-sends GETs once after a dropped keep-alive connection).

    ``proxy`` (an ``http://`` or ``https://`` URL, see `parse_proxy`) is used for every
    request, with either kind of session. ``trust_env`` makes the session this transport
    creates read ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` (aiohttp's ``trust_env``);
    a ``proxy`` given here wins over the environment.
    """

    __slots__ = (
        "_closed",
        "_owns_session",
        "_proxy",
        "_proxy_auth",
        "_session",
        "_timeout",
        "_trust_env",
    )

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: aiohttp.ClientTimeout,
        proxy: str | None = None,
        trust_env: bool = False,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._timeout = timeout
        self._closed = False
        self._proxy: yarl.URL | None = None
        self._proxy_auth: Secret | None = None
        if proxy is not None:
            self._proxy, self._proxy_auth = parse_proxy(proxy)
        self._trust_env = trust_env

    def __repr__(self) -> str:
        owner = "owned" if self._owns_session else "borrowed"
        state = "closed" if self._closed else "open"
        via = f", via {self.proxy}" if self._proxy is not None else ""
        return f"<AiohttpTransport {owner} session, {state}{via}>"

    @property
    def proxy(self) -> str | None:
        """The proxy every request goes through (credentials masked), or ``None``."""
        if self._proxy is None:
            return None
        credentials = "***@" if self._proxy_auth is not None else ""
        return f"{self._proxy.scheme}://{credentials}{self._proxy.authority}"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Created here, inside the running loop, never in __init__.
            session = aiohttp.ClientSession(timeout=self._timeout, trust_env=self._trust_env)
            # aiohttp >= 3.14 silently sends an idempotent request (our GETs) again when
            # a kept-alive connection drops. That second request would bypass the rate
            # limits and hide an unknown outcome, so this session never does it.
            if hasattr(session, "_retry_connection"):
                session._retry_connection = False  # noqa: SLF001
            self._session = session
        return self._session

    async def send(
        self,
        method: str,
        url: yarl.URL,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        endpoint: str,
    ) -> RawResponse:
        session = self._get_session()
        sent_headers = dict(headers)
        via: dict[str, Any] = {}
        if self._proxy is not None:
            via["proxy"] = self._proxy
            if self._proxy_auth is not None:
                auth = {"Proxy-Authorization": self._proxy_auth.reveal()}
                # An https target is tunnelled (CONNECT carries the header, never the
                # request inside); an http one is sent to the proxy whole, header included.
                via["proxy_headers"] = auth
                if url.scheme == "http":
                    sent_headers.update(auth)
        try:
            async with session.request(
                method,
                url,
                headers=sent_headers,
                data=body,
                timeout=self._timeout,
                allow_redirects=False,
                **via,
            ) as response:
                payload = await response.read()
                return RawResponse(response.status, payload, dict(response.headers))
        except aiohttp.ClientHttpProxyError as exc:
            # The proxy answered the CONNECT with an error: nothing reached Bitget.
            raise TransportError(
                endpoint, f"the proxy refused the tunnel (HTTP {exc.status})", maybe_sent=False
            ) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise RequestTimeoutError(
                endpoint,
                f"timed out while connecting to {host_described(url.host)}",
                maybe_sent=False,
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransportError(
                endpoint, _unreachable(exc, via_proxy=self._proxy is not None), maybe_sent=False
            ) from exc
        except TimeoutError as exc:
            raise RequestTimeoutError(
                endpoint, "timed out waiting for the response", maybe_sent=True
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(
                endpoint, f"connection failed ({type(exc).__name__})", maybe_sent=True
            ) from exc

    async def aclose(self) -> None:
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()
