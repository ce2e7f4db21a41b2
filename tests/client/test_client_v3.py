"""The v3 (Unified Trading Account) endpoints: wire format, paging and pacing, with aioresponses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aioresponses import aioresponses

from bitget_keys import Client, ClientConfig, Credentials, RateLimitScheduler
from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys.testing import Unpaced
from tests.client.test_client import (
    BASE,
    IP,
    PASS,
    assert_one_request,
    calls,
    ok,
)
from tests.conftest import NOW_MS, UID

SUB = "5550001"
SETTINGS = "/api/v3/account/settings"
ACCOUNT_INFO_V3 = "/api/v3/account/info"
ACCOUNT_INFO = "/api/v2/spot/account/info"
CLASSIC_TEXT = (
    "You are in Classic Account mode, and the Unified Account API is not supported at this time"
)
UNIFIED_TEXT = (
    "You are in Unified Account mode, and the Classic Account API is not supported at this time"
)

CREATE_KEY = m.CreateUTASubaccountAPIKeyRequest(
    sub_uid=SUB,
    note="bot01",
    type="read_write",
    passphrase=PASS,
    permissions=["uta_mgt", "uta_trade"],
    ips=[IP],
)
UTA_KEY = {
    "apiKey": "bg_uta",
    "note": "bot01",
    "type": "read_write",
    "permissions": ["uta_trade"],
    "ips": [IP],
    "ts": "1740129303268",
}
BROKER_KEY = {
    "subUid": SUB,
    "apiKey": "bg_ub",
    "label": "desk",
    "permType": "read_and_write",
    "permList": ["uta_trade", "withdraw"],
    "ipList": [IP],
}
BROKER_CREATE = m.CreateUTABrokerSubaccountAPIKeyRequest(
    sub_uid=SUB,
    passphrase=PASS,
    label="desk",
    perm_type="read_and_write",
    permissions=["uta_trade", "withdraw"],
    ip_list=[IP],
)
BROKER_MODIFY = m.ModifyUTABrokerSubaccountAPIKeyRequest(
    sub_uid=SUB, api_key="bg_ub", passphrase=PASS, label="desk2"
)


def settings(mode: str, uid: str | None = UID) -> dict[str, Any]:
    data: dict[str, Any] = {
        "accountMode": mode,
        "assetMode": "multi_assets",
        "holdMode": "one_way_mode",
        "stpMode": "none",
        "symbolConfigList": [],
        "coinConfigList": [],
    }
    if uid is not None:
        data["uid"] = uid
    return ok(data)


Call = Callable[[Client], Awaitable[Any]]

# (id, call, method, path with query, exact body or None, response data, check of the result)
V3Case = tuple[str, Call, str, str, str | None, Any, Callable[[Any], bool]]
V3_CASES: list[V3Case] = [
    (
        "create-sub",
        lambda c: c.create_uta_subaccount(
            m.CreateUTASubaccountRequest(username="deskbot", account_mode="unified", note="n1")
        ),
        "POST",
        "/api/v3/user/create-sub",
        '{"username":"deskbot","accountMode":"unified","note":"n1"}',
        {
            "username": "deskbot@virtual-bitget.com",
            "subUid": SUB,
            "status": "normal",
            "note": "n1",
            "createdTime": "1740211445041",
            "updatedTime": "1740211445041",
        },
        lambda r: (
            isinstance(r, m.CreatedUTASubaccount)
            and (r.sub_uid, r.username, r.status) == (SUB, "deskbot@virtual-bitget.com", "normal")
        ),
    ),
    (
        "sub-list",
        lambda c: c.list_uta_subaccounts(),
        "GET",
        "/api/v3/user/sub-list?limit=100",
        None,
        {
            "list": [
                {
                    "subUid": SUB,
                    "username": "des****@virtual-bitget.com",
                    "status": "freeze",
                    "accountMode": "UNIFIED",
                    "type": "VIRTUAL_CHILD",
                    "note": "n1",
                    "createdTime": "1740211445041",
                    "updatedTime": "1740211445041",
                }
            ],
            "hasNext": False,
            "cursor": "77",
        },
        lambda r: (
            isinstance(r, m.UTASubaccountPage)
            and not r.has_next
            and r.cursor == "77"
            and r.subaccounts[0].status is not None
            and r.subaccounts[0].status.frozen
            and r.subaccounts[0].account_mode is m.SubaccountMode.UNIFIED
            and r.subaccounts[0].type is m.UTASubaccountType.VIRTUAL_CHILD
            and r.subaccounts[0].created_time is not None
            and r.subaccounts[0].created_time.year == 2025
        ),
    ),
    (
        "sub-list-cursor",
        lambda c: c.list_uta_subaccounts(m.ListUTASubaccountsRequest(limit=5, cursor="77")),
        "GET",
        "/api/v3/user/sub-list?cursor=77&limit=5",
        None,
        {"list": [], "hasNext": "false", "cursor": "77"},
        lambda r: r.subaccounts == () and r.has_next is False,
    ),
    (
        "freeze-sub",
        lambda c: c.freeze_uta_subaccount(
            m.FreezeUTASubaccountRequest(sub_uid=SUB, operation="freeze")
        ),
        "POST",
        "/api/v3/user/freeze-sub",
        '{"subUid":"5550001","operation":"freeze"}',
        {},
        lambda r: r is None,
    ),
    (
        "create-sub-api",
        lambda c: c.create_uta_subaccount_api_key(CREATE_KEY),
        "POST",
        "/api/v3/user/create-sub-api",
        (
            '{"subUid":"5550001","note":"bot01","type":"read_write","passphrase":"Passw0rd1234",'
            '"permissions":["uta_mgt","uta_trade"],"ips":["203.0.113.7"]}'
        ),
        {
            "note": "bot01",
            "apiKey": "bg_uta",
            "secret": "UTASECRET123",
            "type": "read_write",
            "permissions": ["uta_mgt", "uta_trade"],
            "ips": [IP],
        },
        lambda r: (
            isinstance(r, m.CreatedUTASubaccountAPIKey)
            and r.api_key == "bg_uta"
            and r.secret.reveal() == "UTASECRET123"
            and r.type is m.UTAKeyType.READ_WRITE
            and r.permissions == (m.Permission.UTA_MGT, m.Permission.UTA_TRADE)
        ),
    ),
    (
        "update-sub-api",
        lambda c: c.update_uta_subaccount_api_key(
            m.UpdateUTASubaccountAPIKeyRequest(
                api_key="bg_uta", passphrase=PASS, type="read_only", permissions=["uta_trade"]
            )
        ),
        "POST",
        "/api/v3/user/update-sub-api",
        '{"apiKey":"bg_uta","passphrase":"Passw0rd1234","type":"read_only","permissions":["uta_trade"]}',
        UTA_KEY | {"type": "read_only"},
        lambda r: (
            isinstance(r, m.UTASubaccountAPIKey)
            and r.type is m.UTAKeyType.READ_ONLY
            and r.ips == (IP,)
        ),
    ),
    (
        "update-sub-api-clear-whitelist",
        lambda c: c.update_uta_subaccount_api_key(
            m.UpdateUTASubaccountAPIKeyRequest(
                api_key="bg_uta", passphrase=PASS, ips=m.CLEAR_WHITELIST
            )
        ),
        "POST",
        "/api/v3/user/update-sub-api",
        '{"apiKey":"bg_uta","passphrase":"Passw0rd1234","ips":[]}',
        UTA_KEY | {"ips": []},
        lambda r: r.ips == (),
    ),
    (
        "delete-sub-api",
        lambda c: c.delete_uta_subaccount_api_key(
            m.DeleteUTASubaccountAPIKeyRequest(api_key="bg_uta")
        ),
        "POST",
        "/api/v3/user/delete-sub-api",
        '{"apiKey":"bg_uta"}',
        {},
        lambda r: r is None,
    ),
    (
        "sub-api-list",
        lambda c: c.list_uta_subaccount_api_keys(
            m.ListUTASubaccountAPIKeysRequest(sub_uid=SUB, limit=10)
        ),
        "GET",
        "/api/v3/user/sub-api-list?limit=10&subUid=5550001",
        None,
        {"items": [UTA_KEY], "hasNext": False, "cursor": "1"},
        lambda r: (
            isinstance(r, m.UTASubaccountAPIKeyPage)
            and r.keys[0].api_key == "bg_uta"
            and r.keys[0].created_time is not None
            and not hasattr(r.keys[0], "secret")
        ),
    ),
    (
        "broker-create-sub-apikey",
        lambda c: c.create_uta_broker_subaccount_api_key(BROKER_CREATE),
        "POST",
        "/api/v3/broker/create-sub-apikey",
        (
            '{"subUid":"5550001","passphrase":"Passw0rd1234","label":"desk",'
            '"permType":"read_and_write","permList":["uta_trade","withdraw"],'
            '"ipList":["203.0.113.7"]}'
        ),
        BROKER_KEY | {"secretKey": "UBSECRET12"},
        lambda r: (
            isinstance(r, m.UTABrokerSubaccountAPIKey)
            and r.secret_key is not None
            and r.secret_key.reveal() == "UBSECRET12"
            and r.permissions == (m.Permission.UTA_TRADE, m.Permission.WITHDRAW)
        ),
    ),
    (
        "broker-modify-sub-apikey",
        lambda c: c.modify_uta_broker_subaccount_api_key(BROKER_MODIFY),
        "POST",
        "/api/v3/broker/modify-sub-apikey",
        '{"subUid":"5550001","apiKey":"bg_ub","passphrase":"Passw0rd1234","label":"desk2"}',
        BROKER_KEY | {"label": "desk2"},
        lambda r: r.label == "desk2" and r.secret_key is None,
    ),
    (
        "broker-delete-sub-apikey",
        lambda c: c.delete_uta_broker_subaccount_api_key(
            m.DeleteUTABrokerSubaccountAPIKeyRequest(sub_uid=SUB, api_key="bg_ub")
        ),
        "POST",
        "/api/v3/broker/delete-sub-apikey",
        '{"subUid":"5550001","apiKey":"bg_ub"}',
        None,
        lambda r: r is None,
    ),
    (
        "broker-query-sub-apikey",
        lambda c: c.query_uta_broker_subaccount_api_key(SUB),
        "GET",
        "/api/v3/broker/query-sub-apikey?subUid=5550001",
        None,
        BROKER_KEY | {"secretKey": "UBSECRET12", "permType": "read_write"},
        lambda r: (
            r.api_key == "bg_ub"
            and r.perm_type == "read_write"
            and r.secret_key is not None
            and r.secret_key.reveal() == "UBSECRET12"
        ),
    ),
    (
        "account-info-v3",
        lambda c: c.account_info_v3(),
        "GET",
        ACCOUNT_INFO_V3,
        None,
        {
            "uid": SUB,
            "inviterId": "",
            "parentId": UID,
            "channelCode": "",
            "channel": "",
            "ips": "203.0.113.7,198.51.100.2",
            "permType": "read-only",
            "permissions": ["uta_trade", "copy_futures_order"],
            "regisTime": "1740129303268",
        },
        lambda r: (
            isinstance(r, m.UTAAccountInfo)
            and (r.uid, r.parent_id, r.is_subaccount) == (SUB, UID, True)
            and r.ips == (IP, "198.51.100.2")
            and r.perm_type == "read-only"
            and r.permissions == (m.Permission.UTA_TRADE, m.Permission("copy_futures_order"))
            and r.regis_time is not None
            and r.regis_time.year == 2025
        ),
    ),
    (
        "account-settings",
        lambda c: c.account_settings(),
        "GET",
        SETTINGS,
        None,
        settings("hybrid")["data"],
        lambda r: r == m.AccountSettings(account_mode=m.AccountMode.HYBRID, uid=UID),
    ),
]


@pytest.mark.parametrize("case", [pytest.param(case, id=case[0]) for case in V3_CASES])
async def test_v3_wire_format(client: Client, mocked: aioresponses, case: V3Case) -> None:
    """Exact method, URL, body bytes and signature of every v3 call; the typed result."""
    _, call, method, path, body, data, check = case
    payload = ok(data)
    if data is None:
        del payload["data"]  # the broker delete answers without a data field
    mocked.add(BASE + path, method, payload=payload)
    result = await call(client)
    assert check(result)
    assert_one_request(mocked, method, path, body)


async def test_created_key_secret_stays_out_of_reprs_and_logs(
    client: Client, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    """The one-time secret is a `Secret`: not in the result's repr, nor in DEBUG logs."""
    caplog.set_level(logging.DEBUG)
    mocked.post(
        BASE + "/api/v3/user/create-sub-api",
        payload=ok(
            {"note": "bot01", "apiKey": "bg_uta", "secret": "UTASECRET123", "type": "read_only"}
        ),
    )
    created = await client.create_uta_subaccount_api_key(CREATE_KEY)
    assert created.secret.reveal() == "UTASECRET123"
    assert "UTASECRET123" not in repr(created)
    assert "UTASECRET123" not in caplog.text
    assert PASS not in repr(CREATE_KEY)
    assert caplog.records  # DEBUG logging was on, so the check above means something


# -- paging ------------------------------------------------------------------------------


def _subs(*uids: int) -> list[dict[str, str]]:
    return [{"subUid": str(uid)} for uid in uids]


@pytest.mark.parametrize("last_has_next", [False, "false"])
async def test_subaccounts_are_paged_by_cursor(
    client: Client, mocked: aioresponses, last_has_next: object
) -> None:
    """Three full pages; the third says hasNext false (bool or string) and ends the paging."""
    path = BASE + "/api/v3/user/sub-list"
    mocked.get(f"{path}?limit=2", payload=ok({"list": _subs(1, 2), "hasNext": True, "cursor": "a"}))
    mocked.get(
        f"{path}?cursor=a&limit=2",
        payload=ok({"list": _subs(3, 4), "hasNext": "true", "cursor": "b"}),
    )
    mocked.get(
        f"{path}?cursor=b&limit=2",
        payload=ok({"list": _subs(5, 6), "hasNext": last_has_next, "cursor": "c"}),
    )
    uids = [sub.sub_uid async for sub in client.iter_uta_subaccounts(page_size=2)]
    assert uids == ["1", "2", "3", "4", "5", "6"]
    assert len(calls(mocked)) == 3


async def test_key_paging_stops_when_the_cursor_does_not_move(
    client: Client, mocked: aioresponses
) -> None:
    """A full page that says hasNext but hands back the cursor it was given ends the paging."""
    path = BASE + "/api/v3/user/sub-api-list"
    page = {"hasNext": True}
    mocked.get(
        f"{path}?limit=1&subUid={SUB}",
        payload=ok(page | {"items": [UTA_KEY], "cursor": "k1"}),
    )
    mocked.get(
        f"{path}?cursor=k1&limit=1&subUid={SUB}",
        payload=ok(page | {"items": [UTA_KEY | {"apiKey": "bg_2"}], "cursor": "k2"}),
    )
    mocked.get(
        f"{path}?cursor=k2&limit=1&subUid={SUB}",
        payload=ok(page | {"items": [UTA_KEY | {"apiKey": "bg_3"}], "cursor": "k2"}),
    )
    keys = [key.api_key async for key in client.iter_uta_subaccount_api_keys(SUB, page_size=1)]
    assert keys == ["bg_uta", "bg_2", "bg_3"]
    assert len(calls(mocked)) == 3


async def test_key_paging_stops_on_an_empty_page(client: Client, mocked: aioresponses) -> None:
    """hasNext true but no row: nothing more is fetched."""
    path = BASE + f"/api/v3/user/sub-api-list?limit=2&subUid={SUB}"
    mocked.get(path, payload=ok({"items": [], "hasNext": True, "cursor": "k9"}))
    keys = [key async for key in client.iter_uta_subaccount_api_keys(SUB, page_size=2)]
    assert keys == []
    assert len(calls(mocked)) == 1


async def test_key_paging_follows_has_next_past_a_short_page(
    client: Client, mocked: aioresponses
) -> None:
    """
    A page shorter than asked for, with hasNext true, is followed: Bitget may page below
    the asked size, and a row not read would be planned again.
    """
    path = BASE + "/api/v3/user/sub-api-list"
    mocked.get(
        f"{path}?limit=2&subUid={SUB}",
        payload=ok({"items": [UTA_KEY], "hasNext": True, "cursor": "k1"}),
    )
    mocked.get(
        f"{path}?cursor=k1&limit=2&subUid={SUB}",
        payload=ok({"items": [UTA_KEY | {"apiKey": "bg_2"}], "hasNext": False, "cursor": "k2"}),
    )
    keys = [key.api_key async for key in client.iter_uta_subaccount_api_keys(SUB, page_size=2)]
    assert keys == ["bg_uta", "bg_2"]
    assert len(calls(mocked)) == 2


def make_client(credentials: Credentials, **kwargs: Any) -> Client:
    """A client on the mocked default URL without clock sync; ``Unpaced`` unless told."""
    kwargs.setdefault("scheduler", Unpaced())
    return Client(
        credentials, config=ClientConfig(sync_clock=False), clock_ms=lambda: NOW_MS, **kwargs
    )


# -- pacing -------------------------------------------------------------------------------


def _endpoint_of(path: str) -> ep.Endpoint:
    (endpoint,) = [e for e in ep.ENDPOINTS.values() if e.path == path.partition("?")[0]]
    return endpoint


@pytest.mark.parametrize(
    ("call", "method", "path", "data"),
    [pytest.param(case[1], case[2], case[3], case[5], id=case[0]) for case in V3_CASES],
)
async def test_each_v3_endpoint_has_its_own_lane_and_rate(
    credentials: Credentials,
    mocked: aioresponses,
    call: Call,
    method: str,
    path: str,
    data: Any,
) -> None:
    """
    Every v3 call is paced on the (UID, endpoint) lane of its own endpoint, at the rate
    Bitget documents: 10/s for the user endpoints, 20/s for the broker ones and settings,
    5/s for account-info.
    """
    endpoint = _endpoint_of(path)
    documented = 20 if path.startswith(("/api/v3/broker/", SETTINGS)) else 10
    if path == ACCOUNT_INFO_V3:
        documented = 5
    assert (endpoint.rate, endpoint.window, endpoint.scope) == (documented, 1.0, "uid")
    assert endpoint.family == "v3"
    mocked.add(BASE + path, method, payload=ok(data))
    scheduler = RateLimitScheduler()
    async with make_client(credentials, scheduler=scheduler) as client:
        await call(client)
    stats = scheduler.statistics()
    assert [(lane.uid, lane.endpoint) for lane in stats.lanes] == [(UID, endpoint.name)]
    lane = stats.lane(UID, endpoint.name)
    assert lane is not None
    assert lane.dispatched == 1
    assert lane.interval == pytest.approx((1.0 / documented) * (1 + lane.margin))


def test_every_v3_endpoint_is_called_by_a_method() -> None:
    """The cases above cover every v3 endpoint in the table."""
    covered = {_endpoint_of(case[3]).name for case in V3_CASES}
    v3 = {name for name, endpoint in ep.ENDPOINTS.items() if endpoint.family == "v3"}
    assert covered == v3
