"""Shared fixtures: credentials, mocked HTTP, and a client bound to the mock."""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioresponses.core as aioresponses_core
import pytest
from aiohttp import ClientResponse
from aioresponses import aioresponses

from bitget_keys import Client, Credentials, Secret
from bitget_keys.provision import vault_kdf
from bitget_keys.testing import LoopClock
from tests.limits.scheduling import START, PyTask, python_task

API_KEY = "bg_test_api_key_0001"
SECRET_KEY = "test-secret-key-0123456789abcdef"
PASSPHRASE = "CallerPass1234"
UID = "1000000001"
#: Fixed wall clock for signing, so signatures are reproducible.
NOW_MS = 1_700_000_000_000


@pytest.fixture(autouse=True)
def cheap_vault_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    New vaults made in the test process derive their key with `vault_kdf.FAST_INSECURE`:
    the suite makes hundreds, and the real Argon2id costs about 0.2 s each. Tests of the
    derivation itself put `vault_kdf.ARGON2ID` back; processes the tests start (apply,
    workers) use the real one.
    """
    monkeypatch.setattr(vault_kdf, "ARGON2ID", vault_kdf.FAST_INSECURE)


@pytest.fixture(autouse=True)
def secrets_seen(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[set[str]]:
    """
    Record every `Secret` made during a test, and fail the test if any of them (or a
    fixture secret) shows up in its DEBUG log output.
    """
    seen: set[str] = {SECRET_KEY, PASSPHRASE}
    original_init = Secret.__init__

    def recording_init(self: Secret, value: str) -> None:
        original_init(self, value)
        if len(value) >= 6:
            seen.add(value)

    monkeypatch.setattr(Secret, "__init__", recording_init)
    yield seen
    records = caplog.get_records("setup") + caplog.get_records("call")
    logged = "\n".join(f"{record.getMessage()} {record.exc_text or ''}" for record in records)
    leaked = sorted(value for value in seen if value in logged)
    assert not leaked, f"{len(leaked)} secret value(s) appeared in the log output"


@pytest.fixture(params=["c-task", "python-task"])
async def clock(request: pytest.FixtureRequest) -> AsyncIterator[LoopClock]:
    """
    A fake loop clock from START; every test that uses it runs with asyncio's C tasks and
    with its pure-Python ones, since the schedulers' waiters speak asyncio's future
    protocol to whichever task awaits them.
    """
    if request.param == "python-task":
        asyncio.get_running_loop().set_task_factory(python_task)
    probe = asyncio.ensure_future(asyncio.sleep(0))
    assert (type(probe) is PyTask) == (request.param == "python-task")
    await probe
    with LoopClock(start=START) as fake:
        yield fake


def pytest_report_header() -> list[str]:
    names = ("aiohttp", "attrs", "cattrs", "aiolimiter", "aioresponses", "pytest-asyncio")
    return [", ".join(f"{name} {importlib.metadata.version(name)}" for name in names)]


class _NoUpload:
    output_size = 0


class _CompatResponse(ClientResponse):
    """
    aioresponses 0.7.9 builds `ClientResponse` without the ``stream_writer`` argument
    aiohttp 3.14 requires (pnuckowski/aioresponses#289); supply a finished one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _NoUpload())
        super().__init__(*args, **kwargs)


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """Patch aiohttp so requests are recorded and answered from registered responses."""
    monkeypatch.setattr(aioresponses_core, "ClientResponse", _CompatResponse)
    with aioresponses() as mock:
        yield mock


@pytest.fixture
def credentials() -> Credentials:
    return Credentials(API_KEY, SECRET_KEY, PASSPHRASE, uid=UID)


@pytest.fixture
async def client(credentials: Credentials, mocked: aioresponses) -> AsyncIterator[Client]:
    """A client on the default base URL with a fixed clock and no clock sync."""
    from bitget_keys import ClientConfig
    from bitget_keys.testing import Unpaced

    config = ClientConfig(sync_clock=False, connect_retry_backoff=0.001)
    scheduler = Unpaced(retries=5)
    async with Client(
        credentials, config=config, scheduler=scheduler, clock_ms=lambda: NOW_MS
    ) as c:
        yield c
