"""
The lifecycle operations on live keys, per family, against the emulator over loopback:
modify sends the complete settings, revoke deletes (unified) or neutralises (classic).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest

from bitget_keys import Client, ClientConfig
from bitget_keys import models as m
from bitget_keys._secret import Secret
from bitget_keys._signing import Credentials
from bitget_keys.errors import KeyNotVerifiedError, PassphraseNotHeldError
from bitget_keys.provision import key_ops
from bitget_keys.provision.family import ClassicAPI, UnifiedAPI, api_of_family
from bitget_keys.provision.plan import KeySpec
from bitget_keys.testing import Emulator, EmulatorAccount, Limits

MASTER = EmulatorAccount(
    uid="1000000001", api_key="bg_m1", secret_key="master-secret-1", passphrase="MasterPass1"
)
PASSPHRASE = Secret("KeyPass12345")
KEY = KeySpec(label="bot", permissions=(m.Permission("spot_trade"),), ip_list=("203.0.113.7",))


@pytest.fixture(params=["classic", "unified"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[ClassicAPI | UnifiedAPI]:
    master = attrs.evolve(MASTER, mode=request.param)
    async with Emulator([master], limits=Limits(per_uid=False, ip_limit=None)) as emulator:
        client = Client(
            master.credentials, base_url=emulator.base_url, config=ClientConfig(sync_clock=False)
        )
        try:
            yield api_of_family(client, "v3" if request.param == "unified" else "v2")
        finally:
            await client.aclose()


async def _live_key(api: ClassicAPI | UnifiedAPI) -> m.VirtualSubaccountAPIKey:
    """A sub-account with one key made by the plan's settings; the key as listed."""
    if isinstance(api, UnifiedAPI):
        created = await api.client.create_uta_subaccount(
            m.CreateUTASubaccountRequest(username="botsdesk", note="desk")
        )
        uid = created.sub_uid
    else:
        created_subs = await api.client.create_virtual_subaccounts(
            m.CreateVirtualSubaccountsRequest(names=["botsdesk"])
        )
        [row] = created_subs.successes
        uid = row.subaccount_uid
    await api.create_key(uid, KEY, PASSPHRASE)
    [live] = await api.list_keys(uid)
    return live


async def test_modify_sends_the_complete_settings(api: ClassicAPI | UnifiedAPI) -> None:
    live = await _live_key(api)
    wanted = attrs.evolve(
        KEY,
        permissions=(m.Permission("spot_trade"), m.Permission("read")),
        ip_list=("203.0.113.8", "203.0.113.9"),
    )
    await key_ops.modify_key(api, live, wanted, PASSPHRASE)
    [after] = await api.list_keys(live.subaccount_uid)
    assert set(after.ip_list) == {"203.0.113.8", "203.0.113.9"}
    assert after.label == live.label
    if isinstance(api, ClassicAPI):
        assert set(after.permissions) == {"spot_trade", "read"}


async def test_revoke_deletes_unified_and_neutralises_classic(
    api: ClassicAPI | UnifiedAPI,
) -> None:
    live = await _live_key(api)
    how = await key_ops.revoke_key(api, live, PASSPHRASE)
    listed = await api.list_keys(live.subaccount_uid)
    if isinstance(api, UnifiedAPI):
        assert how is key_ops.RevokeHow.DELETED
        assert listed == ()
    else:
        assert how is key_ops.RevokeHow.NEUTRALISED
        [after] = listed
        assert after.api_key == live.api_key
        assert after.permissions == ()
        assert after.ip_list == key_ops.NEUTRAL_IP_LIST
        assert key_ops.is_neutralised(after)


async def test_a_classic_key_without_its_passphrase_is_not_touched(
    api: ClassicAPI | UnifiedAPI,
) -> None:
    live = await _live_key(api)
    if isinstance(api, UnifiedAPI):
        # A unified key's delete needs no passphrase.
        assert await key_ops.revoke_key(api, live, None) is key_ops.RevokeHow.DELETED
        return
    with pytest.raises(PassphraseNotHeldError, match="web UI") as caught:
        await key_ops.revoke_key(api, live, None)
    assert live.api_key in str(caught.value)
    [after] = await api.list_keys(live.subaccount_uid)
    assert after.permissions == live.permissions
    assert not key_ops.is_neutralised(after)


def test_a_key_with_rights_or_another_whitelist_is_not_neutralised() -> None:
    key = m.VirtualSubaccountAPIKey(subaccount_uid="1", api_key="k")
    assert not key_ops.is_neutralised(attrs.evolve(key, ip_list=("203.0.113.7",)))
    assert not key_ops.is_neutralised(
        attrs.evolve(key, ip_list=key_ops.NEUTRAL_IP_LIST, permissions=(m.Permission("read"),))
    )
    assert key_ops.is_neutralised(attrs.evolve(key, ip_list=key_ops.NEUTRAL_IP_LIST))


async def _new_key_client(
    api: ClassicAPI | UnifiedAPI, emulator: Emulator, *, ip_list: tuple[str, ...] = ()
) -> tuple[Client, str]:
    """A new key on a new sub-account, and a client signing with it."""
    live = await _live_key(api)
    key = attrs.evolve(KEY, label="fresh", ip_list=ip_list)
    created = await api.create_key(live.subaccount_uid, key, PASSPHRASE)
    credentials = Credentials(
        api_key=created.api_key,
        secret_key=created.secret_key,
        passphrase=PASSPHRASE,
        uid=live.subaccount_uid,
    )
    client = Client(credentials, base_url=emulator.base_url, config=ClientConfig(sync_clock=False))
    return client, live.subaccount_uid


@pytest.fixture(params=["classic", "unified"])
async def emulated(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Emulator, ClassicAPI | UnifiedAPI]]:
    master = attrs.evolve(MASTER, mode=request.param)
    limits = Limits(per_uid=False, ip_limit=None, key_propagation_ms=600)
    async with Emulator([master], limits=limits) as emulator:
        client = Client(
            master.credentials, base_url=emulator.base_url, config=ClientConfig(sync_clock=False)
        )
        try:
            yield emulator, api_of_family(client, "v3" if request.param == "unified" else "v2")
        finally:
            await client.aclose()


async def test_verify_waits_until_the_new_key_has_propagated(
    emulated: tuple[Emulator, ClassicAPI | UnifiedAPI],
) -> None:
    emulator, api = emulated
    client, uid = await _new_key_client(api, emulator)
    async with client:
        verified = await key_ops.verify_key(client, api.family, uid, first_delay=0.1)
    assert verified.user_id == uid
    assert verified.usable_here
    # Bitget answered 40006 until the key had propagated, 0.6 s after its creation.
    assert verified.attempts > 1
    assert verified.waited >= 0.4


async def test_a_key_whitelisting_another_host_is_verified_but_not_usable_here(
    emulated: tuple[Emulator, ClassicAPI | UnifiedAPI],
) -> None:
    emulator, api = emulated
    client, uid = await _new_key_client(api, emulator, ip_list=("203.0.113.7",))
    async with client:
        verified = await key_ops.verify_key(client, api.family, uid, first_delay=0.1)
    assert verified.user_id == uid
    assert not verified.usable_here


async def test_a_key_bitget_never_knows_is_not_verified(
    emulated: tuple[Emulator, ClassicAPI | UnifiedAPI],
) -> None:
    emulator, api = emulated
    emulator.exchange.limits = attrs.evolve(emulator.exchange.limits, key_propagation_ms=60_000)
    client, uid = await _new_key_client(api, emulator)
    async with client:
        with pytest.raises(KeyNotVerifiedError, match="still did not know the key"):
            await key_ops.verify_key(client, api.family, uid, first_delay=0.1, patience=0.3)


async def test_a_key_of_another_account_is_not_verified(
    emulated: tuple[Emulator, ClassicAPI | UnifiedAPI],
) -> None:
    emulator, api = emulated
    client, _uid = await _new_key_client(api, emulator)
    async with client:
        with pytest.raises(KeyNotVerifiedError, match="belongs to UID"):
            await key_ops.verify_key(client, api.family, "1234567890", first_delay=0.1)


async def test_freeze_and_unfreeze(api: ClassicAPI | UnifiedAPI) -> None:
    live = await _live_key(api)
    [sub] = await api.list_subaccounts()
    await key_ops.set_frozen(api, sub, frozen=True)
    [frozen] = await api.list_subaccounts()
    assert frozen.status is m.SubaccountStatus.FREEZE
    await key_ops.set_frozen(api, frozen, frozen=False)
    [thawed] = await api.list_subaccounts()
    assert thawed.status is m.SubaccountStatus.NORMAL
    assert thawed.permissions == sub.permissions
    assert thawed.subaccount_uid == live.subaccount_uid


@pytest.mark.parametrize("family", ["v2", "v3"])
async def test_a_broker_key_is_deleted(family: str) -> None:
    master = attrs.evolve(MASTER, mode="unified" if family == "v3" else "classic", broker=True)
    async with Emulator([master], limits=Limits(per_uid=False, ip_limit=None)) as emulator:
        emulator.exchange.add_broker_subaccount(
            master.uid, "7000000001", {"api_key": "bg_broker1", "passphrase": "BrokerPass1"}
        )
        async with Client(
            master.credentials, base_url=emulator.base_url, config=ClientConfig(sync_clock=False)
        ) as client:
            how = await key_ops.revoke_broker_key(client, family, "7000000001", "bg_broker1")
        assert how is key_ops.RevokeHow.DELETED
        assert emulator.exchange.secret_of("bg_broker1") is None
