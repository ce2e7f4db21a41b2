"""The client's transport-level facts, checked with aioresponses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from bitget_keys import Client, ClientConfig, Credentials
from bitget_keys import models as m
from bitget_keys.errors import (
    APIError,
    AuthenticationError,
    ClientStateError,
    ClockSkewError,
    ConfigurationError,
    ConflictError,
    CopyAPIKeyExistsError,
    CopyModelNotSupportedError,
    InvalidRequestError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitExceededError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    UnifiedAccountModeError,
)
from bitget_keys.testing import Unpaced
from tests.conftest import API_KEY, NOW_MS, PASSPHRASE, SECRET_KEY, UID

BASE = "https://api.bitget.com"
PASS = "Passw0rd1234"
IP = "203.0.113.7"


def ok(data: Any) -> dict[str, Any]:
    return {"code": "00000", "msg": "success", "requestTime": NOW_MS + 7, "data": data}


def fail(code: str, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg, "requestTime": NOW_MS + 7, "data": None}


def calls(mocked: aioresponses) -> list[tuple[str, URL, dict[str, Any]]]:
    """Every recorded request as (method, url, kwargs), in order."""
    recorded: list[tuple[str, URL, dict[str, Any]]] = []
    for (method, url), requests in mocked.requests.items():
        recorded.extend((method, url, call.kwargs) for call in requests)
    return recorded


def expected_signature(method: str, url: URL, headers: dict[str, str], body: bytes | None) -> str:
    """An independent computation of Bitget's signature over what was sent."""
    query = url.raw_query_string
    message = (
        headers["ACCESS-TIMESTAMP"]
        + method
        + url.raw_path
        + (f"?{query}" if query else "")
        + (body or b"").decode()
    )
    digest = hmac.new(SECRET_KEY.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


E2_REQUEST = m.CreateVirtualSubaccountAPIKeyRequest(
    subaccount_uid="1234567890",
    passphrase=PASS,
    label="bot01",
    ip_list=[IP],
    permissions=["spot_trade", "contract_trade"],
)
E3_REQUEST = m.BatchCreateVirtualSubaccountsRequest(
    items=[
        m.NewVirtualSubaccount(
            name="abcdefgh",
            passphrase=PASS,
            label="bot01",
            permissions=["spot_trade"],
            ip_list=[IP],
        ),
        m.NewVirtualSubaccount(
            name="ijklmnop", passphrase=PASS, label="bot02", permissions=["read"], ip_list=[]
        ),
    ]
)
E4_REQUEST = m.ModifyBrokerSubaccountAPIKeyRequest(
    sub_uid="555",
    api_key="bg_broker",
    passphrase=PASS,
    permissions=["spot_trade", "wallet_transfer"],
    perm_type="read_and_write",
    ip_list=[IP],
    label="desk",
)
S4_REQUEST = m.ModifyVirtualSubaccountAPIKeyRequest(
    subaccount_uid="1234567890", api_key="bg_k", passphrase=PASS, label="bot01", ip_list=[IP]
)
S7_REQUEST = m.CreateBrokerSubaccountAPIKeyRequest(
    sub_uid="555",
    passphrase=PASS,
    label="desk",
    perm_type="readonly",
    permissions=["spot_trade"],
    ip_list=[],
)
BROKER_KEY = {
    "subUid": "555",
    "apiKey": "bg_broker",
    "label": "desk",
    "ipList": [IP],
    "permType": "read_and_write",
    "permList": ["spot_trade", "wallet_transfer"],
}

Call = Callable[[Client], Awaitable[Any]]

# (id, call, method, path with query, exact body or None, response data, check of the result)
ENDPOINT_CASES: list[tuple[str, Call, str, str, str | None, Any, Callable[[Any], bool]]] = [
    (
        "create-copy-api",
        lambda c: c.create_copy_api_key(m.CreateCopyAPIKeyRequest(passphrase=PASS)),
        "POST",
        "/api/v2/copy/mix-trader/create-copy-api",
        '{"passphrase":"Passw0rd1234"}',
        [{"apikey": "bg_copy", "secret": "COPYSECRET1", "permissions": ["copytrading_trade"]}],
        lambda r: r.api_key == "bg_copy" and r.secret_key.reveal() == "COPYSECRET1",
    ),
    (
        "create-virtual-subaccount-apikey",
        lambda c: c.create_virtual_subaccount_api_key(E2_REQUEST),
        "POST",
        "/api/v2/user/create-virtual-subaccount-apikey",
        (
            '{"subAccountUid":"1234567890","passphrase":"Passw0rd1234","label":"bot01",'
            '"ipList":["203.0.113.7"],"permList":["spot_trade","contract_trade"]}'
        ),
        {
            "subAccountUid": "1234567890",
            "label": "bot01",
            "subAccountApiKey": "bg_e2",
            "secretKey": "E2SECRET",
            "permList": ["spot_trade", "contract_trade"],
            "ipList": [IP],
        },
        lambda r: (
            isinstance(r, m.CreatedVirtualSubaccountAPIKey)
            and r.api_key == "bg_e2"
            and r.secret_key.reveal() == "E2SECRET"
        ),
    ),
    (
        "batch-create-subaccount-and-apikey",
        lambda c: c.batch_create_virtual_subaccounts(E3_REQUEST),
        "POST",
        "/api/v2/user/batch-create-subaccount-and-apikey",
        (
            '[{"subAccountName":"abcdefgh","passphrase":"Passw0rd1234","label":"bot01",'
            '"permList":["spot_trade"],"ipList":["203.0.113.7"]},{"subAccountName":"ijklmnop",'
            '"passphrase":"Passw0rd1234","label":"bot02","permList":["read"],"ipList":[]}]'
        ),
        [
            {
                "subAccountUid": "***********",
                "subAccountName": "*****@*******.com",
                "label": label,
                "subAccountApiKey": f"bg_{label}",
                "secretKey": f"S_{label}",
                "permList": ["spot_trade"],
                "ipList": [IP],
            }
            for label in ("bot01", "bot02")
        ],
        lambda r: (
            [row.label for row in r] == ["bot01", "bot02"] and r[1].secret_key.reveal() == "S_bot02"
        ),
    ),
    (
        "modify-subaccount-apikey",
        lambda c: c.modify_broker_subaccount_api_key(E4_REQUEST),
        "POST",
        "/api/v2/broker/manage/modify-subaccount-apikey",
        (
            '{"subUid":"555","apiKey":"bg_broker","passphrase":"Passw0rd1234",'
            '"permList":["spot_trade","wallet_transfer"],"permType":"read_and_write",'
            '"label":"desk","ipList":["203.0.113.7"]}'
        ),
        BROKER_KEY,
        lambda r: r.perm_type is m.PermType.READ_AND_WRITE and r.secret_key is None,
    ),
    (
        "server-time",
        lambda c: c.server_time(),
        "GET",
        "/api/v2/public/time",
        None,
        {"serverTime": "1700000000123"},
        lambda r: r.server_time_ms == 1700000000123,
    ),
    (
        "account-info",
        lambda c: c.account_info(),
        "GET",
        "/api/v2/spot/account/info",
        None,
        {"userId": "1000000001", "parentId": 0, "authorities": ["readonly"], "traderType": ""},
        lambda r: r.user_id == "1000000001" and r.parent_id == "0",
    ),
    (
        "virtual-subaccount-list",
        lambda c: c.list_virtual_subaccounts(m.ListVirtualSubaccountsRequest(id_less_than="51")),
        "GET",
        "/api/v2/user/virtual-subaccount-list?idLessThan=51&limit=100",
        None,
        {"endId": "40", "subAccountList": [{"subAccountUid": "41", "subAccountName": "abcdefgh"}]},
        lambda r: r.end_id == "40" and r.subaccounts[0].subaccount_uid == "41",
    ),
    (
        "virtual-subaccount-apikey-list",
        lambda c: c.list_virtual_subaccount_api_keys("1234567890"),
        "GET",
        "/api/v2/user/virtual-subaccount-apikey-list?subAccountUid=1234567890",
        None,
        [{"subAccountUid": "1234567890", "label": "bot01", "subAccountApiKey": "bg_e2"}],
        lambda r: r[0].api_key == "bg_e2" and r[0].secret_key is None,
    ),
    (
        "modify-virtual-subaccount-apikey",
        lambda c: c.modify_virtual_subaccount_api_key(S4_REQUEST),
        "POST",
        "/api/v2/user/modify-virtual-subaccount-apikey",
        (
            '{"subAccountUid":"1234567890","subAccountApiKey":"bg_k","passphrase":"Passw0rd1234",'
            '"label":"bot01","ipList":["203.0.113.7"]}'
        ),
        {"subAccountUid": "1234567890", "label": "bot01", "subAccountApiKey": "bg_k"},
        lambda r: r.api_key == "bg_k",
    ),
    (
        "create-virtual-subaccount",
        lambda c: c.create_virtual_subaccounts(
            m.CreateVirtualSubaccountsRequest(names=["abcdefgh"])
        ),
        "POST",
        "/api/v2/user/create-virtual-subaccount",
        '{"subAccountList":["abcdefgh"]}',
        {
            "successList": [{"subaAccountUid": "9", "subaAccountName": "abcdefgh"}],
            "failureList": [],
        },
        lambda r: r.successes[0].subaccount_uid == "9" and r.failures == (),
    ),
    (
        "broker-create-subaccount-apikey",
        lambda c: c.create_broker_subaccount_api_key(S7_REQUEST),
        "POST",
        "/api/v2/broker/manage/create-subaccount-apikey",
        (
            '{"subUid":"555","passphrase":"Passw0rd1234","label":"desk","permType":"readonly",'
            '"permList":["spot_trade"],"ipList":[]}'
        ),
        BROKER_KEY | {"secretKey": "BROKERSECRET"},
        lambda r: r.secret_key is not None and r.secret_key.reveal() == "BROKERSECRET",
    ),
    (
        "broker-subaccount-apikey-list",
        lambda c: c.list_broker_subaccount_api_keys("555"),
        "GET",
        "/api/v2/broker/manage/subaccount-apikey-list?subUid=555",
        None,
        [BROKER_KEY],
        lambda r: r[0].sub_uid == "555",
    ),
]


@pytest.mark.parametrize(
    ("call", "method", "path", "body", "data", "check"),
    [pytest.param(*case[1:], id=case[0]) for case in ENDPOINT_CASES],
)
async def test_endpoint_wire_format(
    client: Client,
    mocked: aioresponses,
    call: Call,
    method: str,
    path: str,
    body: str | None,
    data: Any,
    check: Callable[[Any], bool],
) -> None:
    """Exact method, URL and body bytes; signature over what was sent; typed result."""
    mocked.add(BASE + path, method, payload=ok(data))
    result = await call(client)
    assert check(result)
    assert_one_request(mocked, method, path, body, signed=path != "/api/v2/public/time")


def assert_one_request(
    mocked: aioresponses, method: str, path: str, body: str | None, *, signed: bool = True
) -> None:
    """The only request sent: its method, URL, exact body bytes and (if signed) signature."""
    ((sent_method, url, kwargs),) = calls(mocked)
    assert sent_method == method
    assert str(url) == BASE + path
    assert kwargs["data"] == (body.encode() if body is not None else None)
    headers = kwargs["headers"]
    assert headers["locale"] == "en-US"
    if not signed:
        assert "ACCESS-SIGN" not in headers
        return
    assert headers["ACCESS-KEY"] == API_KEY
    assert headers["ACCESS-PASSPHRASE"] == PASSPHRASE
    assert headers["ACCESS-TIMESTAMP"] == str(NOW_MS)
    assert headers["Content-Type"] == "application/json"
    assert headers["ACCESS-SIGN"] == expected_signature(method, url, headers, kwargs["data"])
    assert "json" not in kwargs


ERROR_CASES = [
    (400, fail("40009", "sign signature error"), AuthenticationError),
    (400, fail("40012", "apikey/password is incorrect"), AuthenticationError),
    (400, fail("40005", "Invalid ACCESS_TIMESTAMP"), ClockSkewError),
    (400, fail("40014", "Incorrect permissions, need {0} permissions"), PermissionDeniedError),
    (400, fail("40038", "The current ip is not in the apikey ip whitelist"), PermissionDeniedError),
    (400, fail("40029", "This account is not a Broker"), PermissionDeniedError),
    (400, fail("40085", "You are in Unified Account mode"), UnifiedAccountModeError),
    (400, fail("40017", "Parameter verification failed"), InvalidRequestError),
    (400, fail("40060", "subNames already exists"), ConflictError),
    (400, fail("40063", "API exceeds the maximum limit added"), QuotaExceededError),
    (
        400,
        fail("40069", "The maximum number of sub-accounts created has been reached"),
        QuotaExceededError,
    ),
    (400, fail("40099", "You have already created a Copy API Key."), CopyAPIKeyExistsError),
    (
        400,
        fail("40099", "This interface is only applicable to the new Copy model"),
        CopyModelNotSupportedError,
    ),
    (400, fail("40015", "System is abnormal, please try again later"), ServerError),
    (500, fail("45001", "Unknown error"), ServerError),
    (429, fail("429", "Too Many Requests"), RateLimitExceededError),
    (200, fail("429", "Too Many Requests"), RateLimitExceededError),
    (
        200,
        fail("1001", "The request is too frequent and has been throttled"),
        RateLimitExceededError,
    ),
    (400, fail("50009", "The operation is too frequent"), RateLimitExceededError),
    (200, fail("40017", "Parameter verification failed"), InvalidRequestError),
    (418, fail("99999", "Undocumented"), InvalidRequestError),
]


@pytest.mark.parametrize(
    ("status", "payload", "error"),
    [
        pytest.param(*case, id=f"{case[0]}-{case[1]['code']}-{case[2].__name__}")
        for case in ERROR_CASES
    ],
)
async def test_error_families(
    credentials: Credentials,
    mocked: aioresponses,
    status: int,
    payload: dict[str, Any],
    error: type[APIError],
) -> None:
    """Each Bitget error family maps to its exception, decided by the body code."""
    config = ClientConfig(sync_clock=False)
    path = "/api/v2/user/create-virtual-subaccount-apikey"
    mocked.post(BASE + path, status=status, payload=payload)
    async with Client(
        credentials, config=config, scheduler=Unpaced(), clock_ms=lambda: NOW_MS
    ) as client:
        with pytest.raises(error) as info:
            await client.create_virtual_subaccount_api_key(E2_REQUEST)
    exc = info.value
    assert type(exc) is error
    assert (exc.http_status, exc.code, exc.message) == (status, payload["code"], payload["msg"])
    assert exc.endpoint == path
    assert exc.request_time == NOW_MS + 7
    assert len(calls(mocked)) == 1  # never re-sent


async def test_unified_account_error_explains_itself(client: Client, mocked: aioresponses) -> None:
    """40085 tells the user that classic v2 endpoints don't serve unified-account masters."""
    mocked.get(
        BASE + "/api/v2/spot/account/info",
        status=400,
        payload=fail(
            "40085", "You are in Unified Account mode, and the Classic Account API is not supported"
        ),
    )
    with pytest.raises(UnifiedAccountModeError) as info:
        await client.account_info()
    assert "classic v2" in str(info.value)
    assert "Unified Account mode" in str(info.value)


async def test_throttled_request_is_sent_again(client: Client, mocked: aioresponses) -> None:
    """A 429 (certainly not carried out) is re-sent, and the retry succeeds."""
    path = BASE + "/api/v2/user/virtual-subaccount-apikey-list?subAccountUid=7"
    mocked.get(path, status=429, payload=fail("429", "Too Many Requests"))
    mocked.get(path, status=200, payload=fail("1001", "throttled"))
    mocked.get(path, payload=ok([]))
    assert await client.list_virtual_subaccount_api_keys("7") == ()
    assert len(calls(mocked)) == 3


async def test_throttling_that_persists_is_raised(
    credentials: Credentials, mocked: aioresponses
) -> None:
    """When the scheduler stops re-queueing, the rate-limit error reaches the caller."""
    path = BASE + "/api/v2/user/virtual-subaccount-apikey-list?subAccountUid=7"
    mocked.get(path, status=429, payload=fail("429", "Too Many Requests"), repeat=True)
    config = ClientConfig(sync_clock=False)
    async with Client(credentials, config=config, scheduler=Unpaced(retries=2)) as client:
        with pytest.raises(RateLimitExceededError):
            await client.list_virtual_subaccount_api_keys("7")
    assert len(calls(mocked)) == 3


async def test_clock_offset_is_the_round_trip_midpoint(
    credentials: Credentials, mocked: aioresponses
) -> None:
    """The offset is serverTime minus the midpoint of send and receive times."""
    ticks = iter([1_000, 1_050, 1_100])  # before sending, at the send, after the answer
    mocked.get(BASE + "/api/v2/public/time", payload=ok({"serverTime": "6050"}))
    async with Client(credentials, clock_ms=lambda: next(ticks)) as client:
        assert await client.sync_clock() == 6050 - 1_050
        assert client.clock_offset_ms == 5_000


async def test_requests_are_stamped_with_server_time(
    credentials: Credentials, mocked: aioresponses
) -> None:
    """Before its first signed request the client syncs, then signs with the offset."""
    mocked.get(BASE + "/api/v2/public/time", payload=ok({"serverTime": str(NOW_MS + 20_000)}))
    mocked.get(BASE + "/api/v2/spot/account/info", payload=ok({"userId": UID}))
    async with Client(credentials, clock_ms=lambda: NOW_MS) as client:
        await client.account_info()
    sent = calls(mocked)
    assert [str(url) for _, url, _ in sent] == [
        BASE + "/api/v2/public/time",
        BASE + "/api/v2/spot/account/info",
    ]
    assert sent[1][2]["headers"]["ACCESS-TIMESTAMP"] == str(NOW_MS + 20_000)


async def test_expired_timestamp_resyncs_and_retries_once(
    credentials: Credentials, mocked: aioresponses
) -> None:
    """On 40008 the clock is measured again and the request re-signed and re-sent once."""
    mocked.get(BASE + "/api/v2/public/time", payload=ok({"serverTime": str(NOW_MS)}))
    mocked.get(BASE + "/api/v2/public/time", payload=ok({"serverTime": str(NOW_MS + 60_000)}))
    path = BASE + "/api/v2/user/create-virtual-subaccount-apikey"
    mocked.post(path, status=400, payload=fail("40008", "Request timestamp expired"))
    mocked.post(path, status=400, payload=fail("40008", "Request timestamp expired"))
    async with Client(credentials, scheduler=Unpaced(), clock_ms=lambda: NOW_MS) as client:
        with pytest.raises(ClockSkewError):
            await client.create_virtual_subaccount_api_key(E2_REQUEST)
    stamps = [
        k["headers"].get("ACCESS-TIMESTAMP")
        for _, u, k in calls(mocked)
        if u.path != "/api/v2/public/time"
    ]
    assert stamps == [str(NOW_MS), str(NOW_MS + 60_000)]
    assert len(calls(mocked)) == 4  # sync, send, resync, send again; no third send


async def test_timeout_after_sending_is_outcome_unknown(
    client: Client, mocked: aioresponses
) -> None:
    """A create that timed out is not re-sent, and the error says the outcome is unknown."""
    path = BASE + "/api/v2/user/batch-create-subaccount-and-apikey"
    mocked.post(path, exception=TimeoutError())
    mocked.post(path, payload=ok([]))
    with pytest.raises(RequestTimeoutError) as info:
        await client.batch_create_virtual_subaccounts(E3_REQUEST)
    assert info.value.maybe_sent
    assert isinstance(info.value, TimeoutError)
    assert "outcome is unknown" in str(info.value)
    assert len(calls(mocked)) == 1


async def test_dropped_connection_is_outcome_unknown(client: Client, mocked: aioresponses) -> None:
    """A connection lost after sending is not retried either."""
    path = BASE + "/api/v2/copy/mix-trader/create-copy-api"
    mocked.post(path, exception=aiohttp.ServerDisconnectedError())
    mocked.post(path, payload=ok([]))
    with pytest.raises(TransportError) as info:
        await client.create_copy_api_key(m.CreateCopyAPIKeyRequest(passphrase=PASS))
    assert info.value.maybe_sent
    assert len(calls(mocked)) == 1


def _refused() -> aiohttp.ClientConnectorError:
    key = SimpleNamespace(host="api.bitget.com", port=443, ssl=True)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))  # type: ignore[arg-type]


async def test_refused_connection_is_retried(client: Client, mocked: aioresponses) -> None:
    """A connection that never opened proves nothing was sent, so it is tried again."""
    path = BASE + "/api/v2/user/create-virtual-subaccount-apikey"
    mocked.post(path, exception=_refused())
    mocked.post(
        path,
        payload=ok(
            {"subAccountUid": "1", "label": "bot01", "subAccountApiKey": "k", "secretKey": "s"}
        ),
    )
    created = await client.create_virtual_subaccount_api_key(E2_REQUEST)
    assert created.api_key == "k"
    assert len(calls(mocked)) == 2


async def test_refused_connection_gives_up(client: Client, mocked: aioresponses) -> None:
    """After max_connect_retries the error says the request was not sent."""
    path = BASE + "/api/v2/user/create-virtual-subaccount-apikey"
    mocked.post(path, exception=_refused(), repeat=True)
    with pytest.raises(TransportError) as info:
        await client.create_virtual_subaccount_api_key(E2_REQUEST)
    assert not info.value.maybe_sent
    assert "was not sent" in str(info.value)
    assert len(calls(mocked)) == 1 + client.config.max_connect_retries


async def test_uid_is_learned_once(credentials: Credentials, mocked: aioresponses) -> None:
    """Without a UID in the credentials, account info is asked once and remembered."""
    mocked.get(BASE + "/api/v2/spot/account/info", payload=ok({"userId": "777"}))
    anonymous = Credentials(API_KEY, SECRET_KEY, PASSPHRASE)
    async with Client(anonymous, config=ClientConfig(sync_clock=False)) as client:
        assert await client.uid() == "777"
        assert await client.uid() == "777"
        assert "uid=777" in repr(client)
    assert len(calls(mocked)) == 1


async def test_uid_from_credentials_needs_no_request(client: Client, mocked: aioresponses) -> None:
    """A UID given in the credentials is used as is."""
    assert await client.uid() == UID
    assert calls(mocked) == []


async def test_paging_follows_the_cursor(client: Client, mocked: aioresponses) -> None:
    """iter_virtual_subaccounts follows endId until a short page."""
    path = BASE + "/api/v2/user/virtual-subaccount-list"
    first = [{"subAccountUid": str(uid)} for uid in (9, 8)]
    mocked.get(f"{path}?limit=2", payload=ok({"endId": "8", "subAccountList": first}))
    mocked.get(
        f"{path}?idLessThan=8&limit=2",
        payload=ok({"endId": "7", "subAccountList": [{"subAccountUid": "7"}]}),
    )
    uids = [sub.subaccount_uid async for sub in client.iter_virtual_subaccounts(page_size=2)]
    assert uids == ["9", "8", "7"]
    assert len(calls(mocked)) == 2


# -- lifecycle ------------------------------------------------------------------------


async def test_closed_client_refuses_requests(credentials: Credentials) -> None:
    """Any use after aclose raises ClientStateError; aclose is idempotent."""
    client = Client(credentials)
    async with client:
        pass
    assert client.closed
    await client.aclose()
    with pytest.raises(ClientStateError):
        await client.server_time()
    with pytest.raises(ClientStateError):
        await client.__aenter__()


async def test_client_opens_once(credentials: Credentials) -> None:
    """A second `async with` on the same client is refused."""
    async with Client(credentials) as client:
        with pytest.raises(ClientStateError):
            await client.__aenter__()


async def test_implicit_open_then_close(credentials: Credentials, mocked: aioresponses) -> None:
    """A first request opens the client; aclose then closes its own session."""
    mocked.get(BASE + "/api/v2/public/time", payload=ok({"serverTime": "1"}))
    client = Client(credentials)
    assert "unopened" in repr(client)
    await client.server_time()
    assert "opened" in repr(client)
    await client.aclose()
    assert "closed" in repr(client)


def test_sync_with_is_a_type_error(credentials: Credentials) -> None:
    """`with Client(...)` fails loudly: the client is asynchronous."""
    with pytest.raises(TypeError, match="async with"), Client(credentials):  # type: ignore[attr-defined]
        pass


async def test_borrowed_session_stays_open(credentials: Credentials, mocked: aioresponses) -> None:
    """A session passed in is used and never closed by the client."""
    mocked.get(BASE + "/api/v2/public/time", payload=ok({"serverTime": "1"}))
    async with aiohttp.ClientSession() as session:
        async with Client(credentials, session=session) as client:
            await client.server_time()
        assert not session.closed


async def test_owned_session_is_closed(credentials: Credentials, mocked: aioresponses) -> None:
    """The session the client made is closed with it (warnings-as-errors would catch a leak)."""
    mocked.get(BASE + "/api/v2/public/time", payload=ok({"serverTime": "1"}))
    client = Client(credentials)
    async with client:
        await client.server_time()
    session = client._transport._session  # type: ignore[attr-defined]
    assert session is not None
    assert session.closed


def test_base_url_from_argument_environment_and_default(
    credentials: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The argument beats BITGET_BASE_URL, which beats the production default."""
    monkeypatch.delenv("BITGET_BASE_URL", raising=False)
    assert Client(credentials).base_url == "https://api.bitget.com"
    monkeypatch.setenv("BITGET_BASE_URL", "http://127.0.0.1:8080/")
    assert Client(credentials).base_url == "http://127.0.0.1:8080"
    assert Client(credentials, base_url="http://localhost:1").base_url == "http://localhost:1"


@pytest.mark.parametrize("url", ["ftp://x", "api.bitget.com", "http://"])
def test_bad_base_url(credentials: Credentials, url: str) -> None:
    """A base URL that isn't http(s) with a host is a configuration error."""
    with pytest.raises(ConfigurationError, match="base_url"):
        Client(credentials, base_url=url)


def test_config_is_validated() -> None:
    """Timeouts and waits must be positive, retry counts not negative."""
    with pytest.raises(ConfigurationError, match="request_timeout"):
        ClientConfig(request_timeout=0)
    with pytest.raises(ConfigurationError, match="max_rate_limit_wait"):
        ClientConfig(max_rate_limit_wait=0)


def test_session_and_transport_are_exclusive(credentials: Credentials) -> None:
    """Passing both a session and a transport is refused."""

    class _Nothing:
        async def send(self, *args: object, **kwargs: object) -> Any:
            raise NotImplementedError

        async def aclose(self) -> None:
            pass

    with pytest.raises(ConfigurationError):
        Client(credentials, session=object(), transport=_Nothing())  # type: ignore[arg-type]


def test_body_json_is_compact() -> None:
    """Sanity: the recorded bodies above are compact JSON, as signed."""
    body = json.dumps({"a": [1, 2]}, separators=(",", ":"))
    assert body == '{"a":[1,2]}'
