"""
The clients `benchmarks.peers` compares, behind one small interface.

Each *program* is what one user process would run: it makes one client per master
account and owns whatever those clients share (a scheduler, a limiter table, a
connection pool). A client knows three calls, with the bodies Bitget documents:
batch-create (returns the new sub-accounts' UIDs), create a further virtual-sub-account
key, and ND-broker modify-subaccount-apikey. A 429 that reaches the caller raises
`Throttled`; any other refusal `Refused`.

- ``bitget-keys``: `bitget_keys.Client` with the loop's default scheduler, as users run it.
  Its IP budget keeps Bitget's rolling rule (`IPPolicy.ROLLING`, the default).
- ``bitget-keys-even``: one `RateLimitScheduler` whose IP budget also paces 95/s evenly
  (`IPPolicy.EVEN`, the default before the rolling policy).
- ``bitget-keys-sliding``: one `RateLimitScheduler` with every lane on `Policy.SLIDING`
  (``default_policy=``) and a margin of `SLIDING_MARGIN`: counted from completions, a
  sliding lane is exact against a rolling window whatever the delays, so its margin
  only has to cover how Bitget stamps arrivals.
- ``ccxt``: one ``ccxt.async_support.bitget`` per key, its own rate limiter on (the
  default), through its implicit endpoints for these v2 paths.
- ``aiolimiter``: raw aiohttp, Bitget's signing, and one ``AsyncLimiter(1, W/N*(1+m))``
  per (UID, endpoint) shared by the program's clients (aiolimiter's compliant,
  spaced configuration); no retry.
- ``aiolimiter-naive``: the same with ``AsyncLimiter(N, W)``, which lets ``2N-1`` through
  in its first window.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Sequence
from typing import Any, Final, Protocol

import aiohttp
import orjson
from aiolimiter import AsyncLimiter

from benchmarks.aiolimiter_comparison import AiolimiterScheduler, interval
from bitget_keys import Client, ClientConfig, RateLimitScheduler
from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys._signing import signed_headers
from bitget_keys.errors import APIError, RateLimitExceededError, TransportError
from bitget_keys.limits import IPBudget, IPPolicy, Policy, Scheduler
from bitget_keys.testing import EmulatorAccount

__all__ = [
    "CLIENTS",
    "DEFAULT_CLIENTS",
    "PASSPHRASE",
    "Peer",
    "Program",
    "Refused",
    "Throttled",
    "ccxt_installed",
    "program",
]

#: Every key and sub-account the benchmark makes gets this passphrase (emulator only).
PASSPHRASE: Final = "Passw0rd1234"
#: No clock sync: the emulator shares this machine's wall clock.
CONFIG: Final = ClientConfig(sync_clock=False, request_timeout=60)
#: Connections (and in-flight permits) of the aiolimiter program, as many as
#: `RateLimitScheduler` lets be in flight by default.
POOL: Final = 100
MARGIN: Final = 0.05
#: The margin of the ``bitget-keys-sliding`` program's lanes.
SLIDING_MARGIN: Final = 0.02

CLIENTS: Final = (
    "bitget-keys",
    "bitget-keys-even",
    "bitget-keys-sliding",
    "ccxt",
    "aiolimiter",
    "aiolimiter-naive",
)
DEFAULT_CLIENTS: Final = CLIENTS[:5]


class Throttled(Exception):  # noqa: N818 - what the benchmark counts, not a failure of it
    """A 429 reached the caller."""


class Refused(Exception):  # noqa: N818
    """Any other refusal or failure of a call."""


class Peer(Protocol):
    """One client of one master key."""

    async def batch_create(self, names: Sequence[str]) -> list[str]:
        """Create the named sub-accounts with a first key each; their UIDs."""
        ...

    async def create_key(self, sub_uid: str, label: str) -> None:
        """One more key for a virtual sub-account."""
        ...

    async def modify_broker_key(self, sub_uid: str, api_key: str, passphrase: str) -> None:
        """Replace an ND-broker sub-account key's permissions."""
        ...


class Program(Protocol):
    """What one user process runs: its clients and what they share."""

    def client(self, account: EmulatorAccount) -> Peer: ...

    async def aclose(self) -> None: ...


def ccxt_installed() -> bool:
    """Whether ccxt can be imported (the ``bench`` extra)."""
    return importlib.util.find_spec("ccxt") is not None


# -- the wire bodies, as Bitget documents them -------------------------------------------


def batch_body(names: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "subAccountName": name,
            "passphrase": PASSPHRASE,
            "label": f"b{index}",
            "permList": ["read"],
            "ipList": [],
        }
        for index, name in enumerate(names)
    ]


def key_body(sub_uid: str, label: str) -> dict[str, Any]:
    return {
        "subAccountUid": sub_uid,
        "passphrase": PASSPHRASE,
        "label": label,
        "ipList": [],
        "permList": ["read"],
    }


def modify_body(sub_uid: str, api_key: str, passphrase: str) -> dict[str, Any]:
    return {
        "subUid": sub_uid,
        "apiKey": api_key,
        "passphrase": passphrase,
        "permList": ["spot_trade"],
        "permType": "readonly",
    }


def _uids(rows: Any) -> list[str]:
    return [str(row["subAccountUid"]) for row in rows]


# -- bitget-keys ---------------------------------------------------------------------------


class BitgetKeysPeer:
    __slots__ = ("client",)

    def __init__(self, client: Client) -> None:
        self.client = client

    async def _guard(self, call: Any) -> Any:
        try:
            return await call
        except RateLimitExceededError as error:
            raise Throttled from error
        except (APIError, TransportError) as error:
            raise Refused(str(error)) from error

    async def batch_create(self, names: Sequence[str]) -> list[str]:
        items = [
            m.NewVirtualSubaccount(
                name=name,
                passphrase=PASSPHRASE,
                label=f"b{index}",
                permissions=["read"],
                ip_list=[],
            )
            for index, name in enumerate(names)
        ]
        request = m.BatchCreateVirtualSubaccountsRequest(items=items)
        rows = await self._guard(self.client.batch_create_virtual_subaccounts(request))
        return [row.subaccount_uid for row in rows]

    async def create_key(self, sub_uid: str, label: str) -> None:
        request = m.CreateVirtualSubaccountAPIKeyRequest(
            subaccount_uid=sub_uid,
            passphrase=PASSPHRASE,
            label=label,
            ip_list=[],
            permissions=["read"],
        )
        await self._guard(self.client.create_virtual_subaccount_api_key(request))

    async def modify_broker_key(self, sub_uid: str, api_key: str, passphrase: str) -> None:
        request = m.ModifyBrokerSubaccountAPIKeyRequest(
            sub_uid=sub_uid,
            api_key=api_key,
            passphrase=passphrase,
            permissions=["spot_trade"],
            perm_type="readonly",
        )
        await self._guard(self.client.modify_broker_subaccount_api_key(request))


class BitgetKeysProgram:
    """Clients of one program share ``scheduler`` (``None``: the loop's default one)."""

    def __init__(self, base_url: str, scheduler: Scheduler | None) -> None:
        self.base_url = base_url
        self.scheduler = scheduler
        self.clients: list[Client] = []

    def client(self, account: EmulatorAccount) -> Peer:
        client = Client(
            account.credentials, base_url=self.base_url, scheduler=self.scheduler, config=CONFIG
        )
        self.clients.append(client)
        return BitgetKeysPeer(client)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


# -- raw aiohttp paced by aiolimiter -------------------------------------------------------


class AiolimiterPeer:
    __slots__ = ("account", "program")

    def __init__(self, program: AiolimiterProgram, account: EmulatorAccount) -> None:
        self.program = program
        self.account = account

    async def _post(self, endpoint: ep.Endpoint, payload: Any) -> Any:
        body = orjson.dumps(payload)
        program = self.program

        async def send() -> Any:
            headers = signed_headers(
                self.account.credentials,
                timestamp_ms=time.time_ns() // 1_000_000,
                method="POST",
                path=endpoint.path,
                body=body,
            )
            url = program.base_url + endpoint.path
            try:
                async with program.session.post(url, data=body, headers=headers) as response:
                    status, answer = response.status, orjson.loads(await response.read())
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as error:
                raise Refused(f"no answer: {error!r}") from error
            if status == 429:
                raise Throttled
            if answer.get("code") != "00000":
                raise Refused(f"{answer.get('code')} {answer.get('msg')}")
            return answer["data"]

        return await program.scheduler.run(self.account.uid, endpoint, send)

    async def batch_create(self, names: Sequence[str]) -> list[str]:
        return _uids(await self._post(ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS, batch_body(names)))

    async def create_key(self, sub_uid: str, label: str) -> None:
        await self._post(ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY, key_body(sub_uid, label))

    async def modify_broker_key(self, sub_uid: str, api_key: str, passphrase: str) -> None:
        payload = modify_body(sub_uid, api_key, passphrase)
        await self._post(ep.MODIFY_BROKER_SUBACCOUNT_API_KEY, payload)


class AiolimiterProgram:
    """One connection pool and one limiter per (UID, endpoint) for all the program's clients."""

    def __init__(self, base_url: str, *, naive: bool) -> None:
        self.base_url = base_url
        if naive:
            self.scheduler = AiolimiterScheduler(
                lambda endpoint: AsyncLimiter(endpoint.rate, endpoint.window), in_flight=POOL
            )
        else:
            self.scheduler = AiolimiterScheduler(
                lambda endpoint: AsyncLimiter(1, interval(endpoint) * (1 + MARGIN)),
                in_flight=POOL,
            )
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL))

    def client(self, account: EmulatorAccount) -> Peer:
        return AiolimiterPeer(self, account)

    async def aclose(self) -> None:
        await self.session.close()


# -- ccxt ----------------------------------------------------------------------------------


class CcxtPeer:
    __slots__ = ("errors", "exchange")

    def __init__(self, exchange: Any, errors: Any) -> None:
        self.exchange = exchange
        self.errors = errors

    async def _guard(self, call: Any) -> Any:
        errors = self.errors
        try:
            answer = await call
        except (errors.RateLimitExceeded, errors.DDoSProtection) as error:
            raise Throttled from error
        except errors.BaseError as error:
            raise Refused(str(error)) from error
        return answer["data"]

    async def batch_create(self, names: Sequence[str]) -> list[str]:
        # Bitget's batch body is a JSON list; ccxt sends whatever params it is given.
        call = self.exchange.privateUserPostV2UserBatchCreateSubaccountAndApikey(batch_body(names))
        return _uids(await self._guard(call))

    async def create_key(self, sub_uid: str, label: str) -> None:
        payload = key_body(sub_uid, label)
        await self._guard(self.exchange.privateUserPostV2UserCreateVirtualSubaccountApikey(payload))

    async def modify_broker_key(self, sub_uid: str, api_key: str, passphrase: str) -> None:
        payload = modify_body(sub_uid, api_key, passphrase)
        await self._guard(
            self.exchange.privateBrokerPostV2BrokerManageModifySubaccountApikey(payload)
        )


class CcxtProgram:
    """
    One ``ccxt.async_support.bitget`` per key, as ccxt is used: each has its own rate
    limiter (a leaky bucket of 20 cost units a second, shared by all its endpoints).
    """

    def __init__(self, base_url: str) -> None:
        import ccxt
        import ccxt.async_support

        self.base_url = base_url
        self.errors = ccxt
        self.factory = ccxt.async_support.bitget
        self.exchanges: list[Any] = []

    def client(self, account: EmulatorAccount) -> Peer:
        exchange = self.factory(
            {
                "apiKey": account.api_key,
                "secret": account.secret_key.reveal(),
                "password": account.passphrase.reveal(),
                "enableRateLimit": True,
            }
        )
        # Every API family's host is the emulator; the paths ccxt signs are Bitget's own.
        exchange.urls["api"] = dict.fromkeys(exchange.urls["api"], self.base_url)
        self.exchanges.append(exchange)
        return CcxtPeer(exchange, self.errors)

    async def aclose(self) -> None:
        await asyncio.gather(*(exchange.close() for exchange in self.exchanges))


def program(name: str, base_url: str) -> Program:
    """A fresh program of the named client, in the running loop."""
    if name == "bitget-keys":
        return BitgetKeysProgram(base_url, None)
    if name == "bitget-keys-even":
        scheduler = RateLimitScheduler(ip_budget=IPBudget(policy=IPPolicy.EVEN))
        return BitgetKeysProgram(base_url, scheduler)
    if name == "bitget-keys-sliding":
        scheduler = RateLimitScheduler(default_policy=Policy.SLIDING, margin=SLIDING_MARGIN)
        return BitgetKeysProgram(base_url, scheduler)
    if name == "ccxt":
        return CcxtProgram(base_url)
    if name in ("aiolimiter", "aiolimiter-naive"):
        return AiolimiterProgram(base_url, naive=name == "aiolimiter-naive")
    msg = f"unknown client {name!r}; one of {', '.join(CLIENTS)}"
    raise ValueError(msg)
