"""
`Exchange`: the emulated exchange's request pipeline; pure state, no I/O, no clock.

`Exchange.handle` takes one request exactly as it arrived (method, path, raw query,
headers, raw body, client IP, arrival times) and returns an HTTP status and the JSON
envelope Bitget would send. It checks what Bitget checks, in Bitget's order: the per-IP
limit, headers, timestamp window, key, passphrase, signature over the raw bytes received,
the account's mode (classic masters are served by the v2 endpoints, unified ones by the
v3 endpoints), the per-(UID, endpoint) rate limit, then the request itself, strictly.

The jobs live in modules of their own: `_auth` (who is calling), `_limits` (the sliding
windows), `_audit` (what they let through), `_store` (what the exchange holds) and one
`_routes_*` module per endpoint family.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from bitget_keys import _endpoints as ep
from bitget_keys.testing._accounts import EmulatorAccount
from bitget_keys.testing._audit import Audit, LaneAudit
from bitget_keys.testing._auth import Authenticator
from bitget_keys.testing._limits import Limits, RateLimits
from bitget_keys.testing._routes import Handler
from bitget_keys.testing._routes_account import AccountRoutes
from bitget_keys.testing._routes_broker import BrokerRoutes
from bitget_keys.testing._routes_keys import KeyRoutes
from bitget_keys.testing._routes_subaccounts import SubaccountRoutes
from bitget_keys.testing._routes_unified import UnifiedRoutes
from bitget_keys.testing._routes_unified_broker import UnifiedBrokerRoutes
from bitget_keys.testing._store import Store
from bitget_keys.testing._wire import (
    BY_PATH,
    Answer,
    Refused,
    Request,
    parse_body,
    parse_query,
)

__all__ = ["Answer", "Exchange", "LaneAudit"]

#: The endpoint families the exchange serves.
_FAMILIES = (
    AccountRoutes,
    SubaccountRoutes,
    KeyRoutes,
    BrokerRoutes,
    UnifiedRoutes,
    UnifiedBrokerRoutes,
)

T = TypeVar("T")


class _Shared(Generic[T]):
    """
    An attribute of the exchange that its parts hold too: assigning it reaches them all,
    so ``exchange.limits = Limits(...)`` applies from the next request, as it always did.
    """

    def __set_name__(self, owner: type[Exchange], name: str) -> None:
        self.name = name

    def __get__(self, exchange: Exchange, owner: type[Exchange] | None = None) -> T:
        value: T = exchange.__dict__[self.name]
        return value

    def __set__(self, exchange: Exchange, value: T) -> None:
        exchange.__dict__[self.name] = value
        for part in exchange.__dict__.get("_parts", ()):
            if hasattr(part, self.name):
                setattr(part, self.name, value)


class Exchange:
    """The emulated exchange: accounts, sub-accounts, keys, limits and the audit."""

    limits = _Shared[Limits]()
    accounts = _Shared[dict[str, EmulatorAccount]]()
    audit = _Shared[Audit]()
    rng = _Shared[random.Random]()
    #: Lanes answering 429 to everything until a given monotonic time (ms).
    storm_until = _Shared[dict[str | None, float]]()

    def __init__(
        self,
        accounts: list[EmulatorAccount],
        *,
        limits: Limits | None = None,
        seed: int = 0,
    ) -> None:
        self.limits = limits or Limits()
        self.accounts = {account.api_key: account for account in accounts}
        self.audit = Audit()
        self.rng = random.Random(seed)
        self._store = Store(self.rng)
        self._rates = RateLimits(self.limits, self.audit)
        self.storm_until = self._rates.storm_until
        self._auth = Authenticator(self.accounts, self.limits)
        families = [family(self._store, self.limits) for family in _FAMILIES]
        self._routes: dict[str, Handler] = {}
        for family in families:
            self._routes.update(family.routes())
        self._parts = (self._store, self._rates, self._auth, *families)

    def __repr__(self) -> str:
        return (
            f"<Exchange accounts={len(self.accounts)} "
            f"subaccounts={sum(len(v) for v in self._store.subaccounts.values())} "
            f"accepted={self.audit.accepted} throttled={self.audit.throttled}>"
        )

    # -- inspection for tests and benchmarks -----------------------------------------

    def subaccounts(self, uid: str) -> list[dict[str, Any]]:
        """The sub-accounts of a master, with their keys' labels and API keys (no secrets)."""
        return [
            {
                "uid": sub.uid,
                "name": sub.name,
                "label": sub.label,
                "keys": [(key.label, key.api_key) for key in sub.keys],
            }
            for sub in self._store.subaccounts[uid]
        ]

    def secret_of(self, api_key: str) -> str | None:
        """A created key's secret, so tests can check what the client stored."""
        for key in self._store.all_keys():
            if key.api_key == api_key:
                return key.secret_key
        return None

    def add_broker_subaccount(self, broker_uid: str, sub_uid: str, key: Mapping[str, Any]) -> None:
        """Seed an ND-broker sub-account key (E4 modifies existing keys only)."""
        self._store.seed_broker_key(broker_uid, sub_uid, key)

    # -- the request pipeline --------------------------------------------------------

    def handle(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        client_ip: str,
        now_ms: float,
        wall_ms: int,
    ) -> tuple[Answer, ep.Endpoint | None, bool]:
        """
        Answer one request. Returns the answer, the endpoint, and whether it took effect.

        ``now_ms`` is monotonic arrival time (rate limits, audit); ``wall_ms`` is the
        exchange's wall clock (timestamps, ``requestTime``).
        """
        request = Request(
            method=method, path=path, query=query, headers=headers, body=body, client_ip=client_ip
        )
        endpoint = BY_PATH.get((method, path))
        try:
            data = self._pipeline(endpoint, request, now_ms, wall_ms)
        except Refused as refusal:
            if endpoint is not None:
                lane = self.audit.lane(self._auth.lane_uid(request), endpoint.name)
                if refusal.status == 429:
                    lane.throttled += 1
                else:
                    lane.rejected += 1
            answer = Answer.envelope(refusal.status, refusal.code, refusal.message, wall_ms, None)
            return answer, endpoint, False
        return Answer.envelope(200, "00000", "success", wall_ms, data), endpoint, True

    def _pipeline(
        self, endpoint: ep.Endpoint | None, request: Request, now_ms: float, wall_ms: int
    ) -> Any:
        self._rates.admit_ip(request.client_ip, now_ms)
        if endpoint is None:
            raise Refused("40404", "Request URL NOT FOUND", 404)
        account, lane_uid = None, request.client_ip
        if endpoint.signed:
            account = self._auth.authenticate(request, wall_ms)
            self._auth.check_mode(account, endpoint)
            lane_uid = account.uid
        self._rates.admit(endpoint, lane_uid, now_ms)
        handler = self._routes[endpoint.name]
        params = parse_query(request.query)
        if endpoint.method == "POST":
            return handler(account, parse_body(request.body), wall_ms)
        return handler(account, params, wall_ms)
