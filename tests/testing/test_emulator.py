"""The emulator: the client against it over loopback, and each of its rules."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import hmac
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import yarl

from bitget_keys import Client, ClientConfig, ServerClock
from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys.errors import (
    APIError,
    AuthenticationError,
    ClockSkewError,
    ConflictError,
    CopyAPIKeyExistsError,
    CopyModelNotSupportedError,
    InvalidRequestError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitExceededError,
    ServerError,
    TransportError,
    UnifiedAccountModeError,
)
from bitget_keys.testing import Emulator, EmulatorAccount, Faults, Limits, Unpaced
from bitget_keys.testing._load import SEED_ENDPOINTS, load_request

PASS = "Passw0rd1234"
IP = "203.0.113.7"
NO_RETRY = ClientConfig(max_connect_retries=0)

MASTER = EmulatorAccount(
    uid="1000000001", api_key="bg_master", secret_key="master-secret-0001", passphrase="MasterPass1"
)
BROKER = EmulatorAccount(
    uid="1000000002",
    api_key="bg_broker",
    secret_key="broker-secret-0002",
    passphrase="BrokerPass1",
    broker=True,
)
TRADER = EmulatorAccount(
    uid="1000000003",
    api_key="bg_trader",
    secret_key="trader-secret-0003",
    passphrase="TraderPass1",
    copy_trader="new",
)
OLD_TRADER = EmulatorAccount(
    uid="1000000004",
    api_key="bg_old",
    secret_key="old-secret-0004",
    passphrase="OldPass12",
    copy_trader="old",
)
UNIFIED = EmulatorAccount(
    uid="1000000005",
    api_key="bg_uta",
    secret_key="uta-secret-0005",
    passphrase="UtaPass123",
    unified=True,
)
ACCOUNTS = [MASTER, BROKER, TRADER, OLD_TRADER, UNIFIED]


class Clock:
    """A hand-moved clock for the emulator's rate limits and timestamps."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def monotonic(self) -> float:
        return self.seconds

    def wall_ms(self) -> int:
        return 1_700_000_000_000 + int(self.seconds * 1000)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    # Rate limits are tested on their own below, with a hand-moved clock; here they
    # would only make the test wait for real seconds.
    async with Emulator(ACCOUNTS, limits=Limits(per_uid=False)) as emu:
        emu.exchange.add_broker_subaccount(
            BROKER.uid,
            "5550001",
            {
                "api_key": "bg_sub_key",
                "passphrase": "SubKeyPass1",
                "permissions": ["spot_trade"],
                "label": "old",
            },
        )
        yield emu


def client_for(
    emulator: Emulator, account: EmulatorAccount, config: ClientConfig = NO_RETRY
) -> Client:
    """A client that never waits for a slot: these tests are about the exchange's answers."""
    return Client(
        account.credentials, base_url=emulator.base_url, config=config, scheduler=Unpaced()
    )


def item(name: str, label: str, perms: tuple[str, ...] = ("spot_trade",)) -> m.NewVirtualSubaccount:
    return m.NewVirtualSubaccount(
        name=name, passphrase=PASS, label=label, permissions=perms, ip_list=[IP]
    )


def names(count: int, start: int = 0) -> list[str]:
    """Distinct valid 8-letter names."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [
        letters[(i // 26) % 26] + letters[i % 26] + "subacc" for i in range(start, start + count)
    ]


# -- every client method, end to end over 127.0.0.1 --------------------------------------


async def test_every_endpoint_end_to_end(emulator: Emulator) -> None:
    """Each client method succeeds against the emulator over a real socket."""
    async with client_for(emulator, MASTER, ClientConfig()) as client:
        assert abs((await client.server_time()).server_time_ms - await _wall(client)) < 5_000
        assert (await client.account_info()).user_id == MASTER.uid
        rows = await client.batch_create_virtual_subaccounts(
            m.BatchCreateVirtualSubaccountsRequest(
                items=[item("alphabot", "alpha"), item("betabots", "beta")]
            )
        )
        assert [row.label for row in rows] == ["alpha", "beta"]
        assert all(row.subaccount_name.startswith("*") for row in rows)
        for row in rows:
            assert emulator.exchange.secret_of(row.api_key) == row.secret_key.reveal()
        subs = [sub async for sub in client.iter_virtual_subaccounts(page_size=1)]
        assert sorted(sub.subaccount_name for sub in subs) == ["alphabot", "betabots"]
        alpha = next(sub for sub in subs if sub.label == "alpha")
        created = await client.create_virtual_subaccount_api_key(
            m.CreateVirtualSubaccountAPIKeyRequest(
                subaccount_uid=alpha.subaccount_uid,
                passphrase=PASS,
                label="trade",
                ip_list=[IP],
                permissions=["spot_trade", "read"],
            )
        )
        keys = await client.list_virtual_subaccount_api_keys(alpha.subaccount_uid)
        assert {key.label for key in keys} == {"alpha", "trade"}
        assert all(key.secret_key is None for key in keys)
        modified = await client.modify_virtual_subaccount_api_key(
            m.ModifyVirtualSubaccountAPIKeyRequest(
                subaccount_uid=alpha.subaccount_uid,
                api_key=created.api_key,
                passphrase=PASS,
                label="neutral",
                ip_list=[IP],
                permissions=[],
            )
        )
        assert modified.permissions == ()
        made = await client.create_virtual_subaccounts(
            m.CreateVirtualSubaccountsRequest(names=["gammabot", "alphabot"])
        )
        assert [s.subaccount_name for s in made.successes] == ["gammabot"]
        assert made.failures == ("alphabot",)
    async with client_for(emulator, BROKER, ClientConfig()) as broker:
        changed = await broker.modify_broker_subaccount_api_key(
            m.ModifyBrokerSubaccountAPIKeyRequest(
                sub_uid="5550001",
                api_key="bg_sub_key",
                passphrase="SubKeyPass1",
                permissions=["spot_trade", "wallet_transfer"],
                perm_type="read_and_write",
                ip_list=[IP],
            )
        )
        assert changed.perm_type is m.PermType.READ_AND_WRITE
        new = await broker.create_broker_subaccount_api_key(
            m.CreateBrokerSubaccountAPIKeyRequest(
                sub_uid="5550001",
                passphrase=PASS,
                label="bot",
                perm_type="readonly",
                permissions=["spot_trade"],
                ip_list=[],
            )
        )
        assert new.secret_key is not None
        listed = await broker.list_broker_subaccount_api_keys("5550001")
        assert {key.api_key for key in listed} == {"bg_sub_key", new.api_key}
        assert all(key.secret_key is None for key in listed)
    async with client_for(emulator, TRADER) as trader:
        copy = await trader.create_copy_api_key(m.CreateCopyAPIKeyRequest(passphrase=PASS))
        assert emulator.exchange.secret_of(copy.api_key) == copy.secret_key.reveal()


async def test_copy_key_once_per_trader() -> None:
    """A trader's second create-copy-api, in a later second, is refused as already created."""
    clock = Clock()
    emu = Emulator([TRADER], monotonic=clock.monotonic, wall_clock=clock.wall_ms)
    config = ClientConfig(sync_clock=False)
    async with (
        emu,
        Client(
            TRADER.credentials,
            base_url=emu.base_url,
            config=config,
            clock_ms=clock.wall_ms,
            scheduler=Unpaced(),
        ) as trader,
    ):
        await trader.create_copy_api_key(m.CreateCopyAPIKeyRequest(passphrase=PASS))
        clock.seconds += 1.0
        with pytest.raises(CopyAPIKeyExistsError):
            await trader.create_copy_api_key(m.CreateCopyAPIKeyRequest(passphrase=PASS))


async def _wall(client: Client) -> int:
    import time

    return time.time_ns() // 1_000_000 + client.clock_offset_ms


# -- error families ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "error"),
    [
        pytest.param(UNIFIED, UnifiedAccountModeError, id="unified-40085"),
        pytest.param(OLD_TRADER, CopyModelNotSupportedError, id="old-copy-model"),
        pytest.param(MASTER, PermissionDeniedError, id="not-a-trader"),
    ],
)
async def test_permission_errors(
    emulator: Emulator, account: EmulatorAccount, error: type[Exception]
) -> None:
    """Account-type refusals reach the client as their own errors."""
    async with client_for(emulator, account) as client:
        with pytest.raises(error):
            await client.create_copy_api_key(m.CreateCopyAPIKeyRequest(passphrase=PASS))


async def test_ip_whitelist_of_the_calling_key() -> None:
    """A key bound to other IPs is refused with 40038 when called from 127.0.0.1."""
    bound = EmulatorAccount(
        uid="1000000010",
        api_key="bg_bound",
        secret_key="bound-secret-10",
        passphrase="BoundPass1",
        ip_list=["203.0.113.7"],
    )
    async with Emulator([bound]) as emu, client_for(emu, bound) as client:
        with pytest.raises(PermissionDeniedError) as info:
            await client.list_virtual_subaccounts()
    assert info.value.code == "40038"


async def test_broker_endpoints_refuse_non_brokers(emulator: Emulator) -> None:
    """E4 is for ND brokers only (40029)."""
    async with client_for(emulator, MASTER) as client:
        with pytest.raises(PermissionDeniedError) as info:
            await client.list_broker_subaccount_api_keys("5550001")
    assert info.value.code == "40029"


async def test_clock_skew_is_resynced(emulator: Emulator) -> None:
    """With the exchange 60 s ahead, an unsynced client gets 40008; a syncing one succeeds."""
    skewed = Emulator(ACCOUNTS, faults=Faults(clock_skew_ms=60_000))
    async with skewed:
        async with Client(
            MASTER.credentials,
            base_url=skewed.base_url,
            config=ClientConfig(sync_clock=False),
            scheduler=Unpaced(),
        ) as naive:
            with pytest.raises(ClockSkewError) as info:
                await naive.account_info()
            assert info.value.code == "40008"
        async with Client(
            MASTER.credentials, base_url=skewed.base_url, scheduler=Unpaced()
        ) as synced:
            assert (await synced.account_info()).user_id == MASTER.uid
            assert 59_000 < synced.clock_offset_ms < 61_000


async def test_invalid_conflict_quota(emulator: Emulator) -> None:
    """A taken name is a conflict; a missing sub-account is invalid; the key cap is a quota."""
    clock = Clock()
    emu = Emulator(
        [MASTER], limits=Limits(max_keys=2), monotonic=clock.monotonic, wall_clock=clock.wall_ms
    )
    async with (
        emu,
        Client(
            MASTER.credentials,
            base_url=emu.base_url,
            config=ClientConfig(sync_clock=False),
            clock_ms=clock.wall_ms,
            scheduler=Unpaced(),
        ) as client,
    ):
        await client.batch_create_virtual_subaccounts(
            m.BatchCreateVirtualSubaccountsRequest(items=[item("alphabot", "alpha")])
        )
        clock.seconds += 1.1
        with pytest.raises(ConflictError) as conflict:
            await client.batch_create_virtual_subaccounts(
                m.BatchCreateVirtualSubaccountsRequest(items=[item("alphabot", "other")])
            )
        assert conflict.value.code == "40060"
        uid = emu.exchange.subaccounts(MASTER.uid)[0]["uid"]
        request = m.CreateVirtualSubaccountAPIKeyRequest(
            subaccount_uid=uid, passphrase=PASS, label="k2", ip_list=[], permissions=["read"]
        )
        await client.create_virtual_subaccount_api_key(request)
        with pytest.raises(QuotaExceededError) as quota:
            await client.create_virtual_subaccount_api_key(attrs_evolve(request, label="k3"))
        assert quota.value.code == "40063"
        with pytest.raises(InvalidRequestError) as invalid:
            await client.create_virtual_subaccount_api_key(
                attrs_evolve(request, subaccount_uid="999")
            )
        assert invalid.value.code == "40066"


def attrs_evolve(request: Any, **changes: Any) -> Any:
    import attrs

    return attrs.evolve(request, **changes)


async def test_server_error_has_no_effect() -> None:
    """An injected 503 reaches the client as ServerError and creates nothing."""
    emu = Emulator(
        [MASTER],
        faults=Faults(server_error=1.0, endpoints=frozenset({"batch_create_virtual_subaccounts"})),
    )
    async with emu, client_for(emu, MASTER) as client:
        with pytest.raises(ServerError):
            await client.batch_create_virtual_subaccounts(
                m.BatchCreateVirtualSubaccountsRequest(items=[item("alphabot", "alpha")])
            )
    assert emu.exchange.subaccounts(MASTER.uid) == []


async def test_drop_after_commit_is_outcome_unknown() -> None:
    """A dropped connection after the fact: the client says maybe sent, the thing exists."""
    emu = Emulator(
        [MASTER],
        faults=Faults(
            drop_after_commit=1.0, endpoints=frozenset({"batch_create_virtual_subaccounts"})
        ),
    )
    async with emu, client_for(emu, MASTER) as client:
        with pytest.raises(TransportError) as info:
            await client.batch_create_virtual_subaccounts(
                m.BatchCreateVirtualSubaccountsRequest(items=[item("alphabot", "alpha")])
            )
    assert info.value.maybe_sent
    assert [sub["name"] for sub in emu.exchange.subaccounts(MASTER.uid)] == ["alphabot"]


async def test_latency_is_injected() -> None:
    """Latency delays the arrival the exchange counts."""
    emu = Emulator([MASTER], faults=Faults(latency=0.005))
    async with emu, client_for(emu, MASTER) as client:
        import time

        started = time.perf_counter()
        await client.server_time()
        assert time.perf_counter() - started >= 0.005


# -- signature checks on tampered requests ---------------------------------------------------


def _signed(secret: str, stamp: str, method: str, path: str, query: str, body: bytes) -> str:
    message = (stamp + method + path + (f"?{query}" if query else "")).encode() + body
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


async def _raw(
    emulator: Emulator,
    method: str,
    path: str,
    *,
    query: str = "",
    body: bytes = b"",
    sign_query: str | None = None,
    sign_body: bytes | None = None,
    stamp: int | None = None,
    passphrase: str = "MasterPass1",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    import time

    stamp_text = str(stamp if stamp is not None else time.time_ns() // 1_000_000)
    signature = _signed(
        "master-secret-0001",
        stamp_text,
        method,
        path,
        query if sign_query is None else sign_query,
        body if sign_body is None else sign_body,
    )
    sent = {
        "ACCESS-KEY": MASTER.api_key,
        "ACCESS-SIGN": signature,
        "ACCESS-TIMESTAMP": stamp_text,
        "ACCESS-PASSPHRASE": passphrase,
        "Content-Type": "application/json",
        **(headers or {}),
    }
    url = emulator.base_url + path + (f"?{query}" if query else "")
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=body or None, headers=sent) as response,
    ):
        return response.status, orjson.loads(await response.read())


async def test_untampered_raw_request_passes(emulator: Emulator) -> None:
    """The raw helper itself signs correctly (so the tamper tests below mean something)."""
    status, body = await _raw(
        emulator, "GET", "/api/v2/user/virtual-subaccount-list", query="limit=10"
    )
    assert (status, body["code"]) == (200, "00000")


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        pytest.param(
            {"body": b'[{"a":1}]', "sign_body": b'[{"a":2}]'}, "40009", id="tampered-body"
        ),
        pytest.param(
            {
                "query": "limit=10",
                "sign_query": "limit=11",
                "method": "GET",
                "path": "/api/v2/user/virtual-subaccount-list",
            },
            "40009",
            id="tampered-query",
        ),
        pytest.param({"stamp": 1_600_000_000_000}, "40008", id="stale-timestamp"),
        pytest.param({"passphrase": "WrongPass1"}, "40012", id="wrong-passphrase"),
    ],
)
async def test_tampering_is_refused(emulator: Emulator, kwargs: dict[str, Any], code: str) -> None:
    """Body, query, timestamp and passphrase are all checked, with Bitget's codes."""
    method = kwargs.pop("method", "POST")
    path = kwargs.pop("path", "/api/v2/user/batch-create-subaccount-and-apikey")
    status, body = await _raw(emulator, method, path, **kwargs)
    assert (status, body["code"], body["data"]) == (400, code, None)
    assert isinstance(body["requestTime"], int)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param(b"{not json", "40017", id="malformed-json"),
        pytest.param(b'{"subAccountName":"abcdefgh"}', "40017", id="object-not-array"),
        pytest.param(
            b'[{"subAccountName":"abc","passphrase":"Passw0rd1234","label":"x","permList":["read"],"ipList":[]}]',
            "40055",
            id="short-name",
        ),
        pytest.param(
            b'[{"subAccountName":"abcdefgh","passphrase":"Passw0rd1234","label":"x","permList":["read"],"ipList":[],"extra":1}]',
            "40017",
            id="unknown-field",
        ),
        pytest.param(
            b'[{"subAccountName":"abcdefgh","passphrase":12,"label":"x","permList":["read"],"ipList":[]}]',
            "40017",
            id="wrong-type",
        ),
        pytest.param(
            b'[{"subAccountName":"abcdefgh","passphrase":"short","label":"x","permList":["read"],"ipList":[]}]',
            "40070",
            id="bad-passphrase",
        ),
        pytest.param(b"[]", "40058", id="empty-batch"),
    ],
)
async def test_bad_input_gets_bitget_errors_never_500(
    emulator: Emulator, body: bytes, code: str
) -> None:
    """Malformed or invalid bodies get a documented 4xx error envelope."""
    status, answer = await _raw(
        emulator, "POST", "/api/v2/user/batch-create-subaccount-and-apikey", body=body
    )
    assert status == 400
    assert answer["code"] == code


BATCH_PATH = "/api/v2/user/batch-create-subaccount-and-apikey"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-unknown"])
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\x00\xffnot compressed at all", id="garbage"),
        pytest.param(gzip.compress(b"[]"), id="real-gzip"),
        pytest.param(zlib.compress(b'{"a":1}'), id="real-zlib"),
    ],
)
async def test_a_content_encoded_body_is_a_bitget_error_never_500(
    emulator: Emulator, encoding: str, body: bytes
) -> None:
    """
    A body under any Content-Encoding is taken as the bytes sent, as Bitget's signature
    check takes it: signed over those bytes, it is not JSON, so 40017, never an HTTP 500.
    """
    status, answer = await _raw(
        emulator, "POST", BATCH_PATH, body=body, headers={"Content-Encoding": encoding}
    )
    assert (status, answer["code"], answer["data"]) == (400, "40017", None)
    assert emulator.exchange.subaccounts(MASTER.uid) == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_an_unsigned_content_encoded_request_gets_an_envelope(
    emulator: Emulator, encoding: str
) -> None:
    """Without credentials, a garbage encoded body gets 40001 like any unsigned request."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            emulator.base_url + BATCH_PATH,
            data=b"\x1f\x8b garbage",
            headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
        ) as response,
    ):
        assert response.status == 400
        assert orjson.loads(await response.read())["code"] == "40001"
    # And the emulator goes on serving.
    status, answer = await _raw(emulator, "GET", "/api/v2/user/virtual-subaccount-list")
    assert (status, answer["code"]) == (200, "00000")


# -- rules ---------------------------------------------------------------------------------


def exchange_request(
    emu: Emulator,
    account: EmulatorAccount,
    method: str,
    path: str,
    body: bytes,
    clock: Clock,
    query: str = "",
) -> tuple[int, dict[str, Any]]:
    """Drive the exchange directly (no sockets) with a correctly signed request."""
    stamp = str(clock.wall_ms())
    headers = {
        "ACCESS-KEY": account.api_key,
        "ACCESS-SIGN": _signed(account.secret_key.reveal(), stamp, method, path, query, body),
        "ACCESS-TIMESTAMP": stamp,
        "ACCESS-PASSPHRASE": account.passphrase.reveal(),
        "Content-Type": "application/json",
    }
    answer, _, _ = emu.exchange.handle(
        method=method,
        path=path,
        query=query,
        headers=headers,
        body=body,
        client_ip="198.51.100.1",
        now_ms=clock.monotonic() * 1000,
        wall_ms=clock.wall_ms(),
    )
    return answer.status, orjson.loads(answer.body)


def batch_body(*pairs: tuple[str, str]) -> bytes:
    return orjson.dumps(
        [
            {
                "subAccountName": name,
                "passphrase": PASS,
                "label": label,
                "permList": ["read"],
                "ipList": [],
            }
            for name, label in pairs
        ]
    )


def test_twenty_subaccount_quota() -> None:
    """The 21st sub-account of a master is refused with 40069."""
    clock = Clock()
    emu = Emulator([MASTER], monotonic=clock.monotonic, wall_clock=clock.wall_ms)
    for chunk in range(4):
        group = names(5, start=chunk * 5)
        status, answer = exchange_request(
            emu,
            MASTER,
            "POST",
            "/api/v2/user/batch-create-subaccount-and-apikey",
            batch_body(*[(n, n[:6]) for n in group]),
            clock,
        )
        assert (status, answer["code"]) == (200, "00000")
        clock.seconds += 1.0
    status, answer = exchange_request(
        emu,
        MASTER,
        "POST",
        "/api/v2/user/batch-create-subaccount-and-apikey",
        batch_body((names(1, start=40)[0], "extra")),
        clock,
    )
    assert (status, answer["code"]) == (400, "40069")
    assert len(emu.exchange.subaccounts(MASTER.uid)) == 20


def test_names_are_unique_across_masters_and_masked() -> None:
    """A name taken by one master can't be used by another; batch answers mask names."""
    clock = Clock()
    other = EmulatorAccount(
        uid="1000000009", api_key="bg_other", secret_key="other-secret-9", passphrase="OtherPass9"
    )
    emu = Emulator([MASTER, other], monotonic=clock.monotonic, wall_clock=clock.wall_ms)
    status, answer = exchange_request(
        emu,
        MASTER,
        "POST",
        "/api/v2/user/batch-create-subaccount-and-apikey",
        batch_body(("alphabot", "a")),
        clock,
    )
    assert status == 200
    assert answer["data"][0]["subAccountName"] == "*****@*******.com"
    assert answer["data"][0]["subAccountUid"].startswith("*")
    status, answer = exchange_request(
        emu,
        other,
        "POST",
        "/api/v2/user/batch-create-subaccount-and-apikey",
        batch_body(("ALPHABOT", "b")),
        clock,
    )
    assert (status, answer["code"]) == (400, "40060")
    clock.seconds += 1.0  # a refused request still used the lane's slot
    status, answer = exchange_request(
        emu,
        other,
        "POST",
        "/api/v2/user/batch-create-subaccount-and-apikey",
        batch_body(("betabots", "b"), ("betabots", "c")),
        clock,
    )
    assert (status, answer["code"]) == (400, "40071")


def test_list_masking_is_configurable() -> None:
    """The sub-account list shows names in clear by default, masked on request."""
    for masked in (False, True):
        clock = Clock()
        emu = Emulator(
            [MASTER],
            limits=Limits(mask_list_names=masked),
            monotonic=clock.monotonic,
            wall_clock=clock.wall_ms,
        )
        exchange_request(
            emu,
            MASTER,
            "POST",
            "/api/v2/user/batch-create-subaccount-and-apikey",
            batch_body(("alphabot", "a")),
            clock,
        )
        _, answer = exchange_request(
            emu, MASTER, "GET", "/api/v2/user/virtual-subaccount-list", b"", clock, query="limit=10"
        )
        name = answer["data"]["subAccountList"][0]["subAccountName"]
        assert (name == "alphabot") is not masked


def test_429_at_exactly_n_plus_one_then_window_slides() -> None:
    """5/s: the 6th request inside 1000 ms gets 429; once the first leaves the window, one more fits."""
    clock = Clock()
    emu = Emulator([MASTER], monotonic=clock.monotonic, wall_clock=clock.wall_ms)
    path = "/api/v2/user/virtual-subaccount-apikey-list"
    statuses = []
    for _ in range(6):
        _, answer = exchange_request(emu, MASTER, "GET", path, b"", clock, query="subAccountUid=1")
        statuses.append(answer["code"])
        clock.seconds += 0.1
    assert statuses == ["40066"] * 5 + ["429"]
    clock.seconds = 1000.0 + 0.999
    assert (
        exchange_request(emu, MASTER, "GET", path, b"", clock, query="subAccountUid=1")[1]["code"]
        == "429"
    )
    clock.seconds = 1000.0 + 1.0
    assert (
        exchange_request(emu, MASTER, "GET", path, b"", clock, query="subAccountUid=1")[1]["code"]
        == "40066"
    )
    lane = emu.audit.lane(MASTER.uid, "list_virtual_subaccount_api_keys")
    assert lane.throttled == 2
    assert lane.max_in_window() == 5
    assert emu.audit.violations() == {}


def test_ip_limit_and_lockout() -> None:
    """Over the per-IP limit every request is refused until the lockout ends."""
    clock = Clock()
    emu = Emulator(
        [MASTER],
        limits=Limits(ip_limit=3, ip_window=60, lockout=300, per_uid=False),
        monotonic=clock.monotonic,
        wall_clock=clock.wall_ms,
    )
    path = "/api/v2/spot/account/info"
    codes = [exchange_request(emu, MASTER, "GET", path, b"", clock)[1]["code"] for _ in range(4)]
    assert codes == ["00000", "00000", "00000", "429"]
    clock.seconds += 120  # the minute has passed, but the lockout holds
    assert exchange_request(emu, MASTER, "GET", path, b"", clock)[1]["code"] == "429"
    clock.seconds += 181
    assert exchange_request(emu, MASTER, "GET", path, b"", clock)[1]["code"] == "00000"


def test_audit_windows() -> None:
    """The audit finds the densest window, open and closed, and the smallest gap."""
    from bitget_keys.testing import LaneAudit

    lane = LaneAudit(accepted=[0.0, 200.0, 400.0, 999.0, 1000.0, 1500.0])
    assert lane.max_in_window() == 4
    assert lane.max_in_window(closed=True) == 5
    assert lane.min_gap() == 1.0


async def test_in_process_transport_matches_http() -> None:
    """The socket-free transport runs the same exchange."""
    emu = Emulator([MASTER])
    async with Client(MASTER.credentials, transport=emu.transport(), scheduler=Unpaced()) as client:
        assert (await client.account_info()).user_id == MASTER.uid
        with pytest.raises(RateLimitExceededError):
            await client.account_info()
    assert emu.audit.lane(MASTER.uid, "account_info").throttled == 1


async def test_auth_errors_from_bad_credentials(emulator: Emulator) -> None:
    """Unknown keys and wrong secrets are authentication errors."""
    from bitget_keys import Credentials

    for credentials, code in (
        (Credentials("bg_nobody", "x" * 16, "NobodyPass1"), "40006"),
        (Credentials(MASTER.api_key, "wrong-secret-0000", "MasterPass1"), "40009"),
    ):
        async with Client(
            credentials, base_url=emulator.base_url, config=NO_RETRY, scheduler=Unpaced()
        ) as client:
            with pytest.raises(AuthenticationError) as info:
                await client.list_virtual_subaccounts()
        assert info.value.code == code


def test_reprs_hide_secrets() -> None:
    """Accounts and the emulator never print secrets."""
    emu = Emulator([MASTER])
    text = repr(MASTER) + repr(emu) + repr(emu.exchange)
    assert "master-secret-0001" not in text
    assert "MasterPass1" not in text


# -- regressions found in review ---------------------------------------------------------


async def test_query_is_verified_exactly_as_received(emulator: Emulator) -> None:
    """A query signed decoded but sent percent-encoded is refused; signed as sent, it passes."""
    path = "/api/v2/user/virtual-subaccount-list"
    import time

    stamp = str(time.time_ns() // 1_000_000)

    async def send(sent: str, signed: str) -> tuple[int, str]:
        headers = {
            "ACCESS-KEY": MASTER.api_key,
            "ACCESS-SIGN": _signed("master-secret-0001", stamp, "GET", path, signed, b""),
            "ACCESS-TIMESTAMP": stamp,
            "ACCESS-PASSPHRASE": "MasterPass1",
        }
        url = yarl.URL(f"{emulator.base_url}{path}?{sent}", encoded=True)
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as r:
            return r.status, orjson.loads(await r.read())["code"]

    assert await send("limit=1%30", "limit=10") == (400, "40009")
    assert await send("limit=1%30", "limit=1%30") == (200, "00000")


@pytest.mark.parametrize(
    "query",
    ["limit", "limit=1&limit=2", "=1", "limit=%FF"],
    ids=["no-value", "twice", "no-key", "bad-utf8"],
)
def test_malformed_query_is_40017(query: str) -> None:
    """Query strings are parsed strictly, after the signature check on the raw text."""
    clock = Clock()
    emu = Emulator([MASTER], monotonic=clock.monotonic, wall_clock=clock.wall_ms)
    status, answer = exchange_request(
        emu, MASTER, "GET", "/api/v2/user/virtual-subaccount-list", b"", clock, query=query
    )
    assert (status, answer["code"]) == (400, "40017")


async def test_timestamp_of_non_ascii_digits_is_40005(emulator: Emulator) -> None:
    """A timestamp str.isdigit() accepts but int() can't parse is 40005, not a 500."""
    async with aiohttp.ClientSession() as session:
        headers = {
            "ACCESS-KEY": MASTER.api_key,
            "ACCESS-SIGN": "x" * 44,
            "ACCESS-TIMESTAMP": "170000000000\u00b2",
            "ACCESS-PASSPHRASE": "MasterPass1",
        }
        async with session.get(
            emulator.base_url + "/api/v2/spot/account/info", headers=headers
        ) as r:
            status, body = r.status, orjson.loads(await r.read())
    assert (status, body["code"]) == (400, "40005")


OBJECT_ENDPOINTS = [
    "/api/v2/copy/mix-trader/create-copy-api",
    "/api/v2/user/create-virtual-subaccount-apikey",
    "/api/v2/broker/manage/modify-subaccount-apikey",
    "/api/v2/user/modify-virtual-subaccount-apikey",
    "/api/v2/user/create-virtual-subaccount",
    "/api/v2/broker/manage/create-subaccount-apikey",
]


@pytest.mark.parametrize("path", OBJECT_ENDPOINTS)
@pytest.mark.parametrize("body", [b"null", b"1", b'"x"', b"[]", b"[{}]"])
def test_bodies_of_the_wrong_json_shape_are_40017(path: str, body: bytes) -> None:
    """A JSON body that isn't an object gets 40017 on every object-bodied endpoint."""
    clock = Clock()
    account = EmulatorAccount(
        uid="1000000001",
        api_key="bg_master",
        secret_key="master-secret-0001",
        passphrase="MasterPass1",
        broker=True,
        copy_trader="new",
    )
    emu = Emulator([account], monotonic=clock.monotonic, wall_clock=clock.wall_ms)
    status, answer = exchange_request(emu, account, "POST", path, body, clock)
    assert (status, answer["code"]) == (400, "40017")


def test_copy_trader_none_is_a_non_trader() -> None:
    """`copy_trader="none"` means no trader (40732); an unknown model is refused."""
    clock = Clock()
    account = attrs_evolve(MASTER, copy_trader="none")
    assert account.copy_trader is None
    emu = Emulator([account], monotonic=clock.monotonic, wall_clock=clock.wall_ms)
    status, answer = exchange_request(
        emu,
        account,
        "POST",
        "/api/v2/copy/mix-trader/create-copy-api",
        b'{"passphrase":"Passw0rd1234"}',
        clock,
    )
    assert (status, answer["code"]) == (400, "40732")
    with pytest.raises(ValueError, match="copy_trader"):
        attrs_evolve(MASTER, copy_trader="newer")
    with pytest.raises(TypeError):
        attrs_evolve(MASTER, ip_list="203.0.113.7")


async def test_in_process_headers_are_case_insensitive() -> None:
    """Header names are case-insensitive in process, as they are over HTTP."""
    emu = Emulator([MASTER])
    transport = emu.transport()
    response = await transport.send(
        "GET",
        yarl.URL("http://emulator/api/v2/spot/account/info"),
        {"access-key": MASTER.api_key},
        None,
        endpoint="/api/v2/spot/account/info",
    )
    assert orjson.loads(response.body)["code"] != "40001"


async def test_broker_key_secrets_are_audited(emulator: Emulator) -> None:
    """secret_of finds keys made by the broker create endpoint too."""
    async with client_for(emulator, BROKER) as broker:
        new = await broker.create_broker_subaccount_api_key(
            m.CreateBrokerSubaccountAPIKeyRequest(
                sub_uid="5550001",
                passphrase=PASS,
                label="bot",
                perm_type="readonly",
                permissions=["spot_trade"],
                ip_list=[],
            )
        )
    assert new.secret_key is not None
    assert emulator.exchange.secret_of(new.api_key) == new.secret_key.reveal()


async def test_a_dropped_get_is_not_sent_again_behind_our_back() -> None:
    """aiohttp would re-send an idempotent request after a dropped connection; ours doesn't."""
    emu = Emulator(
        [MASTER], faults=Faults(drop_after_commit=1.0, endpoints=frozenset({"account_info"}))
    )
    async with emu, client_for(emu, MASTER) as client:
        with pytest.raises(TransportError) as info:
            await client.account_info()
    assert info.value.maybe_sent
    assert len(emu.audit.lane(MASTER.uid, "account_info").accepted) == 1


async def test_clients_sharing_a_server_clock_measure_it_once() -> None:
    """One `ServerClock` for many clients: one time request, every client on its offset."""
    skewed = Emulator(ACCOUNTS, faults=Faults(clock_skew_ms=60_000))
    shared = ServerClock()
    async with skewed:
        clients = [
            Client(
                account.credentials,
                base_url=skewed.base_url,
                scheduler=Unpaced(),
                server_clock=shared,
            )
            for account in (MASTER, BROKER, TRADER)
        ]
        try:
            infos = await asyncio.gather(*(client.account_info() for client in clients))
        finally:
            for client in clients:
                await client.aclose()
    assert [info.user_id for info in infos] == [MASTER.uid, BROKER.uid, TRADER.uid]
    time_lanes = [lane for (_, name), lane in skewed.audit.lanes.items() if name == "server_time"]
    assert sum(len(lane.accepted) for lane in time_lanes) == 1
    assert all(59_000 < client.clock_offset_ms < 61_000 for client in clients)


async def test_load_requests_reach_their_own_lanes() -> None:
    """Each seed endpoint's load request is sent on that endpoint, and only there."""
    account = EmulatorAccount(
        uid="1000000077",
        api_key="bg_load",
        secret_key="load-secret-0077",
        passphrase="LoadPass123",
        broker=True,
        copy_trader="new",
    )
    emu = Emulator([account])
    config = ClientConfig(sync_clock=False)
    transport = emu.transport()
    async with Client(
        account.credentials, transport=transport, scheduler=Unpaced(), config=config
    ) as client:
        for endpoint in SEED_ENDPOINTS:
            with contextlib.suppress(APIError):
                await load_request(endpoint)(client)
    seen = {name: len(lane.accepted) for (_, name), lane in emu.audit.lanes.items()}
    assert seen == {endpoint.name: 1 for endpoint in SEED_ENDPOINTS}
    with pytest.raises(ValueError, match="server_time"):
        load_request(ep.SERVER_TIME)


def test_requests_and_answers_keep_secrets_out_of_their_repr() -> None:
    """The emulator's request and answer objects never show passphrases or secrets."""
    from bitget_keys.testing._wire import Answer, Request

    request = Request(
        method="POST",
        path="/api/v2/user/create-virtual-subaccount-apikey",
        query="",
        headers={"ACCESS-PASSPHRASE": "callerpass1", "ACCESS-SIGN": "c2lnbmF0dXJl"},
        body=b'{"passphrase": "newkeypass1"}',
        client_ip="127.0.0.1",
    )
    answer = Answer.envelope(200, "00000", "success", 0, {"secretKey": "topsecretvalue"})
    shown = repr(request) + repr(answer)
    for secret in ("callerpass1", "c2lnbmF0dXJl", "newkeypass1", "topsecretvalue"):
        assert secret not in shown
    assert "/api/v2/user/create-virtual-subaccount-apikey" in shown
