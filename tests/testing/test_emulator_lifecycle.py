"""
The emulator's part in a key's later life, through the real `Client` over 127.0.0.1:
sub-account keys that sign (in both modes), key propagation, deleted and neutralised
keys, freezing a classic sub-account, deleting a v2 broker key, and what tests change
behind the API's back (`Exchange.key`, `tamper_key`, `add_key`, `set_frozen`,
`add_subaccount`).

Both clocks are one hand-moved wall clock: the emulator's and the clients' (which
don't sync), so a key's age is exact and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bitget_keys import Client, ClientConfig, Credentials
from bitget_keys import models as m
from bitget_keys.errors import (
    AuthenticationError,
    ClassicAccountModeError,
    InvalidRequestError,
    PermissionDeniedError,
    UnifiedAccountModeError,
)
from bitget_keys.provision.family import UnifiedAPI
from bitget_keys.testing import Emulator, EmulatorAccount, Limits, Unpaced
from tests.testing.test_emulator import BROKER, MASTER
from tests.testing.test_emulator_unified import unified_master

PASS = "Passw0rd1234"
KEY_PASS = "SubKeyPass42"
IP = "203.0.113.7"
#: TEST-NET-1: never a caller's address, so a key whitelisting only it is unusable.
NEUTRAL_IP = "192.0.2.1"
START_MS = 1_700_000_000_000

UTA = unified_master(8)
ACCOUNTS = [MASTER, BROKER, UTA]


class Wall:
    """The one wall clock of the emulator and its clients, moved by hand."""

    def __init__(self) -> None:
        self.ms = START_MS

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def wall() -> Wall:
    return Wall()


async def serving(wall: Wall, **limits: Any) -> Emulator:
    emulator = Emulator(ACCOUNTS, limits=Limits(per_uid=False, **limits), wall_clock=wall)
    return await emulator.__aenter__()


@pytest.fixture
async def emulator(wall: Wall) -> AsyncIterator[Emulator]:
    emu = await serving(wall)
    try:
        yield emu
    finally:
        await emu.aclose()


def client(emulator: Emulator, credentials: Credentials, wall: Wall) -> Client:
    """A client that signs on ``wall``, never waits for a slot and never re-sends."""
    return Client(
        credentials,
        base_url=emulator.base_url,
        config=ClientConfig(sync_clock=False, max_connect_retries=0),
        scheduler=Unpaced(),
        clock_ms=wall,
    )


def master_client(emulator: Emulator, account: EmulatorAccount, wall: Wall) -> Client:
    return client(emulator, account.credentials, wall)


def key_credentials(api_key: str, secret: str, passphrase: str = KEY_PASS) -> Credentials:
    """A sub-account key's credentials, its UID unknown (as when a new key is verified)."""
    return Credentials(api_key, secret, passphrase)


async def classic_key(
    emulator: Emulator, wall: Wall, *, ip_list: tuple[str, ...] = (), name: str = "deskabcd"
) -> tuple[str, Credentials]:
    """A classic master's new sub-account and a key on it: the sub UID and the key."""
    async with master_client(emulator, MASTER, wall) as master:
        made = await master.create_virtual_subaccounts(
            m.CreateVirtualSubaccountsRequest(names=[name])
        )
        sub_uid = made.successes[0].subaccount_uid
        key = await master.create_virtual_subaccount_api_key(
            m.CreateVirtualSubaccountAPIKeyRequest(
                subaccount_uid=sub_uid,
                passphrase=KEY_PASS,
                label="bot",
                ip_list=ip_list,
                permissions=["spot_trade", "read"],
            )
        )
    return sub_uid, key_credentials(key.api_key, key.secret_key.reveal())


async def unified_key(
    emulator: Emulator, wall: Wall, *, ips: tuple[str, ...] = (), kind: str = "read_write"
) -> tuple[str, Credentials]:
    """A unified master's new sub-account and a key on it: the sub UID and the key."""
    async with master_client(emulator, UTA, wall) as master:
        sub_uid = (
            await master.create_uta_subaccount(m.CreateUTASubaccountRequest(username="deskuta"))
        ).sub_uid
        key = await master.create_uta_subaccount_api_key(
            m.CreateUTASubaccountAPIKeyRequest(
                sub_uid=sub_uid,
                note="bot",
                type=kind,
                passphrase=KEY_PASS,
                permissions=["uta_trade"],
                ips=ips,
            )
        )
    return sub_uid, key_credentials(key.api_key, key.secret.reveal())


async def family_key(emulator: Emulator, wall: Wall, family: str) -> tuple[str, Credentials]:
    """A new sub-account and a key on it, on the classic or the unified master."""
    if family == "classic":
        return await classic_key(emulator, wall)
    return await unified_key(emulator, wall)


# -- sub-account keys sign requests --------------------------------------------------------


async def test_a_classic_sub_key_is_its_sub_account(emulator: Emulator, wall: Wall) -> None:
    sub_uid, credentials = await classic_key(emulator, wall)
    async with client(emulator, credentials, wall) as sub:
        info = await sub.account_info()
        assert (info.user_id, info.parent_id, info.is_subaccount) == (sub_uid, MASTER.uid, True)
        assert info.authorities == ("spot_trade", "read")
        assert await sub.uid() == sub_uid
        with pytest.raises(ClassicAccountModeError):
            await sub.account_info_v3()
    # Its requests count against the sub-account, not the master.
    assert len(emulator.audit.lane(sub_uid, "account_info").accepted) == 1
    assert emulator.audit.lane(MASTER.uid, "account_info").accepted == []


async def test_a_unified_sub_key_is_its_sub_account(emulator: Emulator, wall: Wall) -> None:
    sub_uid, credentials = await unified_key(emulator, wall, kind="read_only")
    async with client(emulator, credentials, wall) as sub:
        info = await sub.account_info_v3()
        assert (info.uid, info.parent_id, info.is_subaccount) == (sub_uid, UTA.uid, True)
        assert (info.ips, info.perm_type) == ((), "read-only")
        assert info.permissions == (m.Permission.UTA_TRADE,)
        with pytest.raises(UnifiedAccountModeError):
            await sub.account_info()
        # The settings need the UTA-management right this key lacks.
        with pytest.raises(PermissionDeniedError) as info_error:
            await sub.account_settings()
        assert info_error.value.code == "40014"
    assert len(emulator.audit.lane(sub_uid, "account_info_v3").accepted) == 1


async def test_a_master_asks_account_info_v3_too(emulator: Emulator, wall: Wall) -> None:
    async with master_client(emulator, UTA, wall) as master:
        info = await master.account_info_v3()
    assert (info.uid, info.is_subaccount, info.perm_type) == (UTA.uid, False, "read-and-write")


async def test_the_rate_limit_counts_against_the_sub_account(wall: Wall) -> None:
    """account-info is 1/s per UID: the sub-account's budget, not the master's."""
    emu = await serving(wall)
    try:
        sub_uid, credentials = await classic_key(emu, wall)
        emu.exchange.limits = Limits(per_uid=True)
        async with client(emu, credentials, wall) as sub, master_client(emu, MASTER, wall) as main:
            await sub.account_info()
            await main.account_info()  # the master's own budget is untouched
            with pytest.raises(Exception, match="429"):
                await sub.account_info()
        assert emu.audit.lane(sub_uid, "account_info").throttled == 1
    finally:
        await emu.aclose()


@pytest.mark.parametrize("family", ["classic", "unified"])
async def test_a_sub_key_outside_its_whitelist_gets_40038(
    emulator: Emulator, wall: Wall, family: str
) -> None:
    """The whitelist is the key's; 40038 comes after the signature, so it proves the key."""
    if family == "classic":
        _, credentials = await classic_key(emulator, wall, ip_list=(IP,))
    else:
        _, credentials = await unified_key(emulator, wall, ips=(IP,))
    async with client(emulator, credentials, wall) as sub:
        call = sub.account_info() if family == "classic" else sub.account_info_v3()
        with pytest.raises(PermissionDeniedError) as info:
            await call
    assert info.value.code == "40038"


async def test_a_wrong_passphrase_on_a_sub_key_is_40012(emulator: Emulator, wall: Wall) -> None:
    _, credentials = await classic_key(emulator, wall)
    wrong = Credentials(credentials.api_key, credentials.secret_key, "NotTheRight1")
    async with client(emulator, wrong, wall) as sub:
        with pytest.raises(AuthenticationError) as info:
            await sub.account_info()
    assert info.value.code == "40012"


@pytest.mark.parametrize("family", ["classic", "unified"])
async def test_a_sub_key_may_not_manage_anything(
    emulator: Emulator, wall: Wall, family: str
) -> None:
    """Every management endpoint is the main account's alone: 40048, nothing done."""
    sub_uid, credentials = await family_key(emulator, wall, family)
    async with client(emulator, credentials, wall) as sub:
        # Learns its UID: the unified key from the v3 account-info, as it may not read
        # the settings (no UTA-management right).
        assert await sub.uid() == sub_uid
        calls = (
            [sub.list_virtual_subaccounts(), sub.list_virtual_subaccount_api_keys(sub_uid)]
            if family == "classic"
            else [
                sub.list_uta_subaccounts(),
                sub.delete_uta_subaccount_api_key(
                    m.DeleteUTASubaccountAPIKeyRequest(api_key=credentials.api_key)
                ),
            ]
        )
        for call in calls:
            with pytest.raises(PermissionDeniedError) as info:
                await call
            assert info.value.code == "40048"
    master_uid = MASTER.uid if family == "classic" else UTA.uid
    assert emulator.exchange.key(credentials.api_key) is not None
    assert emulator.exchange.key(credentials.api_key)["deleted"] is False  # type: ignore[index]
    assert emulator.audit.lane(sub_uid, "list_virtual_subaccounts").accepted == []
    assert emulator.exchange.subaccounts(master_uid)[0]["uid"] == sub_uid


# -- propagation, deletion, neutralisation ---------------------------------------------------


@pytest.mark.parametrize("family", ["classic", "unified"])
async def test_a_new_key_works_once_it_has_propagated(wall: Wall, family: str) -> None:
    emu = await serving(wall, key_propagation_ms=3000)
    try:
        _, credentials = await family_key(emu, wall, family)
        async with client(emu, credentials, wall) as sub:
            ask = sub.account_info if family == "classic" else sub.account_info_v3
            for step in (0, 2999):
                wall.ms = START_MS + step
                with pytest.raises(AuthenticationError) as info:
                    await ask()
                assert (info.value.code, info.value.message) == ("40006", "Invalid ACCESS_KEY")
            wall.ms = START_MS + 3000
            await ask()
    finally:
        await emu.aclose()


async def test_masters_are_not_delayed(wall: Wall) -> None:
    emu = await serving(wall, key_propagation_ms=60_000)
    try:
        async with master_client(emu, MASTER, wall) as master:
            assert (await master.account_info()).user_id == MASTER.uid
    finally:
        await emu.aclose()


async def test_a_deleted_key_is_invalid(emulator: Emulator, wall: Wall) -> None:
    sub_uid, credentials = await unified_key(emulator, wall)
    async with client(emulator, credentials, wall) as sub:
        await sub.account_info_v3()
        async with master_client(emulator, UTA, wall) as master:
            await master.delete_uta_subaccount_api_key(
                m.DeleteUTASubaccountAPIKeyRequest(api_key=credentials.api_key)
            )
        with pytest.raises(AuthenticationError) as info:
            await sub.account_info_v3()
    assert info.value.code == "40006"
    seen = emulator.exchange.key(credentials.api_key)
    assert seen is not None
    assert (seen["deleted"], seen["neutralised"], seen["subaccount_uid"]) == (True, False, sub_uid)


@pytest.mark.parametrize("family", ["classic", "unified"])
async def test_a_key_without_rights_gets_40014(emulator: Emulator, wall: Wall, family: str) -> None:
    if family == "classic":
        sub_uid, credentials = await classic_key(emulator, wall)
        async with master_client(emulator, MASTER, wall) as master:
            await master.modify_virtual_subaccount_api_key(
                m.ModifyVirtualSubaccountAPIKeyRequest(
                    subaccount_uid=sub_uid,
                    api_key=credentials.api_key,
                    passphrase=KEY_PASS,
                    label="bot",
                    ip_list=[],
                    permissions=[],
                )
            )
    else:
        _, credentials = await unified_key(emulator, wall)
        emulator.exchange.tamper_key(credentials.api_key, permissions=[])
    async with client(emulator, credentials, wall) as sub:
        ask = sub.account_info if family == "classic" else sub.account_info_v3
        with pytest.raises(PermissionDeniedError) as info:
            await ask()
    assert (info.value.code, info.value.message) == ("40014", "Incorrect permissions")
    assert emulator.exchange.key(credentials.api_key)["neutralised"] is True  # type: ignore[index]


async def test_a_neutralised_classic_key_answers_40038(emulator: Emulator, wall: Wall) -> None:
    """No rights and a whitelist no caller matches: refused at the whitelist already."""
    sub_uid, credentials = await classic_key(emulator, wall)
    async with master_client(emulator, MASTER, wall) as master:
        modified = await master.modify_virtual_subaccount_api_key(
            m.ModifyVirtualSubaccountAPIKeyRequest(
                subaccount_uid=sub_uid,
                api_key=credentials.api_key,
                passphrase=KEY_PASS,
                label="bot",
                ip_list=[NEUTRAL_IP],
                permissions=[],
            )
        )
        assert (modified.permissions, modified.ip_list) == ((), (NEUTRAL_IP,))
        (listed,) = await master.list_virtual_subaccount_api_keys(sub_uid)
        assert (listed.permissions, listed.ip_list) == ((), (NEUTRAL_IP,))
    async with client(emulator, credentials, wall) as sub:
        with pytest.raises(PermissionDeniedError) as info:
            await sub.account_info()
    assert info.value.code == "40038"


async def test_v2_modify_replaces_the_whitelist_with_what_is_sent(
    emulator: Emulator, wall: Wall
) -> None:
    sub_uid, credentials = await classic_key(emulator, wall, ip_list=(IP, "198.51.100.4"))
    async with master_client(emulator, MASTER, wall) as master:
        await master.modify_virtual_subaccount_api_key(
            m.ModifyVirtualSubaccountAPIKeyRequest(
                subaccount_uid=sub_uid,
                api_key=credentials.api_key,
                passphrase=KEY_PASS,
                label="bot2",
                ip_list=["198.51.100.5"],
            )
        )
    seen = emulator.exchange.key(credentials.api_key)
    assert seen is not None
    assert (seen["ip_list"], seen["permissions"], seen["label"]) == (
        ["198.51.100.5"],
        ["spot_trade", "read"],  # permissions left out: kept
        "bot2",
    )


async def test_v3_update_keeps_an_omitted_whitelist(emulator: Emulator, wall: Wall) -> None:
    _, credentials = await unified_key(emulator, wall, ips=(IP,))
    async with master_client(emulator, UTA, wall) as master:
        updated = await master.update_uta_subaccount_api_key(
            m.UpdateUTASubaccountAPIKeyRequest(
                api_key=credentials.api_key,
                passphrase=KEY_PASS,
                type="read_only",
                permissions=["uta_mgt", "uta_trade"],
            )
        )
    assert (updated.ips, updated.type) == ((IP,), m.UTAKeyType.READ_ONLY)
    seen = emulator.exchange.key(credentials.api_key)
    assert seen is not None
    assert (seen["perm_type"], seen["permissions"]) == ("read_only", ["uta_mgt", "uta_trade"])


async def test_v3_key_list_shows_creation_time_and_type(emulator: Emulator, wall: Wall) -> None:
    wall.ms = START_MS + 12_345
    sub_uid, credentials = await unified_key(emulator, wall, kind="read_only")
    async with master_client(emulator, UTA, wall) as master:
        (listed,) = [key async for key in master.iter_uta_subaccount_api_keys(sub_uid)]
        (viewed,) = await UnifiedAPI(client=master).list_keys(sub_uid)
    assert (listed.created_ms, listed.type) == (START_MS + 12_345, m.UTAKeyType.READ_ONLY)
    assert (viewed.api_key, viewed.perm_type, viewed.created_time) == (
        credentials.api_key,
        "read_only",
        START_MS + 12_345,
    )


# -- freezing a classic sub-account (modify-virtual-subaccount) ----------------------------


async def test_freeze_and_unfreeze_a_classic_sub_account(emulator: Emulator, wall: Wall) -> None:
    sub_uid, _ = await classic_key(emulator, wall)
    async with master_client(emulator, MASTER, wall) as master:
        for status, rights in (("freeze", ["read"]), ("normal", ["spot_trade", "contract_trade"])):
            await master.modify_virtual_subaccount(
                m.ModifyVirtualSubaccountRequest(
                    subaccount_uid=sub_uid, permissions=rights, status=status
                )
            )
            (listed,) = (await master.list_virtual_subaccounts()).subaccounts
            assert (listed.status, listed.permissions) == (status, tuple(rights))
            frozen = await master.list_virtual_subaccounts(
                m.ListVirtualSubaccountsRequest(status="freeze")
            )
            assert len(frozen.subaccounts) == (status == "freeze")
        with pytest.raises(InvalidRequestError, match="40066"):
            await master.modify_virtual_subaccount(
                m.ModifyVirtualSubaccountRequest(
                    subaccount_uid="7999999999", permissions=["read"], status="freeze"
                )
            )


async def test_a_unified_master_freezes_through_v3_only(emulator: Emulator, wall: Wall) -> None:
    sub_uid, _ = await unified_key(emulator, wall)
    async with master_client(emulator, UTA, wall) as master:
        with pytest.raises(UnifiedAccountModeError):
            await master.modify_virtual_subaccount(
                m.ModifyVirtualSubaccountRequest(
                    subaccount_uid=sub_uid, permissions=["read"], status="freeze"
                )
            )
        await master.freeze_uta_subaccount(
            m.FreezeUTASubaccountRequest(sub_uid=sub_uid, operation="freeze")
        )
        (listed,) = [sub async for sub in master.iter_uta_subaccounts()]
    assert listed.status is not None
    assert listed.status.frozen


# -- deleting a v2 broker key ----------------------------------------------------------------


async def test_a_broker_deletes_a_sub_account_key(emulator: Emulator, wall: Wall) -> None:
    seeded = {"api_key": "bg_brk_one", "passphrase": "BrokerKey12", "perm_type": "readonly"}
    emulator.exchange.add_broker_subaccount(BROKER.uid, "5550031", seeded)
    emulator.exchange.add_broker_subaccount(BROKER.uid, "5550031", seeded | {"api_key": "bg_two"})
    request = m.DeleteBrokerSubaccountAPIKeyRequest(sub_uid="5550031", api_key="bg_brk_one")
    async with master_client(emulator, BROKER, wall) as broker:
        await broker.delete_broker_subaccount_api_key(request)
        left = await broker.list_broker_subaccount_api_keys("5550031")
        assert [key.api_key for key in left] == ["bg_two"]
        with pytest.raises(Exception, match="40065"):
            await broker.delete_broker_subaccount_api_key(request)
    async with master_client(emulator, MASTER, wall) as not_broker:
        with pytest.raises(PermissionDeniedError, match="40029"):
            await not_broker.delete_broker_subaccount_api_key(request)


# -- behind the API's back --------------------------------------------------------------------


@pytest.mark.parametrize("family", ["classic", "unified"])
async def test_tampering_shows_in_the_list_and_in_what_the_key_may_do(
    emulator: Emulator, wall: Wall, family: str
) -> None:
    sub_uid, credentials = await family_key(emulator, wall, family)
    emulator.exchange.tamper_key(
        credentials.api_key, permissions=["read"], ip_list=[IP], perm_type="readonly"
    )
    account = MASTER if family == "classic" else UTA
    async with master_client(emulator, account, wall) as master:
        if family == "classic":
            (listed,) = await master.list_virtual_subaccount_api_keys(sub_uid)
            shown = (listed.permissions, listed.ip_list)
        else:
            (key,) = [key async for key in master.iter_uta_subaccount_api_keys(sub_uid)]
            shown = (key.permissions, key.ips)
    assert shown == ((m.Permission.READ,), (IP,))
    async with client(emulator, credentials, wall) as sub:
        with pytest.raises(PermissionDeniedError, match="40038"):
            await (sub.account_info() if family == "classic" else sub.account_info_v3())
    with pytest.raises(KeyError):
        emulator.exchange.tamper_key("bg_nobody", permissions=[])
    with pytest.raises(TypeError):
        emulator.exchange.tamper_key(credentials.api_key, ip_list=IP)


@pytest.mark.parametrize("family", ["classic", "unified"])
async def test_a_key_made_by_hand_signs_and_is_listed(
    emulator: Emulator, wall: Wall, family: str
) -> None:
    account = MASTER if family == "classic" else UTA
    sub_uid = emulator.exchange.add_subaccount(account.uid, "handmade", "by hand")
    assert sub_uid in {sub["uid"] for sub in emulator.exchange.subaccounts(account.uid)}
    with pytest.raises(ValueError, match="taken"):
        emulator.exchange.add_subaccount(account.uid, "HANDMADE", "again")
    made = emulator.exchange.add_key(
        account.uid,
        sub_uid,
        label="manual",
        permissions=["spot_trade"] if family == "classic" else ["uta_trade"],
        ip_list=[],
        passphrase=KEY_PASS,
        perm_type="read_write" if family == "unified" else None,
    )
    assert set(made) == {"api_key", "secret_key"}
    credentials = key_credentials(made["api_key"], made["secret_key"])
    async with client(emulator, credentials, wall) as sub:
        if family == "classic":
            assert (await sub.account_info()).parent_id == account.uid
        else:
            assert (await sub.account_info_v3()).parent_id == account.uid
    async with master_client(emulator, account, wall) as master:
        if family == "classic":
            (listed,) = await master.list_virtual_subaccount_api_keys(sub_uid)
            assert listed.label == "manual"
        else:
            (key,) = [key async for key in master.iter_uta_subaccount_api_keys(sub_uid)]
            assert (key.note, key.created_ms) == ("manual", START_MS)
    seen = emulator.exchange.key(made["api_key"])
    assert seen is not None
    assert made["secret_key"] not in repr(seen)
    assert KEY_PASS not in repr(seen)
    assert (seen["master_uid"], seen["subaccount_uid"], seen["created_ms"]) == (
        account.uid,
        sub_uid,
        START_MS,
    )


def test_hand_made_keys_keep_the_quota_and_need_a_real_sub_account() -> None:
    emulator = Emulator(ACCOUNTS, limits=Limits(max_keys=1))
    sub_uid = emulator.exchange.add_subaccount(MASTER.uid, "onlyonek", "")
    fields: dict[str, Any] = {
        "label": "a",
        "permissions": ["read"],
        "ip_list": [],
        "passphrase": KEY_PASS,
    }
    emulator.exchange.add_key(MASTER.uid, sub_uid, **fields)
    with pytest.raises(ValueError, match="its 1 keys"):
        emulator.exchange.add_key(MASTER.uid, sub_uid, **fields)
    with pytest.raises(KeyError):
        emulator.exchange.add_key(MASTER.uid, "7000000000", **fields)
    with pytest.raises(KeyError):
        emulator.exchange.add_key("42", sub_uid, **fields)
    assert emulator.exchange.key("bg_never") is None


@pytest.mark.parametrize(("account", "frozen_as"), [(MASTER, "freeze"), (UTA, "frozen")])
async def test_set_frozen_shows_in_the_list(
    emulator: Emulator, wall: Wall, account: EmulatorAccount, frozen_as: str
) -> None:
    sub_uid = emulator.exchange.add_subaccount(account.uid, "coldcold", "")
    made = emulator.exchange.add_key(
        account.uid, sub_uid, label="k", permissions=["read"], ip_list=[], passphrase=KEY_PASS
    )
    async with master_client(emulator, account, wall) as master:
        for frozen in (True, False):
            emulator.exchange.set_frozen(account.uid, sub_uid, frozen)
            if account is MASTER:
                (listed,) = (await master.list_virtual_subaccounts()).subaccounts
                status: str | None = listed.status
            else:
                (sub,) = [sub async for sub in master.iter_uta_subaccounts()]
                status = sub.status
            assert status == (frozen_as if frozen else "normal")
            assert emulator.exchange.key(made["api_key"])["frozen"] is frozen  # type: ignore[index]
    with pytest.raises(KeyError):
        emulator.exchange.set_frozen(account.uid, "7000000000", True)
