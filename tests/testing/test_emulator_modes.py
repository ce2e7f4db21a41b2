"""The emulator's account modes: who gets 40084 and 40085, and how a mode is configured."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import orjson
import pytest

from bitget_keys import _endpoints as ep
from bitget_keys.errors import ConfigurationError
from bitget_keys.testing import Emulator, EmulatorAccount, Faults, Limits, load_accounts_file
from tests.testing.test_emulator import BROKER, MASTER, _signed, exchange_request
from tests.testing.test_emulator_unified import (
    ACCOUNTS,
    CREATE_SUB,
    UTA,
    UTA_BROKER,
    Exchange,
    key_body,
)

CLASSIC_REFUSAL = (
    "You are in Classic Account mode, and the Unified Account API is not supported at this time"
)
UNIFIED_REFUSAL = (
    "You are in Unified Account mode, and the Classic Account API is not supported at this time"
)


# -- account modes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint", [e for e in ep.ENDPOINTS.values() if e.family == "v3"], ids=lambda e: e.name
)
def test_a_classic_master_gets_40084_from_every_v3_endpoint(endpoint: ep.Endpoint) -> None:
    """Refused before anything is read or done, and audited as a rejection."""
    exchange = Exchange()
    for account in (MASTER, BROKER):
        if endpoint.method == "POST":
            status, answer = exchange.post(endpoint.path, {"username": "desk"}, account)
        else:
            status, answer = exchange.get(endpoint.path, account)
        assert (status, answer["code"], answer["msg"]) == (400, "40084", CLASSIC_REFUSAL)
        assert answer["data"] is None
        lane = exchange.emu.audit.lane(account.uid, endpoint.name)
        assert (lane.rejected, lane.accepted) == (1, [])
    assert exchange.emu.exchange.subaccounts(MASTER.uid) == []


@pytest.mark.parametrize(
    "endpoint",
    [e for e in ep.ENDPOINTS.values() if e.family == "v2" and e.signed],
    ids=lambda e: e.name,
)
def test_a_unified_master_gets_40085_from_every_v2_endpoint(endpoint: ep.Endpoint) -> None:
    exchange = Exchange()
    for account in (UTA, UTA_BROKER):
        body = b"[]" if endpoint.name == "batch_create_virtual_subaccounts" else b"{}"
        sent = body if endpoint.method == "POST" else b""
        status, answer = exchange_request(
            exchange.emu, account, endpoint.method, endpoint.path, sent, exchange.clock
        )
        assert (status, answer["code"], answer["msg"]) == (400, "40085", UNIFIED_REFUSAL)
        assert exchange.emu.audit.lane(account.uid, endpoint.name).rejected == 1


def test_account_mode_and_the_older_unified_flag() -> None:
    assert MASTER.mode == "classic"
    assert not MASTER.unified
    old = EmulatorAccount(uid="1", api_key="k", secret_key="s", passphrase="p", unified=True)
    assert (old.mode, old.unified) == ("unified", True)
    assert attrs.evolve(old, mode="classic").unified is False
    with pytest.raises(ValueError, match="mode must be 'classic' or 'unified'"):
        EmulatorAccount(uid="1", api_key="k", secret_key="s", passphrase="p", mode="hybrid")
    with pytest.raises(ValueError, match="contradicts"):
        EmulatorAccount(
            uid="1", api_key="k", secret_key="s", passphrase="p", unified=True, mode="classic"
        )


# -- the accounts file -----------------------------------------------------------------------

_BASE = '[[accounts]]\nuid = "1"\napi_key = "k"\nsecret_key = "s"\npassphrase = "p"\n'


@pytest.mark.parametrize(
    ("extra", "outcome"),
    [
        ("", "classic"),
        ('mode = "unified"\n', "unified"),
        ("unified = true\n", "unified"),
        ('mode = "classic"\n', "classic"),
        ("unified = false\n", "classic"),
        ('mode = "hybrid"\n', "mode must be 'classic' or 'unified'"),
        ("mode = 1\n", "mode must be a string"),
        ('mode = "classic"\nunified = true\n', "contradicts"),
    ],
)
def test_accounts_file_mode(tmp_path: Path, extra: str, outcome: str) -> None:
    """A mode is read, or refused with a ConfigurationError naming the file and the field."""
    path = tmp_path / "accounts.toml"
    path.write_text(_BASE + extra)
    if outcome in ("classic", "unified"):
        assert load_accounts_file(path)[0][0].mode == outcome
        return
    with pytest.raises(ConfigurationError, match=outcome) as caught:
        load_accounts_file(path)
    assert str(path) in str(caught.value)
    assert "accounts[0]" in str(caught.value)


# -- over loopback ---------------------------------------------------------------------------


async def send(
    emulator: Emulator, method: str, path: str, body: bytes = b""
) -> tuple[int, dict[str, Any]]:
    """A request signed by the unified master, over 127.0.0.1."""
    stamp = str(time.time_ns() // 1_000_000)
    headers = {
        "ACCESS-KEY": UTA.api_key,
        "ACCESS-SIGN": _signed(UTA.secret_key.reveal(), stamp, method, path, "", body),
        "ACCESS-TIMESTAMP": stamp,
        "ACCESS-PASSPHRASE": UTA.passphrase.reveal(),
        "Content-Type": "application/json",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, emulator.base_url + path, data=body or None, headers=headers
        ) as response,
    ):
        return response.status, orjson.loads(await response.read())


async def test_the_v3_family_over_loopback() -> None:
    """The same answers through the real HTTP stack on 127.0.0.1."""
    async with Emulator(ACCOUNTS, limits=Limits(per_uid=False)) as emulator:
        status, answer = await send(emulator, "GET", "/api/v3/account/settings")
        assert (status, answer["data"]["accountMode"]) == (200, "unified")
        status, answer = await send(emulator, "POST", CREATE_SUB, b'{"username":"desk"}')
        assert (status, answer["data"]["username"]) == (200, "desk@virtual-bitget.com")
        status, answer = await send(emulator, "GET", "/api/v2/spot/account/info")
        assert (status, answer["code"]) == (400, "40085")


async def test_a_dropped_v3_key_create_names_the_key_it_made() -> None:
    """The fault record of a withheld create-sub-api answer holds the key that was made."""
    faults = Faults(drop_after_commit=1.0, endpoints=frozenset({"create_uta_subaccount_api_key"}))
    async with Emulator(ACCOUNTS, limits=Limits(per_uid=False), faults=faults) as emulator:
        _, answer = await send(emulator, "POST", CREATE_SUB, b'{"username":"desk"}')
        body = orjson.dumps(key_body(answer["data"]["subUid"]))
        with pytest.raises(aiohttp.ClientError):
            await send(emulator, "POST", "/api/v3/user/create-sub-api", body)
    made = emulator.exchange.subaccounts(UTA.uid)[0]["keys"]
    assert [dropped.api_keys for dropped in emulator.dropped] == [(made[0][1],)]
