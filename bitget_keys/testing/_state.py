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
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from bitget_keys import _endpoints as ep
from bitget_keys.testing._accounts import EmulatorAccount
from bitget_keys.testing._admin import KeyAdmin
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
        self._auth = Authenticator(self.accounts, self.limits, self._store)
        self._admin = KeyAdmin(self._store, self.accounts, self.limits)
        families = [family(self._store, self.limits) for family in _FAMILIES]
        self._routes: dict[str, Handler] = {}
        for family in families:
            self._routes.update(family.routes())
        self._parts = (self._store, self._rates, self._auth, self._admin, *families)
        #: The exchange's wall clock (epoch ms) for what tests change behind the API's
        #: back (`add_key`, `add_subaccount`); the `Emulator` sets its own. Without one,
        #: the wall time of the latest request is used.
        self.wall_clock: Callable[[], int] | None = None
        self._last_wall_ms = 0

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
        """A live key's secret, so tests can check what the client stored (deleted: None)."""
        for key in self._store.all_keys():
            if key.api_key == api_key:
                return key.secret_key
        return None

    def add_broker_subaccount(self, broker_uid: str, sub_uid: str, key: Mapping[str, Any]) -> None:
        """Seed an ND-broker sub-account key (E4 modifies existing keys only)."""
        self._store.seed_broker_key(broker_uid, sub_uid, key)

    # -- behind the API's back, as in Bitget's web UI --------------------------------

    def key(self, api_key: str) -> dict[str, Any] | None:
        """
        A virtual sub-account key as the exchange holds it, or ``None`` if it never
        existed: ``api_key``, ``label``, ``permissions``, ``ip_list``, ``perm_type``,
        ``subaccount_uid``, ``master_uid``, ``created_ms``, ``deleted``, ``neutralised``
        (live with no rights left) and ``frozen`` (its sub-account is). Never its secret
        or passphrase (`secret_of` tells the secret).
        """
        return self._admin.key(api_key)

    def tamper_key(
        self,
        api_key: str,
        *,
        permissions: Iterable[str] | None = None,
        ip_list: Iterable[str] | None = None,
        perm_type: str | None = None,
    ) -> None:
        """
        Change a live sub-account key behind the plan's back, as someone in the web UI
        would: each of ``permissions``, ``ip_list`` and ``perm_type`` given replaces the
        key's. An unknown or deleted key is a `KeyError`.
        """
        self._admin.tamper_key(
            api_key, permissions=permissions, ip_list=ip_list, perm_type=perm_type
        )

    def add_key(
        self,
        master_uid: str,
        sub_uid: str,
        *,
        label: str,
        permissions: Iterable[str],
        ip_list: Iterable[str],
        passphrase: str,
        perm_type: str | None = None,
    ) -> dict[str, str]:
        """
        A key made by hand in the web UI on a master's sub-account (no rule of the API
        is checked but the key quota): ``{"api_key": ..., "secret_key": ...}`` for the
        test to sign with. It is made now, so it propagates like any new key.

        Raises:
            KeyError: no such master or sub-account.
            ValueError: the sub-account has its keys.
        """
        return self._admin.add_key(
            master_uid,
            sub_uid,
            label=label,
            permissions=permissions,
            ip_list=ip_list,
            passphrase=passphrase,
            perm_type=perm_type,
            created_ms=self._now_wall_ms(),
        )

    def set_frozen(self, master_uid: str, sub_uid: str, frozen: bool) -> None:  # noqa: FBT001
        """
        Freeze or unfreeze a master's sub-account behind the plan's back (its list shows
        ``freeze``, or ``frozen`` under a unified master, or ``normal``).

        Raises:
            KeyError: no such master or sub-account.
        """
        self._admin.set_frozen(master_uid, sub_uid, frozen=frozen)

    def add_subaccount(self, master_uid: str, name: str, label: str) -> str:
        """
        A sub-account made by hand in the web UI, without keys: its UID. A unified
        master's is a unified one (``label`` is its note).

        Raises:
            KeyError: no such master.
            ValueError: the name is taken, or the master has its sub-accounts.
        """
        return self._admin.add_subaccount(master_uid, name, label, self._now_wall_ms())

    def _now_wall_ms(self) -> int:
        return self.wall_clock() if self.wall_clock is not None else self._last_wall_ms

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
        self._last_wall_ms = wall_ms
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
            self._auth.check_caller(account, endpoint)
            lane_uid = account.uid
        self._rates.admit(endpoint, lane_uid, now_ms)
        handler = self._routes[endpoint.name]
        params = parse_query(request.query)
        if endpoint.method == "POST":
            return handler(account, parse_body(request.body), wall_ms)
        return handler(account, params, wall_ms)
