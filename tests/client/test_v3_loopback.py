"""
The v3 (Unified Trading Account) client methods against the emulator over 127.0.0.1:
the real `Client` and aiohttp stack, end to end; the account mode learned both ways; and
the default scheduler keeping a unified master within its documented rate.

The documented rules the client checks before sending are in `test_v3_loopback_rules`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bitget_keys import Client, Credentials, Secret
from bitget_keys import models as m
from bitget_keys._client import AccountModes
from bitget_keys.errors import ClassicAccountModeError, UnifiedAccountModeError
from bitget_keys.testing import Emulator, EmulatorAccount, Limits, Unpaced
from tests.testing.test_emulator import MASTER, NO_RETRY
from tests.testing.test_emulator_unified import unified_master

PASS = "Passw0rd1234"
IP = "203.0.113.7"
OTHER_IP = "198.51.100.9"


UTA, UTA_BROKER = unified_master(8), unified_master(9, broker=True)
CLASSIC = MASTER
ACCOUNTS = [CLASSIC, UTA, UTA_BROKER]
#: The unified broker's seeded sub-account, its key and that key's passphrase.
BROKER_SUB, BROKER_KEY, BROKER_KEY_PASS = "5550021", "bg_loop_seeded", "SeededPass21"


def seeded(limits: Limits) -> Emulator:
    """An emulator of `ACCOUNTS` whose unified broker has one sub-account with one key."""
    emulator = Emulator(ACCOUNTS, limits=limits)
    emulator.exchange.add_broker_subaccount(
        UTA_BROKER.uid,
        BROKER_SUB,
        {
            "api_key": BROKER_KEY,
            "secret_key": "loop-seeded-secret",
            "passphrase": BROKER_KEY_PASS,
            "label": "seeded",
            "permissions": ["uta_trade"],
            "ip_list": [IP],
            "perm_type": "readonly",
        },
    )
    return emulator


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    # Rates are checked on their own below, through the default scheduler.
    async with seeded(Limits(per_uid=False)) as emu:
        yield emu


def client_for(
    emulator: Emulator,
    account: EmulatorAccount,
    *,
    credentials: Credentials | None = None,
    account_modes: AccountModes | None = None,
) -> Client:
    """A client of ``account`` that never waits for a slot and never re-sends."""
    return Client(
        credentials or account.credentials,
        base_url=emulator.base_url,
        config=NO_RETRY,
        scheduler=Unpaced(),
        account_modes=account_modes,
    )


def requests_seen(emulator: Emulator, uid: str | None = None) -> int:
    """
    The requests the emulator answered, accepted or not: every one, or only those signed
    by ``uid``'s key (leaving out the public clock requests).
    """
    return sum(
        len(lane.accepted) + lane.throttled + lane.rejected
        for (lane_uid, _), lane in emulator.audit.lanes.items()
        if uid is None or lane_uid == uid
    )


def new_key(sub_uid: str, note: str = "bot", **changes: Any) -> m.CreateUTASubaccountAPIKeyRequest:
    fields: dict[str, Any] = {
        "sub_uid": sub_uid,
        "note": note,
        "type": "read_write",
        "passphrase": PASS,
        "permissions": ["uta_trade"],
        "ips": [IP],
    }
    return m.CreateUTASubaccountAPIKeyRequest(**(fields | changes))


def broker_key(**changes: Any) -> m.CreateUTABrokerSubaccountAPIKeyRequest:
    fields: dict[str, Any] = {
        "sub_uid": BROKER_SUB,
        "passphrase": PASS,
        "label": "made",
        "perm_type": "read_and_write",
        "permissions": ["uta_trade"],
        "ip_list": [IP],
    }
    return m.CreateUTABrokerSubaccountAPIKeyRequest(**(fields | changes))


async def make_sub(client: Client, username: str = "desk") -> str:
    created = await client.create_uta_subaccount(m.CreateUTASubaccountRequest(username=username))
    return created.sub_uid


async def keys_of(client: Client, sub_uid: str) -> dict[str, m.UTASubaccountAPIKey]:
    return {key.api_key: key async for key in client.iter_uta_subaccount_api_keys(sub_uid)}


# -- every v3 method, end to end -------------------------------------------------------------


async def test_create_and_list_subaccounts(emulator: Emulator) -> None:
    async with client_for(emulator, UTA) as client:
        made = await client.create_uta_subaccount(
            m.CreateUTASubaccountRequest(username="deskone", note="desk one")
        )
        assert (made.username, made.status, made.note) == (
            "deskone@virtual-bitget.com",
            "normal",
            "desk one",
        )
        classic = await client.create_uta_subaccount(
            m.CreateUTASubaccountRequest(username="desktwo", account_mode="classic")
        )
        page = await client.list_uta_subaccounts()
    assert page.has_next is False
    assert [
        (s.sub_uid, s.username, s.note, s.status, s.account_mode) for s in page.subaccounts
    ] == [
        (made.sub_uid, "des****@virtual-bitget.com", "desk one", "normal", "unified"),
        (classic.sub_uid, "des****@virtual-bitget.com", "", "normal", "classic"),
    ]
    assert all(s.created_time is not None for s in page.subaccounts)
    assert [s["uid"] for s in emulator.exchange.subaccounts(UTA.uid)] == [
        made.sub_uid,
        classic.sub_uid,
    ]


#: (hasNext as a string?, how many rows, how many pages of two)
PAGING = [(False, 7, 4), (True, 7, 4), (False, 6, 3), (True, 6, 3)]
PAGING_IDS = ["bool-short-last", "string-short-last", "bool-full-last", "string-full-last"]


@pytest.mark.parametrize(("as_string", "count", "pages"), PAGING, ids=PAGING_IDS)
async def test_subaccounts_page_over_several_pages(as_string: bool, count: int, pages: int) -> None:
    """Paging stops on the page that says so, however hasNext is typed: never one more."""
    limits = Limits(per_uid=False, has_next_as_string=as_string)
    async with seeded(limits) as emulator, client_for(emulator, UTA) as client:
        made = [await make_sub(client, "desk" + "abcdefg"[n]) for n in range(count)]
        first = await client.list_uta_subaccounts(m.ListUTASubaccountsRequest(limit=2))
        last = await client.list_uta_subaccounts(
            m.ListUTASubaccountsRequest(limit=2, cursor=made[2 * pages - 3])
        )
        lane = emulator.audit.lane(UTA.uid, "list_uta_subaccounts")
        before = len(lane.accepted)
        listed = [s.sub_uid async for s in client.iter_uta_subaccounts(page_size=2)]
        sent = len(lane.accepted) - before
    assert (first.has_next, [s.sub_uid for s in first.subaccounts]) == (True, made[:2])
    assert (last.has_next, [s.sub_uid for s in last.subaccounts]) == (False, made[2 * pages - 2 :])
    assert listed == made
    assert sent == pages


@pytest.mark.parametrize(("as_string", "count", "pages"), PAGING, ids=PAGING_IDS)
async def test_keys_page_over_several_pages(as_string: bool, count: int, pages: int) -> None:
    limits = Limits(per_uid=False, has_next_as_string=as_string, max_uta_keys=count)
    async with seeded(limits) as emulator, client_for(emulator, UTA) as client:
        sub = await make_sub(client)
        made = [
            (await client.create_uta_subaccount_api_key(new_key(sub, f"bot{n}"))).api_key
            for n in range(count)
        ]
        first = await client.list_uta_subaccount_api_keys(
            m.ListUTASubaccountAPIKeysRequest(sub_uid=sub, limit=2)
        )
        lane = emulator.audit.lane(UTA.uid, "list_uta_subaccount_api_keys")
        before = len(lane.accepted)
        listed = [
            key.api_key async for key in client.iter_uta_subaccount_api_keys(sub, page_size=2)
        ]
        sent = len(lane.accepted) - before
    assert (first.has_next, [key.api_key for key in first.keys]) == (True, made[:2])
    assert listed == made
    assert sent == pages


async def test_freeze_then_unfreeze_shows_in_the_list(emulator: Emulator) -> None:
    async with client_for(emulator, UTA) as client:
        sub = await make_sub(client)
        statuses = []
        for operation in ("freeze", "unfreeze"):
            await client.freeze_uta_subaccount(
                m.FreezeUTASubaccountRequest(sub_uid=sub, operation=operation)
            )
            (listed,) = [s async for s in client.iter_uta_subaccounts()]
            statuses.append(listed.status)
    assert statuses[0] is not None
    assert statuses[0].frozen
    assert statuses[1] is m.SubaccountStatus.NORMAL


async def test_create_key_answers_its_secret_once(emulator: Emulator) -> None:
    async with client_for(emulator, UTA) as client:
        sub = await make_sub(client)
        made = await client.create_uta_subaccount_api_key(
            new_key(sub, "bot-1", type="read_only", permissions=["uta_mgt", "uta_trade"])
        )
        listed = await keys_of(client, sub)
    secret = emulator.exchange.secret_of(made.api_key)
    assert secret is not None
    assert isinstance(made.secret, Secret)
    assert made.secret == Secret(secret)
    assert secret not in repr(made)
    assert (made.note, made.type, made.permissions, made.ips) == (
        "bot-1",
        m.UTAKeyType.READ_ONLY,
        (m.Permission.UTA_MGT, m.Permission.UTA_TRADE),
        (IP,),
    )
    (row,) = listed.values()
    assert (row.api_key, row.note, row.type, row.ips) == (made.api_key, "bot-1", "read_only", (IP,))
    assert row.created_time is not None
    assert secret not in repr(row)


async def test_update_keeps_replaces_and_clears_the_whitelist(emulator: Emulator) -> None:
    async with client_for(emulator, UTA) as client:
        sub = await make_sub(client)
        key = (await client.create_uta_subaccount_api_key(new_key(sub))).api_key
        seen = []
        for ips in (None, [OTHER_IP, IP], m.CLEAR_WHITELIST):
            answer = await client.update_uta_subaccount_api_key(
                m.UpdateUTASubaccountAPIKeyRequest(
                    api_key=key,
                    passphrase=PASS,
                    type="read_only",
                    permissions=["uta_mgt"],
                    ips=ips,
                )
            )
            listed = (await keys_of(client, sub))[key]
            assert answer.ips == listed.ips
            seen.append((listed.type, listed.permissions, listed.ips))
    rights = (m.UTAKeyType.READ_ONLY, (m.Permission.UTA_MGT,))
    assert seen == [(*rights, (IP,)), (*rights, (OTHER_IP, IP)), (*rights, ())]


async def test_delete_key_leaves_the_list_at_once(emulator: Emulator) -> None:
    async with client_for(emulator, UTA) as client:
        sub = await make_sub(client)
        kept = (await client.create_uta_subaccount_api_key(new_key(sub, "kept"))).api_key
        gone = (await client.create_uta_subaccount_api_key(new_key(sub, "gone"))).api_key
        await client.delete_uta_subaccount_api_key(m.DeleteUTASubaccountAPIKeyRequest(api_key=gone))
        assert list(await keys_of(client, sub)) == [kept]
    assert emulator.exchange.secret_of(gone) is None


async def test_broker_methods_on_a_unified_broker(emulator: Emulator) -> None:
    async with client_for(emulator, UTA_BROKER) as broker:
        made = await broker.create_uta_broker_subaccount_api_key(
            broker_key(permissions=["uta_trade", "withdraw"])
        )
        changed = await broker.modify_uta_broker_subaccount_api_key(
            m.ModifyUTABrokerSubaccountAPIKeyRequest(
                sub_uid=BROKER_SUB,
                api_key=BROKER_KEY,
                passphrase=BROKER_KEY_PASS,
                label="renamed",
                ip_list=[OTHER_IP],
            )
        )
        first = await broker.query_uta_broker_subaccount_api_key(BROKER_SUB)
        await broker.delete_uta_broker_subaccount_api_key(
            m.DeleteUTABrokerSubaccountAPIKeyRequest(sub_uid=BROKER_SUB, api_key=BROKER_KEY)
        )
        after = await broker.query_uta_broker_subaccount_api_key(BROKER_SUB)
    made_secret = emulator.exchange.secret_of(made.api_key)
    assert made_secret is not None
    assert made.secret_key == Secret(made_secret)
    assert made_secret not in repr(made)
    assert (made.sub_uid, made.label, made.perm_type, made.permissions, made.ip_list) == (
        BROKER_SUB,
        "made",
        m.PermType.READ_AND_WRITE,
        (m.Permission.UTA_TRADE, m.Permission.WITHDRAW),
        (IP,),
    )
    assert (changed.api_key, changed.label, changed.ip_list, changed.secret_key) == (
        BROKER_KEY,
        "renamed",
        (OTHER_IP,),
        None,
    )
    assert (first.api_key, first.label, first.secret_key) == (
        BROKER_KEY,
        "renamed",
        Secret("loop-seeded-secret"),
    )
    assert after.api_key == made.api_key
    assert emulator.exchange.secret_of(BROKER_KEY) is None


async def test_account_settings_and_mode(emulator: Emulator) -> None:
    async with client_for(emulator, UTA, account_modes=AccountModes()) as client:
        settings = await client.account_settings()
        assert (settings.account_mode, settings.uid) == (m.AccountMode.UNIFIED, UTA.uid)
        assert client.cached_account_mode() is m.AccountMode.UNIFIED
        assert await client.account_mode() is m.AccountMode.UNIFIED


# -- the account mode, learned both ways ---------------------------------------------------


@pytest.mark.parametrize(
    ("account", "mode"),
    [(UTA, m.AccountMode.UNIFIED), (CLASSIC, m.AccountMode.CLASSIC)],
    ids=["unified", "classic"],
)
async def test_account_mode_is_learned_once_per_uid(
    emulator: Emulator, account: EmulatorAccount, mode: m.AccountMode
) -> None:
    """One settings request (40084 for a classic master), then both clients of the UID know."""
    async with client_for(emulator, account) as first, client_for(emulator, account) as second:
        assert first.account_modes is second.account_modes
        assert await first.account_mode() is mode
        sent = requests_seen(emulator)
        assert await first.account_mode() is mode
        assert await second.account_mode() is mode
        assert second.cached_account_mode() is mode
        assert requests_seen(emulator) == sent
    lane = emulator.audit.lane(account.uid, "account_settings")
    if mode is m.AccountMode.CLASSIC:
        assert (lane.accepted, lane.rejected) == ([], 1)
    else:
        assert (len(lane.accepted), lane.rejected) == (1, 0)


async def test_uid_of_a_unified_key_without_one_in_its_credentials(emulator: Emulator) -> None:
    """account-info refuses it (40085), the settings tell it, and the mode comes with it."""
    bare = Credentials(UTA.api_key, UTA.secret_key, UTA.passphrase)
    modes = AccountModes()
    async with client_for(emulator, UTA, credentials=bare, account_modes=modes) as client:
        assert await client.uid() == UTA.uid
        sent = requests_seen(emulator)
        assert await client.uid() == UTA.uid
        assert await client.account_mode() is m.AccountMode.UNIFIED
        assert requests_seen(emulator) == sent
    lane = emulator.audit.lane
    assert (lane(UTA.uid, "account_info").rejected, lane(UTA.uid, "account_info").accepted) == (
        1,
        [],
    )
    assert len(lane(UTA.uid, "account_settings").accepted) == 1
    # A v3 call needs the UID first (its rate budget is the UID's): learned the same way.
    async with client_for(emulator, UTA, credentials=bare, account_modes=AccountModes()) as fresh:
        made = await make_sub(fresh)
    assert fresh.cached_account_mode() is m.AccountMode.UNIFIED
    assert [sub["uid"] for sub in emulator.exchange.subaccounts(UTA.uid)] == [made]
    assert lane(UTA.uid, "account_info").rejected == 2


async def test_a_classic_master_calling_v3_gets_classic_mode_error(emulator: Emulator) -> None:
    """One request, refused and carrying nothing out; the mode kept (stale here) is corrected."""
    modes = AccountModes()
    modes.record(CLASSIC.uid, m.AccountMode.UNIFIED)
    async with client_for(emulator, CLASSIC, account_modes=modes) as client:
        with pytest.raises(ClassicAccountModeError) as caught:
            await client.create_uta_subaccount(m.CreateUTASubaccountRequest(username="desk"))
        assert requests_seen(emulator, CLASSIC.uid) == 1
        assert client.cached_account_mode() is m.AccountMode.CLASSIC
    assert emulator.exchange.subaccounts(CLASSIC.uid) == []
    assert (caught.value.mode, caught.value.family) == ("classic", "v2")
    message = str(caught.value)
    assert "Classic Account mode" in message
    assert "use the v2" in message


async def test_a_unified_master_calling_v2_gets_unified_mode_error(emulator: Emulator) -> None:
    modes = AccountModes()
    modes.record(UTA.uid, m.AccountMode.CLASSIC)
    async with client_for(emulator, UTA, account_modes=modes) as client:
        sub = await make_sub(client)
        sent = requests_seen(emulator, UTA.uid)
        with pytest.raises(UnifiedAccountModeError) as caught:
            await client.create_virtual_subaccount_api_key(
                m.CreateVirtualSubaccountAPIKeyRequest(
                    subaccount_uid=sub,
                    passphrase=PASS,
                    label="bot",
                    ip_list=[IP],
                    permissions=["spot_trade"],
                )
            )
        assert requests_seen(emulator, UTA.uid) == sent + 1
        assert client.cached_account_mode() is m.AccountMode.UNIFIED
    assert emulator.exchange.subaccounts(UTA.uid)[0]["keys"] == []
    assert (caught.value.mode, caught.value.family) == ("unified", "v3")
    message = str(caught.value)
    assert "Unified Account mode" in message
    assert "create_uta_subaccount_api_key" in message


# -- rate limits through the default scheduler --------------------------------------------


async def test_eleven_creates_at_once_stay_within_ten_a_second() -> None:
    """The default scheduler holds the eleventh back: none throttled, ≤ 10 in any 1000 ms."""
    async with (
        seeded(Limits()) as emulator,
        Client(UTA.credentials, base_url=emulator.base_url, config=NO_RETRY) as client,
    ):
        made = await asyncio.gather(
            *(make_sub(client, f"desk{letter}") for letter in "abcdefghijk")
        )
    lane = emulator.audit.lane(UTA.uid, "create_uta_subaccount")
    assert len(set(made)) == 11
    assert (len(lane.accepted), lane.throttled, lane.rejected) == (11, 0, 0)
    assert lane.max_in_window() <= 10
    assert emulator.audit.throttled == 0
    assert len(emulator.exchange.subaccounts(UTA.uid)) == 11
