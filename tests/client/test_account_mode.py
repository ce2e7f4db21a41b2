"""The account mode of each UID: learned, kept, shared, forgotten, and updated by refusals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aioresponses import aioresponses

from bitget_keys import Client, Credentials
from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys._client import AccountModes, shared_account_modes
from bitget_keys.errors import (
    AccountModeError,
    ClassicAccountModeError,
    PermissionDeniedError,
    UnifiedAccountModeError,
)
from bitget_keys.testing import Unpaced
from tests.client.test_client import BASE, E2_REQUEST, calls, fail, ok
from tests.client.test_client_v3 import (
    ACCOUNT_INFO,
    CLASSIC_TEXT,
    CREATE_KEY,
    SETTINGS,
    UNIFIED_TEXT,
    UTA_KEY,
    Call,
    make_client,
    settings,
)
from tests.conftest import API_KEY, PASSPHRASE, SECRET_KEY, UID


@pytest.mark.parametrize(
    ("mode", "family"), [("unified", "v3"), ("hybrid", "v3")], ids=["unified", "hybrid"]
)
async def test_account_mode_from_settings(
    client: Client, mocked: aioresponses, mode: str, family: str
) -> None:
    """The settings' accountMode is the answer, and it is kept: a second call sends nothing."""
    mocked.get(BASE + SETTINGS, payload=settings(mode))
    assert client.cached_account_mode() is None
    first = await client.account_mode()
    assert first == mode
    assert first.family == family
    assert await client.account_mode() is first
    assert client.cached_account_mode() is first
    assert len(calls(mocked)) == 1


async def test_classic_refusal_means_classic(client: Client, mocked: aioresponses) -> None:
    """40084 from the settings is the answer CLASSIC (v2 family), kept like any other."""
    mocked.get(BASE + SETTINGS, status=400, payload=fail("40084", CLASSIC_TEXT))
    assert await client.account_mode() is m.AccountMode.CLASSIC
    assert await client.account_mode() is m.AccountMode.CLASSIC
    assert client.account_modes.get(UID) is m.AccountMode.CLASSIC
    assert len(calls(mocked)) == 1


async def test_mode_is_shared_by_the_clients_of_a_uid(
    credentials: Credentials, mocked: aioresponses
) -> None:
    """What one client learned, another client of the UID uses; a private registry does not."""
    mocked.get(BASE + SETTINGS, payload=settings("unified"), repeat=True)
    async with make_client(credentials) as first, make_client(credentials) as second:
        assert first.account_modes is second.account_modes is shared_account_modes()
        assert await first.account_mode() is m.AccountMode.UNIFIED
        assert await second.account_mode() is m.AccountMode.UNIFIED
        assert len(calls(mocked)) == 1
        async with make_client(credentials, account_modes=AccountModes()) as private:
            assert await private.account_mode() is m.AccountMode.UNIFIED
        assert len(calls(mocked)) == 2


@pytest.mark.parametrize("mode", ["upgrading", "switching"])
async def test_transitional_mode_is_not_kept(
    client: Client, mocked: aioresponses, mode: str
) -> None:
    """A mode change in progress is answered but asked again next time (and drops the old one)."""
    client.account_modes.record(UID, m.AccountMode.CLASSIC)
    client.forget_account_mode()
    mocked.get(BASE + SETTINGS, payload=settings(mode))
    mocked.get(BASE + SETTINGS, payload=settings("unified"))
    result = await client.account_mode()
    assert result == mode
    assert result.family is None
    assert client.cached_account_mode() is None
    assert await client.account_mode() is m.AccountMode.UNIFIED
    assert len(calls(mocked)) == 2


def test_transitional_mode_drops_what_was_kept() -> None:
    """An account seen switching will answer in another family: the old mode goes."""
    modes = AccountModes()
    modes.record(UID, m.AccountMode.CLASSIC)
    modes.record(UID, m.AccountMode.UPGRADING)
    assert modes.get(UID) is None


async def test_forget_asks_again(client: Client, mocked: aioresponses) -> None:
    """After forget_account_mode the next account_mode sends the settings request again."""
    mocked.get(BASE + SETTINGS, payload=settings("unified"))
    mocked.get(BASE + SETTINGS, status=400, payload=fail("40084", CLASSIC_TEXT))
    assert await client.account_mode() is m.AccountMode.UNIFIED
    client.forget_account_mode()
    assert client.cached_account_mode() is None
    assert await client.account_mode() is m.AccountMode.CLASSIC
    assert len(calls(mocked)) == 2


async def test_unified_key_learns_its_uid_from_the_settings(mocked: aioresponses) -> None:
    """
    Without a UID: account-info answers 40085, so the settings tell the UID (and the
    mode); both calls are paced on the key's own lane, and the mode costs nothing more.
    """
    mocked.get(BASE + ACCOUNT_INFO, status=400, payload=fail("40085", UNIFIED_TEXT))
    mocked.get(BASE + SETTINGS, payload=settings("unified", uid="888"))
    mocked.post(BASE + "/api/v3/user/create-sub-api", payload=ok(UTA_KEY | {"secret": "S12345"}))
    scheduler = Unpaced()
    anonymous = Credentials(API_KEY, SECRET_KEY, PASSPHRASE)
    async with make_client(anonymous, scheduler=scheduler) as client:
        # A guard, not timing: pacing the settings call on the UID's lane would wait for
        # the very UID it is learning, forever.
        async with asyncio.timeout(5):
            assert await client.uid() == "888"
        assert await client.account_mode() is m.AccountMode.UNIFIED
        await client.create_uta_subaccount_api_key(CREATE_KEY)
    assert [url.path for _, url, _ in calls(mocked)] == [
        ACCOUNT_INFO,
        SETTINGS,
        "/api/v3/user/create-sub-api",
    ]
    key_lane = f"key:{API_KEY}"
    assert [(uid, name) for uid, name, _, _ in scheduler.observed] == [
        (key_lane, ep.ACCOUNT_INFO.name),
        (key_lane, ep.ACCOUNT_SETTINGS.name),
        ("888", ep.CREATE_UTA_SUBACCOUNT_API_KEY.name),
    ]


async def test_classic_key_without_uid_mode(mocked: aioresponses) -> None:
    """A classic key learns its UID from account-info, then 40084 from the settings."""
    mocked.get(BASE + ACCOUNT_INFO, payload=ok({"userId": "999"}))
    mocked.get(BASE + SETTINGS, status=400, payload=fail("40084", CLASSIC_TEXT))
    anonymous = Credentials(API_KEY, SECRET_KEY, PASSPHRASE)
    async with make_client(anonymous) as client:
        assert await client.account_mode() is m.AccountMode.CLASSIC
        assert client.account_modes.get("999") is m.AccountMode.CLASSIC
    assert len(calls(mocked)) == 2


REFUSED_CREATES = [
    pytest.param(
        None,
        "/api/v2/user/create-virtual-subaccount-apikey",
        fail("40085", UNIFIED_TEXT),
        lambda c: c.create_virtual_subaccount_api_key(E2_REQUEST),
        UnifiedAccountModeError,
        m.AccountMode.UNIFIED,
        id="40085-unknown",
    ),
    pytest.param(
        m.AccountMode.HYBRID,
        "/api/v2/user/create-virtual-subaccount-apikey",
        fail("40085", UNIFIED_TEXT),
        lambda c: c.create_virtual_subaccount_api_key(E2_REQUEST),
        UnifiedAccountModeError,
        m.AccountMode.HYBRID,
        id="40085-hybrid-kept",
    ),
    pytest.param(
        m.AccountMode.UNIFIED,
        "/api/v3/user/create-sub-api",
        fail("40084", CLASSIC_TEXT),
        lambda c: c.create_uta_subaccount_api_key(CREATE_KEY),
        ClassicAccountModeError,
        m.AccountMode.CLASSIC,
        id="40084-replaces-unified",
    ),
]


@pytest.mark.parametrize(("kept", "path", "answer", "call", "error", "expected"), REFUSED_CREATES)
async def test_refusal_updates_the_mode_and_is_raised(
    client: Client,
    mocked: aioresponses,
    kept: m.AccountMode | None,
    path: str,
    answer: dict[str, Any],
    call: Call,
    error: type[AccountModeError],
    expected: m.AccountMode,
) -> None:
    """
    A 40085 on a v2 create marks the UID as v3-served (a hybrid mode stays hybrid), a
    40084 on a v3 one as classic; either reaches the caller, sent once and never resent.
    """
    if kept is not None:
        client.account_modes.record(UID, kept)
    mocked.post(BASE + path, status=400, payload=answer, repeat=True)
    with pytest.raises(error):
        await call(client)
    assert len(calls(mocked)) == 1
    assert client.cached_account_mode() is expected
    assert await client.account_mode() is expected
    assert len(calls(mocked)) == 1


@pytest.mark.parametrize(
    ("code", "text", "error", "mode", "family", "names"),
    [
        (
            "40084",
            CLASSIC_TEXT,
            ClassicAccountModeError,
            "classic",
            "v2",
            ("Classic Account mode", "v2", "create_virtual_subaccount_api_key"),
        ),
        (
            "40085",
            UNIFIED_TEXT,
            UnifiedAccountModeError,
            "unified",
            "v3",
            ("Unified Account mode", "v3", "create_uta_subaccount_api_key"),
        ),
    ],
    ids=["40084", "40085"],
)
async def test_mode_refusals_are_distinct_and_explain_themselves(
    client: Client,
    mocked: aioresponses,
    code: str,
    text: str,
    error: type[AccountModeError],
    mode: str,
    family: str,
    names: tuple[str, ...],
) -> None:
    """Each code has its own exception naming the mode, the family to use and the safety."""
    mocked.get(BASE + SETTINGS, status=400, payload=fail(code, text))
    with pytest.raises(AccountModeError) as info:
        await client.account_settings()
    exc = info.value
    assert type(exc) is error
    assert isinstance(exc, PermissionDeniedError)
    assert (exc.mode, exc.family, exc.code) == (mode, family, code)
    message = str(exc)
    for name in (*names, "nothing was carried out", "account_mode()"):
        assert name in message
