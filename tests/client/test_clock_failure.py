"""
Clients sharing one `ServerClock` when Bitget's time endpoint does not answer.

Over the real aiohttp stack to a server on 127.0.0.1 that accepts connections and never
says a word: each measurement waits out the whole request timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from bitget_keys import Client, ClientConfig, Credentials, ServerClock
from bitget_keys.errors import RequestTimeoutError
from bitget_keys.testing import Unpaced


@pytest.fixture
async def silent_url() -> AsyncIterator[tuple[str, list[int]]]:
    """A server that holds every connection open without an answer; its connections."""
    seen: list[int] = []
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(1)
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_callers_waiting_for_a_measurement_that_got_no_answer_share_its_failure(
    credentials: Credentials, silent_url: tuple[str, list[int]]
) -> None:
    """
    Three clients ask for the clock at once: one request goes out, and all three fail
    with its timeout instead of each waiting a whole timeout in turn. A later call
    measures again.
    """
    url, connections = silent_url
    clock = ServerClock()
    config = ClientConfig(request_timeout=0.5, max_connect_retries=0)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                Client(
                    credentials,
                    base_url=url,
                    config=config,
                    scheduler=Unpaced(),
                    server_clock=clock,
                )
            )
            for _ in range(3)
        ]
        async with asyncio.timeout(10):
            failures = await asyncio.gather(
                *(client.account_info() for client in clients), return_exceptions=True
            )
        assert all(isinstance(exc, RequestTimeoutError) for exc in failures), failures
        assert len({id(exc) for exc in failures}) == 3
        assert len(connections) == 1
        with pytest.raises(RequestTimeoutError):
            await clients[0].account_info()
        assert len(connections) == 2
