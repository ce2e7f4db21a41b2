"""
`LoopbackProxy`: a real HTTP forward proxy on 127.0.0.1, for tests of egress through proxies.

It speaks what aiohttp sends a proxy: absolute-form requests (``GET http://host/path``)
for ``http://`` targets, which it forwards with their bodies and relays the answers of,
and ``CONNECT host:port`` tunnels for ``https://`` ones, which it joins byte for byte.
Its upstream connections leave from a chosen loopback address (``source``; all of
127.0.0.0/8 is loopback on Linux), so the emulator, which counts the per-IP limit by the
address a request arrives from, sees each proxy as its own public IP.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import urllib.parse
from types import TracebackType
from typing import Final, Self

import yarl

from bitget_keys._secret import Secret
from bitget_keys.errors import ClientStateError

__all__ = ["LoopbackProxy"]

_LOCAL_IP: Final = "127.0.0.1"
_CHUNK: Final = 65536
#: Headers meant for the proxy itself, never passed on.
_PROXY_ONLY: Final = frozenset({"proxy-authorization", "proxy-connection"})
_BAD_GATEWAY: Final = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_BAD_REQUEST: Final = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_AUTH_REQUIRED: Final = (
    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
    b'Proxy-Authenticate: Basic realm="loopback"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
)

_Headers = list[tuple[str, str]]


class _Closed(Exception):  # noqa: N818 - control flow inside a connection's handler
    """The conversation on a connection is over."""


def _value(headers: _Headers, name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, _Headers]:
    """A request or status line and its headers; `_Closed` at a clean end of stream."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise _Closed from exc
    first, *lines = raw.decode("latin-1").split("\r\n")
    headers = [
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in lines if line)
    ]
    return first, headers


def _head_bytes(first: str, headers: _Headers) -> bytes:
    lines = [first, *(f"{name}: {value}" for name, value in headers), "", ""]
    return "\r\n".join(lines).encode("latin-1")


async def _relay_body(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, headers: _Headers, *, to_eof: bool
) -> None:
    """Copy one message body framed by ``headers`` (chunked, a length, or to the end)."""
    if "chunked" in (_value(headers, "transfer-encoding") or "").lower():
        while True:
            line = await source.readuntil(b"\r\n")
            sink.write(line)
            size = int(line.split(b";", 1)[0], 16)
            if size == 0:
                while (trailer := await source.readuntil(b"\r\n")) != b"\r\n":
                    sink.write(trailer)
                sink.write(b"\r\n")
                return
            sink.write(await source.readexactly(size + 2))
    length = _value(headers, "content-length")
    if length is not None:
        left = int(length)
        while left:
            piece = await source.readexactly(min(left, _CHUNK))
            sink.write(piece)
            left -= len(piece)
    elif to_eof:
        while piece := await source.read(_CHUNK):
            sink.write(piece)
        raise _Closed


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while piece := await source.read(_CHUNK):
            sink.write(piece)
            await sink.drain()
    with contextlib.suppress(ConnectionError, OSError):
        if sink.can_write_eof():
            sink.write_eof()


class _Link:
    """A client connection's kept-alive connection to its current target."""

    __slots__ = ("key", "reader", "writer")

    def __init__(self) -> None:
        self.key: tuple[str, int] | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.key = self.reader = self.writer = None


class LoopbackProxy:
    """
    A forward HTTP proxy on ``host`` (127.0.0.1) whose upstream connections leave from
    ``source``.

    ``async with LoopbackProxy(source="127.0.0.2") as proxy:`` serves it; give
    ``proxy.url`` as a client's ``ClientConfig(proxy=...)``. With ``auth=(user,
    password)`` it answers 407 to requests without that ``Proxy-Authorization``, and
    ``url`` carries the credentials (``repr`` does not). ``requests`` counts forwarded
    requests, ``tunnels`` CONNECT tunnels opened, ``refused`` the 407s.
    """

    def __init__(
        self,
        *,
        source: str = _LOCAL_IP,
        host: str = _LOCAL_IP,
        port: int = 0,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.source = source
        self.host = host
        self.port = port
        self._auth = None if auth is None else (auth[0], Secret(auth[1]))
        #: Absolute-form requests forwarded, CONNECT tunnels opened, requests refused 407.
        self.requests = 0
        self.tunnels = 0
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        where = f"http://{self.host}:{self.port}" if self._server is not None else "not serving"
        return (
            f"<LoopbackProxy {where} from {self.source}{' with auth' if self._auth else ''}: "
            f"{self.requests} requests, {self.tunnels} tunnels, {self.refused} refused>"
        )

    @property
    def url(self) -> str:
        """The proxy URL to give a client, with the user name and password when set."""
        if self._server is None:
            msg = "this LoopbackProxy is not serving: use it with `async with`"
            raise ClientStateError(msg)
        credentials = ""
        if self._auth is not None:
            user, password = self._auth
            quoted = urllib.parse.quote(password.reveal(), safe="")
            credentials = f"{urllib.parse.quote(user, safe='')}:{quoted}@"
        return f"http://{credentials}{self.host}:{self.port}"

    async def __aenter__(self) -> Self:
        if self._server is not None:
            msg = "this LoopbackProxy is already serving"
            raise ClientStateError(msg)
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop serving and cut every open connection. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await server.wait_closed()

    # -- one client connection ---------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - a stream handler always runs in a task
        self._handlers.add(task)
        link = _Link()
        try:
            while True:
                await self._one_request(reader, writer, link)
        except (_Closed, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ValueError:
            with contextlib.suppress(ConnectionError):
                writer.write(_BAD_REQUEST)
        except asyncio.CancelledError:
            if self._server is not None:
                raise
            # Cut by `aclose`: end quietly, as Python 3.11's streams log a cancelled
            # connection handler as an error in the loop's exception handler.
        finally:
            link.close()
            writer.close()
            self._handlers.discard(task)

    def _authorized(self, headers: _Headers) -> bool:
        if self._auth is None:
            return True
        user, password = self._auth
        expected = base64.b64encode(f"{user}:{password.reveal()}".encode()).decode()
        given = _value(headers, "proxy-authorization") or ""
        return hmac.compare_digest(given.encode(), f"Basic {expected}".encode())

    async def _one_request(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: _Link,
    ) -> None:
        """Serve one request on the connection, keeping ``link`` open for the next."""
        first, headers = await _read_head(reader)
        method, target, version = first.split(" ", 2)
        if not self._authorized(headers):
            self.refused += 1
            writer.write(_AUTH_REQUIRED)
            raise _Closed
        if method == "CONNECT":
            await self._tunnel(target, reader, writer, link)
            raise _Closed
        url = yarl.URL(target)
        if not url.absolute or url.scheme != "http" or url.host is None:
            raise ValueError(target)
        key = (url.host, url.port or 80)
        up_reader, up_writer = await self._open(key, writer, link)
        kept = [(name, value) for name, value in headers if name.lower() not in _PROXY_ONLY]
        up_writer.write(_head_bytes(f"{method} {url.raw_path_qs} {version}", kept))
        await _relay_body(reader, up_writer, headers, to_eof=False)
        await up_writer.drain()
        status, answer = await _read_head(up_reader)
        writer.write(_head_bytes(status, answer))
        bodiless = method == "HEAD" or status.split(" ")[1] in {"204", "304"}
        if not bodiless:
            await _relay_body(up_reader, writer, answer, to_eof=True)
        await writer.drain()
        self.requests += 1
        closing = f"{_value(answer, 'connection')} {_value(headers, 'connection')}".lower()
        if "close" in closing:
            raise _Closed

    async def _open(
        self, key: tuple[str, int], writer: asyncio.StreamWriter, link: _Link
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """
        ``link``'s connection to ``key``, opened from the source address when it is not
        open already; a 502 to the client when that fails.
        """
        reader, upstream = link.reader, link.writer
        if link.key == key and reader and upstream and not upstream.is_closing():
            return reader, upstream
        link.close()
        try:
            reader, upstream = await asyncio.open_connection(*key, local_addr=(self.source, 0))
        except OSError:
            writer.write(_BAD_GATEWAY)
            raise _Closed from None
        link.key, link.reader, link.writer = key, reader, upstream
        return reader, upstream

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(target)
        up_reader, up_writer = await self._open((host.strip("[]"), int(port)), writer, link)
        self.tunnels += 1
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
