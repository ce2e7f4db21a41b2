"""
The endpoints a key's later life needs: freezing a classic sub-account, deleting a v2
broker key, and the v3 account-info a new key proves itself with (aioresponses).
"""

from __future__ import annotations

from typing import Any

import pytest
from aioresponses import aioresponses

from bitget_keys import Client, Credentials, RateLimitScheduler
from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys.errors import APIError, PermissionDeniedError, ValidationError
from tests.client.test_client import BASE, IP, assert_one_request, calls, fail, ok
from tests.client.test_client_v3 import make_client
from tests.conftest import API_KEY, PASSPHRASE, SECRET_KEY, UID

SUB = "5550001"
S6 = "/api/v2/user/modify-virtual-subaccount"
S9 = "/api/v2/broker/manage/delete-subaccount-apikey"
INFO_V3 = "/api/v3/account/info"


def freeze(**overrides: Any) -> m.ModifyVirtualSubaccountRequest:
    fields: dict[str, Any] = {
        "subaccount_uid": SUB,
        "permissions": ["spot_trade", "read"],
        "status": "freeze",
    }
    return m.ModifyVirtualSubaccountRequest(**(fields | overrides))


# -- the table -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "method", "path", "rate", "family"),
    [
        (ep.MODIFY_VIRTUAL_SUBACCOUNT, "POST", S6, 5, "v2"),
        (ep.DELETE_BROKER_SUBACCOUNT_API_KEY, "POST", S9, 10, "v2"),
        (ep.ACCOUNT_INFO_V3, "GET", INFO_V3, 5, "v3"),
    ],
    ids=lambda value: value.name if isinstance(value, ep.Endpoint) else None,
)
def test_new_endpoints_are_in_the_table_at_their_documented_rates(
    endpoint: ep.Endpoint, method: str, path: str, rate: int, family: str
) -> None:
    assert ep.ENDPOINTS[endpoint.name] is endpoint
    assert (endpoint.method, endpoint.path, endpoint.rate, endpoint.window) == (
        method,
        path,
        rate,
        1.0,
    )
    assert (endpoint.scope, endpoint.family, endpoint.creates) == ("uid", family, False)


# -- modify-virtual-subaccount (freeze, unfreeze) ------------------------------------------


@pytest.mark.parametrize("status", ["freeze", "normal"])
async def test_freezing_sends_the_rights_and_the_status(
    client: Client, mocked: aioresponses, status: str
) -> None:
    mocked.post(BASE + S6, payload=ok({"result": "success"}))
    await client.modify_virtual_subaccount(freeze(status=status))
    assert_one_request(
        mocked,
        "POST",
        S6,
        f'{{"subAccountUid":"{SUB}","permList":["spot_trade","read"],"status":"{status}"}}',
    )


@pytest.mark.parametrize("answer", [{"result": "failure"}, {"result": ""}])
async def test_a_failure_result_under_a_success_code_is_raised(
    client: Client, mocked: aioresponses, answer: dict[str, str]
) -> None:
    """Bitget may say ``failure`` with code 00000: that is no freeze, and never re-sent."""
    mocked.post(BASE + S6, payload=ok(answer))
    with pytest.raises(APIError) as info:
        await client.modify_virtual_subaccount(freeze())
    exc = info.value
    assert type(exc) is APIError
    assert (exc.code, exc.endpoint, exc.http_status) == (None, S6, 200)
    assert repr(answer["result"]) in exc.message
    assert "not known to be made" in str(exc)
    assert len(calls(mocked)) == 1


async def test_an_answer_without_a_result_is_a_decode_error(
    client: Client, mocked: aioresponses
) -> None:
    from bitget_keys.errors import ResponseDecodeError

    mocked.post(BASE + S6, payload=ok({}))
    with pytest.raises(ResponseDecodeError, match="result"):
        await client.modify_virtual_subaccount(freeze())


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"subaccount_uid": "abc"}, "subaccount_uid", "numeric UID"),
        ({"permissions": []}, "permissions", "at least one permission"),
        ({"permissions": ["margin_trade"]}, "permissions[0]", "not valid here"),
        ({"permissions": ["uta_trade"]}, "permissions[0]", "contract_trade, read, spot_trade"),
        ({"permissions": ["read", "read"]}, "permissions[1]", "listed twice"),
        ({"status": "frozen"}, "status", "normal or freeze"),
        ({"status": "del"}, "status", "normal or freeze"),
        ({"status": 1}, "status", "normal or freeze"),
    ],
)
def test_freeze_request_refuses_what_bitget_would(
    overrides: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as info:
        freeze(**overrides)
    assert [(p.field, rule in p.rule) for p in info.value.problems] == [(field, True)]


async def test_a_freeze_refused_for_good_is_not_sent(client: Client, mocked: aioresponses) -> None:
    with pytest.raises(ValidationError):
        await client.modify_virtual_subaccount(freeze(status="unfreeze"))
    assert calls(mocked) == []


# -- delete-subaccount-apikey (ND broker, v2) ----------------------------------------------


async def test_broker_key_delete_wire_format(client: Client, mocked: aioresponses) -> None:
    mocked.post(BASE + S9, payload=ok("success"))
    request = m.DeleteBrokerSubaccountAPIKeyRequest(sub_uid=SUB, api_key="bg_broker")
    await client.delete_broker_subaccount_api_key(request)
    assert_one_request(mocked, "POST", S9, f'{{"subUid":"{SUB}","apiKey":"bg_broker"}}')


@pytest.mark.parametrize("data", ["failure", None, {"result": "success"}, "x" * 100])
async def test_broker_key_delete_other_than_success_is_raised(
    client: Client, mocked: aioresponses, data: object
) -> None:
    mocked.post(BASE + S9, payload=ok(data))
    request = m.DeleteBrokerSubaccountAPIKeyRequest(sub_uid=SUB, api_key="bg_broker")
    with pytest.raises(APIError) as info:
        await client.delete_broker_subaccount_api_key(request)
    assert info.value.endpoint == S9
    assert len(info.value.message) < 250  # a long answer is cut, not repeated whole


async def test_broker_key_delete_by_a_non_broker(client: Client, mocked: aioresponses) -> None:
    mocked.post(BASE + S9, status=400, payload=fail("40029", "This account is not a Broker"))
    request = m.DeleteBrokerSubaccountAPIKeyRequest(sub_uid=SUB, api_key="bg_broker")
    with pytest.raises(PermissionDeniedError):
        await client.delete_broker_subaccount_api_key(request)


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"sub_uid": "x1", "api_key": "k"}, "sub_uid"), ({"sub_uid": SUB, "api_key": " "}, "api_key")],
)
def test_broker_key_delete_request_rules(fields: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        m.DeleteBrokerSubaccountAPIKeyRequest(**fields)
    assert [p.field for p in info.value.problems] == [field]


# -- v3 account-info --------------------------------------------------------------------------


@pytest.mark.parametrize("uid_field", ["uid", "userId"])
async def test_account_info_v3_reads_either_uid_spelling(
    client: Client, mocked: aioresponses, uid_field: str
) -> None:
    mocked.get(BASE + INFO_V3, payload=ok({uid_field: UID, "ips": "", "permissions": []}))
    info = await client.account_info_v3()
    assert (info.uid, info.ips, info.parent_id, info.is_subaccount) == (UID, (), None, False)
    assert_one_request(mocked, "GET", INFO_V3, None)


@pytest.mark.parametrize(
    ("ips", "expected"),
    [
        ("203.0.113.7", (IP,)),
        ("203.0.113.7, 198.51.100.2,", (IP, "198.51.100.2")),
        ([IP], (IP,)),
        (None, ()),
    ],
)
async def test_account_info_v3_whitelist_is_split(
    client: Client, mocked: aioresponses, ips: object, expected: tuple[str, ...]
) -> None:
    data: dict[str, Any] = {"uid": UID}
    if ips is not None:
        data["ips"] = ips
    mocked.get(BASE + INFO_V3, payload=ok(data))
    assert (await client.account_info_v3()).ips == expected


@pytest.mark.parametrize(("parent", "sub"), [(UID, True), ("", False), (0, False), (None, False)])
def test_is_subaccount_reads_the_parent(parent: object, sub: bool) -> None:
    from bitget_keys._serde import CONVERTER

    info = CONVERTER.structure({"uid": SUB, "parentId": parent}, m.UTAAccountInfo)
    assert info.is_subaccount is sub
    v2 = CONVERTER.structure({"userId": SUB, "parentId": parent}, m.AccountInfo)
    assert v2.is_subaccount is sub


async def test_account_info_v3_without_a_uid_is_a_decode_error(
    client: Client, mocked: aioresponses
) -> None:
    from bitget_keys.errors import ResponseDecodeError

    mocked.get(BASE + INFO_V3, payload=ok({"parentId": UID}))
    with pytest.raises(ResponseDecodeError, match="uid"):
        await client.account_info_v3()


async def test_a_key_learns_its_uid_from_account_info_v3(mocked: aioresponses) -> None:
    """
    A client given no UID (a new sub-account key being verified) learns it from the
    v3 account-info itself: one request, paced under the key until then, and kept.
    """
    scheduler = RateLimitScheduler()
    credentials = Credentials(API_KEY, SECRET_KEY, PASSPHRASE)
    mocked.get(BASE + INFO_V3, payload=ok({"uid": SUB, "parentId": UID}))
    async with make_client(credentials, scheduler=scheduler) as client:
        info = await client.account_info_v3()
        assert info.uid == SUB
        assert await client.uid() == SUB
    assert len(calls(mocked)) == 1
    (lane,) = scheduler.statistics().lanes
    assert (lane.endpoint, lane.dispatched) == (ep.ACCOUNT_INFO_V3.name, 1)


# -- the models' new fields -----------------------------------------------------------------


def test_listed_virtual_key_may_tell_its_type_and_age() -> None:
    from bitget_keys._serde import CONVERTER

    plain = CONVERTER.structure(
        {"subAccountUid": SUB, "subAccountApiKey": "bg_k"}, m.VirtualSubaccountAPIKey
    )
    assert (plain.perm_type, plain.created_time) == (None, None)
    told = m.VirtualSubaccountAPIKey(
        subaccount_uid=SUB, api_key="bg_k", perm_type="read_write", created_time=1740129303268
    )
    assert (told.perm_type, told.created_time) == ("read_write", 1740129303268)


@pytest.mark.parametrize("ts", ["1740129303268", 1740129303269, "1"])
def test_v3_listed_key_creation_ms_is_exact(ts: object) -> None:
    from bitget_keys._serde import CONVERTER

    key = CONVERTER.structure({"apiKey": "bg_k", "ts": ts}, m.UTASubaccountAPIKey)
    assert key.created_ms == int(str(ts))
    assert CONVERTER.structure({"apiKey": "bg_k"}, m.UTASubaccountAPIKey).created_ms is None


async def test_a_key_that_may_not_read_the_settings_learns_its_uid_from_account_info_v3(
    mocked: aioresponses,
) -> None:
    """
    A unified sub-account's key: v2 account-info refuses it (40085), the settings want
    a right it lacks (40014); the v3 account-info, which needs none, tells the UID.
    """
    credentials = Credentials(API_KEY, SECRET_KEY, PASSPHRASE)
    unified = "You are in Unified Account mode, and the Classic Account API is not supported"
    mocked.get(BASE + "/api/v2/spot/account/info", status=400, payload=fail("40085", unified))
    mocked.get(
        BASE + "/api/v3/account/settings",
        status=400,
        payload=fail("40014", "Incorrect permissions"),
    )
    mocked.get(BASE + INFO_V3, payload=ok({"uid": SUB, "parentId": UID}))
    async with make_client(credentials) as client:
        assert await client.uid() == SUB
    assert [str(url.path) for _, url, _ in calls(mocked)] == [
        "/api/v2/spot/account/info",
        "/api/v3/account/settings",
        INFO_V3,
    ]
