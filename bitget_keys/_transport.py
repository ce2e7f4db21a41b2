"""
The HTTP layer: the only module that imports aiohttp for sending.

It sends exactly the bytes it is given, never retries, and translates aiohttp's
exceptions into `TransportError` with an honest ``maybe_sent``: only a connection that
could not be opened proves the request never left.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import aiohttp
import attrs
import yarl

from bitget_keys.errors import RequestTimeoutError, TransportError

__all__ = ["AiohttpTransport", "RawResponse", "Transport"]


@attrs.frozen
class RawResponse:
    """An HTTP answer, undecoded."""

    status: int
    body: bytes
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)


class Transport(Protocol):
    """Sends one request and returns the raw answer; raises `TransportError`."""

    async def send(
        self,
        method: str,
        url: yarl.URL,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        endpoint: str,
    ) -> RawResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """
    A `Transport` over an `aiohttp.ClientSession`.

    A session passed in is borrowed and never closed; otherwise one is created (inside
    the running loop, on first use) and closed by `aclose`. The session this transport
    creates never re-sends a request on its own; a borrowed one is used as it is
    (aiohttp 3.14 re-sends GETs once after a dropped keep-alive connection).
    """

    __slots__ = ("_closed", "_owns_session", "_session", "_timeout")

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: aiohttp.ClientTimeout,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._timeout = timeout
        self._closed = False

    def __repr__(self) -> str:
        owner = "owned" if self._owns_session else "borrowed"
        state = "closed" if self._closed else "open"
        return f"<AiohttpTransport {owner} session, {state}>"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Created here, inside the running loop, never in __init__.
            session = aiohttp.ClientSession(timeout=self._timeout)
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
        try:
            async with session.request(
                method,
                url,
                headers=dict(headers),
                data=body,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                payload = await response.read()
                return RawResponse(response.status, payload, dict(response.headers))
        except aiohttp.ConnectionTimeoutError as exc:
            raise RequestTimeoutError(
                endpoint, "timed out while connecting", maybe_sent=False
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransportError(
                endpoint, f"could not connect ({type(exc).__name__})", maybe_sent=False
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
