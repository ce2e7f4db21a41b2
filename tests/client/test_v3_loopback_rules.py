"""
The v3 rules over 127.0.0.1: each documented one refused before anything is sent, and
the ones only Bitget can know (a taken username, a full quota) raised as their classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from bitget_keys import Client
from bitget_keys import models as m
from bitget_keys.errors import ConflictError, QuotaExceededError, ValidationError
from bitget_keys.testing import Emulator, Limits
from tests.client.test_v3_loopback import (
    BROKER_KEY,
    BROKER_KEY_PASS,
    BROKER_SUB,
    IP,
    PASS,
    UTA,
    UTA_BROKER,
    broker_key,
    client_for,
    make_sub,
    new_key,
    requests_seen,
    seeded,
)

SUB = "5550099"
#: The passphrases the rules below refuse: never to be quoted back.
BAD_PASSPHRASES = ("Short12", "P4" * 16 + "x", "Pass_word12")


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with seeded(Limits(per_uid=False)) as emu:
        yield emu


def _update(**changes: Any) -> m.UpdateUTASubaccountAPIKeyRequest:
    return m.UpdateUTASubaccountAPIKeyRequest(api_key="bg_any", passphrase=PASS, **changes)


async def _first_sub(client: Client, page_size: int) -> list[m.UTASubaccount]:
    return [sub async for sub in client.iter_uta_subaccounts(page_size=page_size)]


Call = Callable[[Client], Awaitable[Any]]

# (id, the field the ValidationError names, the call that must send nothing)
RULES: list[tuple[str, str, Call]] = [
    (
        "username-uppercase",
        "username",
        lambda c: c.create_uta_subaccount(m.CreateUTASubaccountRequest(username="Desk")),
    ),
    (
        "username-too-long",
        "username",
        lambda c: c.create_uta_subaccount(m.CreateUTASubaccountRequest(username="a" * 21)),
    ),
    (
        "username-digits",
        "username",
        lambda c: c.create_uta_subaccount(m.CreateUTASubaccountRequest(username="desk1")),
    ),
    (
        "sub-note-too-long",
        "note",
        lambda c: c.create_uta_subaccount(
            m.CreateUTASubaccountRequest(username="desk", note="n" * 51)
        ),
    ),
    (
        "key-note-digit-first",
        "note",
        lambda c: c.create_uta_subaccount_api_key(new_key(SUB, "1bot")),
    ),
    ("key-note-space", "note", lambda c: c.create_uta_subaccount_api_key(new_key(SUB, "my bot"))),
    ("key-note-comma", "note", lambda c: c.create_uta_subaccount_api_key(new_key(SUB, "bot,one"))),
    (
        "type-unknown",
        "type",
        lambda c: c.create_uta_subaccount_api_key(new_key(SUB, type="admin")),
    ),
    (
        "permissions-empty",
        "permissions",
        lambda c: c.create_uta_subaccount_api_key(new_key(SUB, permissions=[])),
    ),
    (
        "permissions-not-uta",
        "permissions[1]",
        lambda c: c.create_uta_subaccount_api_key(
            new_key(SUB, permissions=["uta_mgt", "spot_trade"])
        ),
    ),
    (
        "ips-over-30",
        "ips",
        lambda c: c.create_uta_subaccount_api_key(
            new_key(SUB, ips=[f"203.0.113.{n}" for n in range(1, 32)])
        ),
    ),
    (
        "ips-ipv6",
        "ips[0]",
        lambda c: c.create_uta_subaccount_api_key(new_key(SUB, ips=["2001:db8::1"])),
    ),
    (
        "ips-not-an-address",
        "ips[1]",
        lambda c: c.create_uta_subaccount_api_key(new_key(SUB, ips=[IP, "desk.example"])),
    ),
    (
        "passphrase-short",
        "passphrase",
        lambda c: c.create_uta_subaccount_api_key(new_key(SUB, passphrase=BAD_PASSPHRASES[0])),
    ),
    (
        "passphrase-long",
        "passphrase",
        lambda c: c.create_uta_subaccount_api_key(new_key(SUB, passphrase=BAD_PASSPHRASES[1])),
    ),
    (
        "passphrase-symbol",
        "passphrase",
        lambda c: c.create_uta_subaccount_api_key(new_key(SUB, passphrase=BAD_PASSPHRASES[2])),
    ),
    (
        "update-type-alone",
        "permissions",
        lambda c: c.update_uta_subaccount_api_key(_update(type="read_only")),
    ),
    (
        "update-permissions-alone",
        "type",
        lambda c: c.update_uta_subaccount_api_key(_update(permissions=["uta_mgt"])),
    ),
    ("update-ips-empty", "ips", lambda c: c.update_uta_subaccount_api_key(_update(ips=()))),
    (
        "sub-list-limit-0",
        "limit",
        lambda c: c.list_uta_subaccounts(m.ListUTASubaccountsRequest(limit=0)),
    ),
    (
        "sub-list-limit-101",
        "limit",
        lambda c: c.list_uta_subaccounts(m.ListUTASubaccountsRequest(limit=101)),
    ),
    ("sub-iter-page-101", "limit", lambda c: _first_sub(c, 101)),
    (
        "key-list-limit-0",
        "limit",
        lambda c: c.list_uta_subaccount_api_keys(
            m.ListUTASubaccountAPIKeysRequest(sub_uid=SUB, limit=0)
        ),
    ),
    (
        "key-list-limit-101",
        "limit",
        lambda c: c.list_uta_subaccount_api_keys(
            m.ListUTASubaccountAPIKeysRequest(sub_uid=SUB, limit=101)
        ),
    ),
    (
        "broker-withdraw-readonly",
        "permissions",
        lambda c: c.create_uta_broker_subaccount_api_key(
            broker_key(perm_type="readonly", permissions=["uta_trade", "withdraw"])
        ),
    ),
    (
        "broker-modify-ip-list-empty",
        "ip_list",
        lambda c: c.modify_uta_broker_subaccount_api_key(
            m.ModifyUTABrokerSubaccountAPIKeyRequest(
                sub_uid=BROKER_SUB, api_key=BROKER_KEY, passphrase=BROKER_KEY_PASS, ip_list=()
            )
        ),
    ),
]


@pytest.mark.parametrize(("field", "call"), [rule[1:] for rule in RULES], ids=[r[0] for r in RULES])
async def test_a_documented_rule_is_refused_before_sending(
    emulator: Emulator, field: str, call: Call
) -> None:
    """A `ValidationError` naming the field, and the emulator saw no request at all."""
    async with client_for(emulator, UTA) as client:
        with pytest.raises(ValidationError) as caught:
            await call(client)
    assert field in caught.value.fields
    message = str(caught.value)
    assert all(secret not in message for secret in (PASS, BROKER_KEY_PASS, *BAD_PASSPHRASES))
    assert requests_seen(emulator) == 0
    assert emulator.exchange.subaccounts(UTA.uid) == []


# -- rules only Bitget can know ------------------------------------------------------------


async def test_a_taken_username_is_a_conflict(emulator: Emulator) -> None:
    async with client_for(emulator, UTA) as client:
        await make_sub(client, "desk")
        with pytest.raises(ConflictError) as caught:
            await make_sub(client, "desk")
    assert caught.value.code == "40060"
    assert len(emulator.exchange.subaccounts(UTA.uid)) == 1


async def test_full_quotas_are_quota_errors() -> None:
    limits = Limits(per_uid=False, max_uta_subaccounts=2, max_uta_keys=1)
    async with seeded(limits) as emulator:
        async with client_for(emulator, UTA) as client:
            first = await make_sub(client, "deska")
            await make_sub(client, "deskb")
            with pytest.raises(QuotaExceededError) as subs_full:
                await make_sub(client, "deskc")
            await client.create_uta_subaccount_api_key(new_key(first, "one"))
            with pytest.raises(QuotaExceededError) as keys_full:
                await client.create_uta_subaccount_api_key(new_key(first, "two"))
        async with client_for(emulator, UTA_BROKER) as broker:
            # The seeded sub-account holds its one key already.
            with pytest.raises(QuotaExceededError) as broker_full:
                await broker.create_uta_broker_subaccount_api_key(broker_key())
    assert (subs_full.value.code, keys_full.value.code, broker_full.value.code) == (
        "40069",
        "40063",
        "40063",
    )
    made = emulator.exchange.subaccounts(UTA.uid)
    assert [sub["name"] for sub in made] == ["deska", "deskb"]
    assert [label for label, _ in made[0]["keys"]] == ["one"]
