"""Egress through a proxy: `ClientConfig.proxy`/`trust_env` against `LoopbackProxy`."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest

from bitget_keys import Client, ClientConfig
from bitget_keys._transport import AiohttpTransport, masked_proxy
from bitget_keys.errors import ConfigurationError, InvalidRequestError, TransportError
from bitget_keys.testing import EmulatorAccount, Limits, LoopbackProxy, Unpaced
from tests.testing.watching import WatchingEmulator

MASTER = EmulatorAccount(
    uid="1000000001", api_key="bg_master", secret_key="master-secret-0001", passphrase="MasterPass1"
)
PROXY_PASSWORD = "proxy-pass-7f3k9q"
CONFIG = ClientConfig(sync_clock=False, max_connect_retries=0)


def watching() -> WatchingEmulator:
    return WatchingEmulator([MASTER], limits=Limits(per_uid=False))


def unpaced_client(**kwargs: Any) -> Client:
    """A client of MASTER that does not wait for rate-limit slots (these are transport facts)."""
    return Client(MASTER.credentials, scheduler=Unpaced(), **kwargs)


def config(proxy: str | None = None, *, trust_env: bool = False) -> ClientConfig:
    return ClientConfig(sync_clock=False, max_connect_retries=0, proxy=proxy, trust_env=trust_env)


async def test_a_client_reaches_the_emulator_from_the_proxys_source_address() -> None:
    async with (
        watching() as emulator,
        LoopbackProxy(source="127.0.0.2") as proxy,
    ):
        async with unpaced_client(base_url=emulator.base_url, config=config(proxy.url)) as client:
            info = await client.account_info()
            await client.account_info()
        assert info.user_id == MASTER.uid
        assert emulator.ips_by_key() == {MASTER.api_key: {"127.0.0.2"}}
        assert proxy.requests == 2
        # Without the proxy the same client arrives from 127.0.0.1: the address is the proxy's.
        async with unpaced_client(base_url=emulator.base_url, config=CONFIG) as client:
            await client.account_info()
        assert emulator.ips_by_key() == {MASTER.api_key: {"127.0.0.2", "127.0.0.1"}}
        assert proxy.requests == 2


async def test_each_proxy_counts_against_its_own_ip_at_the_emulator() -> None:
    async with (
        watching() as emulator,
        LoopbackProxy(source="127.0.0.2") as first,
        LoopbackProxy(source="127.0.0.3") as second,
    ):
        for proxy in (first, second, second):
            async with unpaced_client(
                base_url=emulator.base_url, config=config(proxy.url)
            ) as client:
                await client.account_info()
        assert [ip for ip, _ in emulator.seen] == ["127.0.0.2", "127.0.0.3", "127.0.0.3"]
        assert (first.requests, second.requests) == (1, 2)


async def test_credentials_in_the_proxy_url_authenticate_and_stay_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        watching() as emulator,
        LoopbackProxy(source="127.0.0.2", auth=("desk", PROXY_PASSWORD)) as proxy,
    ):
        good = config(proxy.url)
        async with unpaced_client(base_url=emulator.base_url, config=good) as client:
            await client.account_info()
            shown = [repr(good), str(good), repr(client), repr(client._transport)]
        assert proxy.requests == 1
        assert proxy.refused == 0
        # The proxy's header is the proxy's: the emulator never receives it.
        wrong = config(proxy.url.replace(PROXY_PASSWORD, "not-the-password"))
        async with unpaced_client(base_url=emulator.base_url, config=wrong) as client:
            with pytest.raises(InvalidRequestError, match="407") as refused:
                await client.account_info()
        assert proxy.refused == 1
        shown += [repr(wrong), str(refused.value), repr(proxy)]
    assert "http://***@127.0.0.1:" in repr(good)
    for text in [*shown, caplog.text]:
        assert PROXY_PASSWORD not in text
        assert "not-the-password" not in text
        assert "desk" not in text


async def test_an_unreachable_proxy_is_a_connect_failure_that_names_no_credentials() -> None:
    async with watching() as emulator:
        dead = f"http://desk:{PROXY_PASSWORD}@127.0.0.1:1"
        async with unpaced_client(base_url=emulator.base_url, config=config(dead)) as client:
            with pytest.raises(TransportError) as failed:
                await client.account_info()
    assert failed.value.maybe_sent is False
    assert emulator.seen == []
    chain = f"{failed.value} {failed.value.__cause__!r} {failed.value.__cause__}"
    assert PROXY_PASSWORD not in chain


async def test_trust_env_takes_the_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    async with (
        watching() as emulator,
        LoopbackProxy(source="127.0.0.2") as proxy,
    ):
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        url = emulator.base_url
        async with unpaced_client(base_url=url, config=CONFIG) as client:
            await client.account_info()
        assert emulator.seen[-1][0] == "127.0.0.1"  # the environment is ignored by default
        async with unpaced_client(base_url=url, config=config(trust_env=True)) as client:
            await client.account_info()
        assert emulator.seen[-1][0] == "127.0.0.2"
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with unpaced_client(base_url=url, config=config(trust_env=True)) as client:
            await client.account_info()
        assert emulator.seen[-1][0] == "127.0.0.1"
        assert proxy.requests == 1


async def test_a_borrowed_session_goes_through_the_proxy_too() -> None:
    async with (
        watching() as emulator,
        LoopbackProxy(source="127.0.0.3") as proxy,
        aiohttp.ClientSession() as session,
    ):
        async with unpaced_client(
            base_url=emulator.base_url,
            config=config(proxy.url),
            session=session,
        ) as client:
            await client.account_info()
        assert emulator.seen == [("127.0.0.3", MASTER.api_key)]


async def test_a_connect_tunnel_leaves_from_the_source_address() -> None:
    """What aiohttp sends a proxy for an https target: CONNECT, then bytes both ways."""
    async with (
        watching() as emulator,
        LoopbackProxy(source="127.0.0.2") as proxy,
    ):
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        target = f"127.0.0.1:{emulator.port}"
        writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 200 Connection established\r\n\r\n"
        writer.write(
            f"GET /api/v2/public/time HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200")
        assert b'"serverTime"' in answer
        assert emulator.seen == [("127.0.0.2", None)]
        assert (proxy.tunnels, proxy.requests) == (1, 0)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("socks5://desk:secretpw@127.0.0.1:1080", "SOCKS proxies are not supported"),
        ("ftp://127.0.0.1:21", "must start with http:// or https://"),
        ("http://desk:secretpw@127.0.0.1:3128/path", "no path or query"),
        ("http://desk:secretpw@127.0.0.1:3128?x=1", "no path or query"),
        ("http://desk:secretpw@127.0.0.1:99999", "not a URL that can be parsed"),
        ("127.0.0.1:3128", "must start with http:// or https://"),
        ("http://", "must name the proxy's host"),
        # An unencoded '/' in the password makes the rest read as a host, port and path.
        ("http://desk:1234/secretpw@10.0.0.5:3128", "no path or query"),
        ("http://desk:/secretpw@127.0.0.1:1", "no path or query"),
    ],
)
def test_a_bad_proxy_url_is_refused_without_showing_its_credentials(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=r"ClientConfig\.proxy") as refused:
        ClientConfig(proxy=url)
    assert problem in str(refused.value)
    assert "secretpw" not in str(refused.value)
    assert "desk" not in str(refused.value)
    with pytest.raises(ConfigurationError):
        AiohttpTransport(timeout=aiohttp.ClientTimeout(total=1), proxy=url)


def test_masked_proxy_hides_user_and_password() -> None:
    assert masked_proxy("http://desk:pw@10.0.0.5:3128") == "http://***@10.0.0.5:3128"
    assert masked_proxy("https://10.0.0.5:3128") == "https://10.0.0.5:3128"
    assert "pw" not in repr(ClientConfig(proxy="https://:pw@10.0.0.5:3128"))


async def test_proxy_settings_a_given_transport_or_session_would_ignore_are_refused() -> None:
    async with watching() as emulator:
        with pytest.raises(ConfigurationError, match="transport passed in"):
            unpaced_client(transport=emulator.transport(), config=config("http://h:1"))
        with pytest.raises(ConfigurationError, match="transport passed in"):
            unpaced_client(transport=emulator.transport(), config=config(trust_env=True))
        async with aiohttp.ClientSession() as session:
            with pytest.raises(ConfigurationError, match="trust_env=True"):
                unpaced_client(session=session, config=config(trust_env=True))


async def test_an_https_target_is_tunnelled_with_the_proxy_credentials_on_connect() -> None:
    """
    For an https:// base URL the credentials go on the CONNECT (the emulator speaks plain
    HTTP, so the TLS handshake inside the tunnel then fails: what matters is the tunnel).
    """
    async with (
        watching() as emulator,
        LoopbackProxy(source="127.0.0.2", auth=("desk", PROXY_PASSWORD)) as proxy,
    ):
        https = f"https://127.0.0.1:{emulator.port}"
        async with unpaced_client(base_url=https, config=config(proxy.url)) as client:
            with pytest.raises(TransportError):
                await client.account_info()
        assert (proxy.tunnels, proxy.refused) == (1, 0)
        anonymous = config(f"http://127.0.0.1:{proxy.port}")
        async with unpaced_client(base_url=https, config=anonymous) as client:
            with pytest.raises(
                TransportError, match="refused the tunnel \\(HTTP 407\\)"
            ) as refused:
                await client.account_info()
        assert refused.value.maybe_sent is False
        assert (proxy.tunnels, proxy.refused) == (1, 1)
