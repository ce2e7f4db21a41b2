"""
The emulated exchange's accounts, rules and audit: pure state, no I/O, no clock.

`Exchange.handle` takes one request exactly as it arrived (method, path, raw query,
headers, raw body, client IP, arrival times) and returns an HTTP status and the JSON
envelope Bitget would send. It checks what Bitget checks, in Bitget's order: headers,
timestamp window, key, passphrase, signature over the raw bytes received, the per-IP
and per-(UID, endpoint) rate limits, then the request itself, strictly.
"""

from __future__ import annotations

import bisect
import hmac
import itertools
import random
import string
import urllib.parse
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

import attrs
import cattrs
import orjson

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys._secret import Secret, to_secret
from bitget_keys._serde import make_converter
from bitget_keys._signing import Credentials, prehash, sign
from bitget_keys.errors import ValidationError

__all__ = [
    "Answer",
    "Audit",
    "EmulatorAccount",
    "Exchange",
    "LaneAudit",
    "Limits",
]

_STRICT: Final = make_converter(forbid_extra_keys=True)
_WIRE: Final = make_converter()
#: Every endpoint by (method, path), as a request names it.
BY_PATH: Final[dict[tuple[str, str], ep.Endpoint]] = {
    (e.method, e.path): e for e in ep.ENDPOINTS.values()
}
_ALPHANUMERIC: Final = string.ascii_letters + string.digits
_WINDOW_MS: Final = 1000.0


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    checked: object = values  # a lone string is iterable too, and always a mistake here
    if isinstance(checked, str):
        msg = "ip_list must be a list of addresses, not one string"
        raise TypeError(msg)
    return tuple(values)


def _copy_model(value: str | None) -> str | None:
    # The accounts file spells a non-trader "none"; anything else but the two models is a typo.
    if value is None or value == "none":
        return None
    if value not in ("new", "old"):
        msg = f"copy_trader must be 'none', 'new' or 'old' (got {value!r})"
        raise ValueError(msg)
    return value


@attrs.frozen(kw_only=True)
class EmulatorAccount:
    """A master account of the emulated exchange and its one API key."""

    uid: str
    api_key: str
    secret_key: Secret = attrs.field(converter=to_secret, repr=False)
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    #: An ND broker may use the broker endpoints.
    broker: bool = False
    #: ``"new"`` or ``"old"`` copy-trading model, or ``None`` for a non-trader.
    copy_trader: str | None = attrs.field(default=None, converter=_copy_model)
    #: Unified (UTA) masters get 40085 from the classic endpoints.
    unified: bool = False
    #: The calling key's IP whitelist; empty allows any IP. Others get 40038.
    ip_list: tuple[str, ...] = attrs.field(default=(), converter=_strings)

    @property
    def credentials(self) -> Credentials:
        """Credentials for a `Client` that signs as this account."""
        return Credentials(self.api_key, self.secret_key, self.passphrase, uid=self.uid)

    @classmethod
    def generate(cls, rng: random.Random, **settings: Any) -> EmulatorAccount:
        """A fresh account with random identifiers and secrets."""
        uid = str(rng.randrange(10**9, 10**10))
        text = "".join(rng.choice(_ALPHANUMERIC) for _ in range(32))
        return cls(
            uid=uid,
            api_key=f"bg_{text[:24].lower()}",
            secret_key=text,
            passphrase="".join(rng.choice(_ALPHANUMERIC) for _ in range(16)) + "a1",
            **settings,
        )


@attrs.frozen(kw_only=True)
class Limits:
    """How strictly the emulator counts."""

    #: Enforce each endpoint's documented per-UID rate (exact sliding log of 1000 ms).
    per_uid: bool = True
    #: Requests allowed per client IP per ``ip_window`` seconds; ``None`` disables it.
    ip_limit: int | None = 6000
    ip_window: float = 60.0
    #: Seconds an IP stays locked out once it went over ``ip_limit``.
    lockout: float = 300.0
    #: Sub-accounts per master, keys per sub-account.
    max_subaccounts: int = 20
    max_keys: int = 10
    #: Timestamp window for signed requests, in ms.
    timestamp_window_ms: int = 30_000
    #: Mask sub-account names in the batch-create answer, as Bitget's example shows.
    mask_batch_names: bool = True
    #: Mask sub-account names in the sub-account list (whether Bitget does is unconfirmed).
    mask_list_names: bool = False


@attrs.frozen
class Answer:
    """An HTTP answer: status and JSON body."""

    status: int
    body: bytes


@attrs.define
class LaneAudit:
    """What one (UID, endpoint) lane saw."""

    accepted: list[float] = attrs.field(factory=list)
    throttled: int = 0
    rejected: int = 0

    def max_in_window(self, window_ms: float = _WINDOW_MS, *, closed: bool = False) -> int:
        """The most accepted requests in any window of ``window_ms`` (two pointers)."""
        times = sorted(self.accepted)
        best = 0
        for start, at in enumerate(times):
            end = (
                bisect.bisect_right(times, at + window_ms)
                if closed
                else bisect.bisect_left(times, at + window_ms)
            )
            best = max(best, end - start)
        return best

    def min_gap(self) -> float | None:
        """The smallest gap between accepted requests, in ms."""
        times = sorted(self.accepted)
        return min((b - a for a, b in itertools.pairwise(times)), default=None)


@attrs.define
class Audit:
    """Everything the emulator accepted, refused and created."""

    lanes: dict[tuple[str, str], LaneAudit] = attrs.field(factory=lambda: defaultdict(LaneAudit))

    def lane(self, uid: str, endpoint: str) -> LaneAudit:
        """The audit of one (UID, endpoint name) lane."""
        return self.lanes[(uid, endpoint)]

    def worst_window(self) -> int:
        """The largest number of accepted requests any lane saw in any 1000 ms."""
        return max((lane.max_in_window() for lane in self.lanes.values()), default=0)

    def violations(self) -> dict[tuple[str, str], int]:
        """Lanes whose densest 1000 ms window holds more than the endpoint's rate."""
        found = {}
        for (uid, name), lane in self.lanes.items():
            densest = lane.max_in_window()
            if densest > ep.ENDPOINTS[name].rate:
                found[(uid, name)] = densest
        return found

    @property
    def throttled(self) -> int:
        """How many requests got a 429 in all."""
        return sum(lane.throttled for lane in self.lanes.values())

    @property
    def accepted(self) -> int:
        """How many requests were let through in all."""
        return sum(len(lane.accepted) for lane in self.lanes.values())


@attrs.define
class _Key:
    api_key: str
    secret_key: str
    passphrase: str
    label: str
    permissions: list[str]
    ip_list: list[str]
    perm_type: str | None = None


@attrs.define
class _Subaccount:
    uid: str
    name: str
    label: str
    created_ms: int
    keys: list[_Key] = attrs.field(factory=list)
    status: str = "normal"


class _Refused(Exception):  # noqa: N818 - control flow inside the emulator, never raised out
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.status = status


def _mask(name: str) -> str:
    return "*****@*******.com" if name else name


class Exchange:
    """The emulated exchange: accounts, sub-accounts, keys, limits and the audit."""

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
        self._subaccounts: dict[str, list[_Subaccount]] = defaultdict(list)
        self._broker_subs: dict[str, dict[str, list[_Key]]] = defaultdict(dict)
        self._names: set[str] = set()
        self._copy_keys: dict[str, _Key] = {}
        self._rate_log: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._ip_log: dict[str, deque[float]] = defaultdict(deque)
        self._locked_until: dict[str, float] = {}
        self._next_uid = 7_000_000_000
        #: Lanes answering 429 to everything until a given monotonic time (ms).
        self.storm_until: dict[str | None, float] = {}

    def __repr__(self) -> str:
        return (
            f"<Exchange accounts={len(self.accounts)} "
            f"subaccounts={sum(len(v) for v in self._subaccounts.values())} "
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
            for sub in self._subaccounts[uid]
        ]

    def secret_of(self, api_key: str) -> str | None:
        """A created key's secret, so tests can check what the client stored."""
        for key in self._all_keys():
            if key.api_key == api_key:
                return key.secret_key
        return None

    def _all_keys(self) -> Iterator[_Key]:
        for subs in self._subaccounts.values():
            for sub in subs:
                yield from sub.keys
        yield from self._copy_keys.values()
        for by_sub in self._broker_subs.values():
            for keys in by_sub.values():
                yield from keys

    def add_broker_subaccount(self, broker_uid: str, sub_uid: str, key: Mapping[str, Any]) -> None:
        """Seed an ND-broker sub-account key (E4 modifies existing keys only)."""
        self._broker_subs[broker_uid].setdefault(sub_uid, []).append(
            _Key(
                api_key=key["api_key"],
                secret_key=key.get("secret_key", "broker-secret"),
                passphrase=key["passphrase"],
                label=key.get("label", ""),
                permissions=list(key.get("permissions", ["spot_trade"])),
                ip_list=list(key.get("ip_list", [])),
                perm_type=key.get("perm_type", "readonly"),
            )
        )

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
        endpoint = BY_PATH.get((method, path))
        try:
            data = self._pipeline(
                endpoint,
                method=method,
                path=path,
                query=query,
                headers=headers,
                body=body,
                client_ip=client_ip,
                now_ms=now_ms,
                wall_ms=wall_ms,
            )
        except _Refused as refusal:
            if endpoint is not None:
                lane = self.audit.lane(self._lane_uid(headers, client_ip), endpoint.name)
                if refusal.status == 429:
                    lane.throttled += 1
                else:
                    lane.rejected += 1
            envelope = {
                "code": refusal.code,
                "msg": refusal.message,
                "requestTime": wall_ms,
                "data": None,
            }
            return Answer(refusal.status, orjson.dumps(envelope)), endpoint, False
        envelope = {"code": "00000", "msg": "success", "requestTime": wall_ms, "data": data}
        return Answer(200, orjson.dumps(envelope)), endpoint, True

    def _pipeline(
        self,
        endpoint: ep.Endpoint | None,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        client_ip: str,
        now_ms: float,
        wall_ms: int,
    ) -> Any:
        if self._ip_refused(client_ip, now_ms):
            raise _Refused("429", "Too Many Requests", 429)
        if endpoint is None:
            raise _Refused("40404", "Request URL NOT FOUND", 404)
        account = None
        if endpoint.signed:
            account = self._authenticate(
                method=method,
                path=path,
                query=query,
                headers=headers,
                body=body,
                wall_ms=wall_ms,
                client_ip=client_ip,
            )
        self._check_rate(endpoint, account.uid if account is not None else client_ip, now_ms)
        return self._dispatch(endpoint, account, query, body, wall_ms)

    def _lane_uid(self, headers: Mapping[str, str], client_ip: str) -> str:
        account = self.accounts.get(headers.get("ACCESS-KEY", ""))
        return account.uid if account is not None else client_ip

    def _ip_refused(self, client_ip: str, now_ms: float) -> bool:
        limit = self.limits.ip_limit
        if limit is None:
            return False
        if self._locked_until.get(client_ip, 0.0) > now_ms:
            return True
        log = self._ip_log[client_ip]
        window = self.limits.ip_window * 1000
        while log and log[0] <= now_ms - window:
            log.popleft()
        if len(log) >= limit:
            self._locked_until[client_ip] = now_ms + self.limits.lockout * 1000
            return True
        log.append(now_ms)
        return False

    @staticmethod
    def _check_headers(headers: Mapping[str, str], wall_ms: int, window_ms: int) -> str:
        for header, code in (
            ("ACCESS-KEY", "40001"),
            ("ACCESS-SIGN", "40002"),
            ("ACCESS-TIMESTAMP", "40003"),
            ("ACCESS-PASSPHRASE", "40011"),
        ):
            if not headers.get(header):
                raise _Refused(code, f"{header.replace('-', '_')} cannot be empty")
        stamp = headers["ACCESS-TIMESTAMP"]
        # isascii() first: str.isdigit() also accepts digits int() can't parse ("²").
        if not (stamp.isascii() and stamp.isdigit()) or len(stamp) != 13:
            raise _Refused("40005", "Invalid ACCESS_TIMESTAMP")
        if abs(int(stamp) - wall_ms) > window_ms:
            raise _Refused("40008", "Request timestamp expired")
        return stamp

    def _authenticate(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        wall_ms: int,
        client_ip: str,
    ) -> EmulatorAccount:
        stamp = self._check_headers(headers, wall_ms, self.limits.timestamp_window_ms)
        account = self.accounts.get(headers["ACCESS-KEY"])
        if account is None:
            raise _Refused("40006", "Invalid ACCESS_KEY")
        if not hmac.compare_digest(
            headers["ACCESS-PASSPHRASE"].encode(), account.passphrase.reveal().encode()
        ):
            raise _Refused("40012", "apikey/password is incorrect")
        # Verified over the query and body exactly as received, as Bitget does.
        expected = sign(account.secret_key, prehash(stamp, method, path, query).encode() + body)
        if not hmac.compare_digest(expected.encode(), headers["ACCESS-SIGN"].encode()):
            raise _Refused("40009", "sign signature error")
        content_type = headers.get("Content-Type", "").split(";")[0].strip()
        if method == "POST" and content_type != "application/json":
            raise _Refused("40007", "Invalid Content_Type")
        if account.ip_list and client_ip not in account.ip_list:
            raise _Refused("40038", "The current ip is not in the apikey ip whitelist")
        if account.unified:
            raise _Refused(
                "40085",
                "You are in Unified Account mode, and the Classic Account API is not supported",
            )
        return account

    def _check_rate(self, endpoint: ep.Endpoint, lane_uid: str, now_ms: float) -> None:
        if (
            self.storm_until.get(None, 0.0) > now_ms
            or self.storm_until.get(endpoint.name, 0.0) > now_ms
        ):
            raise _Refused("429", "Too Many Requests", 429)
        if not self.limits.per_uid:
            self.audit.lane(lane_uid, endpoint.name).accepted.append(now_ms)
            return
        log = self._rate_log[(lane_uid, endpoint.name)]
        window = _WINDOW_MS * endpoint.window
        while log and log[0] <= now_ms - window:
            log.popleft()
        if len(log) >= endpoint.rate:
            raise _Refused("429", "Too Many Requests", 429)
        log.append(now_ms)
        self.audit.lane(lane_uid, endpoint.name).accepted.append(now_ms)

    # -- endpoints -------------------------------------------------------------------

    def _dispatch(
        self,
        endpoint: ep.Endpoint,
        account: EmulatorAccount | None,
        query: str,
        body: bytes,
        wall_ms: int,
    ) -> Any:
        handler = getattr(self, f"_{endpoint.name}")
        params = _parse_query(query)
        if endpoint.method == "POST":
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise _Refused("40017", "Parameter verification failed (body is not JSON)") from exc
            return handler(account, payload, wall_ms)
        return handler(account, params, wall_ms)

    def _parse(self, payload: Any, cl: type[Any]) -> Any:
        # Every request but the batch is a JSON object; cattrs would fail on `.keys()`.
        if cl is not m.BatchCreateVirtualSubaccountsRequest and not isinstance(payload, dict):
            raise _Refused("40017", "Parameter verification failed (the body must be an object)")
        try:
            return _STRICT.structure(payload, cl)
        except ValidationError as exc:
            raise _Refused(_code_for(exc), f"Parameter verification failed: {exc}") from exc
        except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
            if isinstance(exc, cattrs.BaseValidationError):
                inner = _first_validation_error(exc)
                if inner is not None:
                    raise _Refused(
                        _code_for(inner), f"Parameter verification failed: {inner}"
                    ) from exc
                detail = "; ".join(cattrs.transform_error(exc))
            else:
                detail = type(exc).__name__
            raise _Refused("40017", f"Parameter verification failed ({detail})") from exc

    def _server_time(self, _account: None, _params: Any, wall_ms: int) -> Any:
        return {"serverTime": str(wall_ms)}

    def _account_info(self, account: EmulatorAccount, _params: Any, _wall_ms: int) -> Any:
        return {
            "userId": account.uid,
            "inviterId": None,
            "ips": "",
            "authorities": ["readonly", "trade"],
            "parentId": 0,
            "traderType": "trader" if account.copy_trader else "",
        }

    def _new_key(
        self, label: str, permissions: list[str], ip_list: list[str], passphrase: str
    ) -> _Key:
        token = "".join(self.rng.choice(_ALPHANUMERIC) for _ in range(56))
        return _Key(
            api_key=f"bg_{token[:32].lower()}",
            secret_key=token[8:],
            passphrase=passphrase,
            label=label,
            permissions=permissions,
            ip_list=ip_list,
        )

    def _new_uid(self) -> str:
        self._next_uid += self.rng.randrange(1, 1000)
        return str(self._next_uid)

    def _create_copy_api_key(self, account: EmulatorAccount, payload: Any, _wall_ms: int) -> Any:
        request = self._parse(payload, m.CreateCopyAPIKeyRequest)
        if account.copy_trader is None:
            raise _Refused("40732", "Not currently a trader")
        if account.copy_trader != "new":
            raise _Refused("40099", "This interface is only applicable to the new Copy model")
        if account.uid in self._copy_keys:
            raise _Refused("40099", "You have already created a Copy API Key.")
        key = self._new_key(
            "copy", ["copytrading_trade", "contract_trade"], [], request.passphrase.reveal()
        )
        self._copy_keys[account.uid] = key
        return [{"apikey": key.api_key, "secret": key.secret_key, "permissions": key.permissions}]

    def _own_subaccount(self, account: EmulatorAccount, uid: str) -> _Subaccount:
        for sub in self._subaccounts[account.uid]:
            if sub.uid == uid:
                return sub
        raise _Refused("40066", "subUid not in account or not virtual")

    def _key_row(self, sub: _Subaccount, key: _Key, *, secret: bool) -> dict[str, Any]:
        row: dict[str, Any] = {
            "subAccountUid": sub.uid,
            "label": key.label,
            "subAccountApiKey": key.api_key,
            "permList": key.permissions,
            "ipList": key.ip_list,
        }
        if secret:
            row["secretKey"] = key.secret_key
        return row

    def _create_virtual_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, _wall_ms: int
    ) -> Any:
        request = self._parse(payload, m.CreateVirtualSubaccountAPIKeyRequest)
        sub = self._own_subaccount(account, request.subaccount_uid)
        if len(sub.keys) >= self.limits.max_keys:
            raise _Refused("40063", "API exceeds the maximum limit added")
        key = self._new_key(
            request.label,
            [str(p) for p in request.permissions],
            list(request.ip_list),
            request.passphrase.reveal(),
        )
        key.perm_type = None if request.perm_type is None else str(request.perm_type)
        sub.keys.append(key)
        return self._key_row(sub, key, secret=True)

    def _batch_create_virtual_subaccounts(
        self, account: EmulatorAccount, payload: Any, wall_ms: int
    ) -> Any:
        if not isinstance(payload, list):
            raise _Refused("40017", "Parameter verification failed (the body must be a list)")
        request = self._parse(payload, m.BatchCreateVirtualSubaccountsRequest)
        existing = self._subaccounts[account.uid]
        if len(existing) + len(request.items) > self.limits.max_subaccounts:
            raise _Refused("40069", "The maximum number of sub-accounts created has been reached")
        for item in request.items:
            if item.name.lower() in self._names:
                raise _Refused("40060", "subNames already exists")
        rows = []
        for item in request.items:
            self._names.add(item.name.lower())
            sub = _Subaccount(
                uid=self._new_uid(), name=item.name, label=item.label, created_ms=wall_ms
            )
            # The first key carries the sub-account's label.
            key = self._new_key(
                item.label,
                [str(p) for p in item.permissions],
                list(item.ip_list),
                item.passphrase.reveal(),
            )
            sub.keys.append(key)
            existing.append(sub)
            rows.append(
                {
                    "subAccountUid": "*" * 11 if self.limits.mask_batch_names else sub.uid,
                    "subAccountName": _mask(sub.name) if self.limits.mask_batch_names else sub.name,
                    "label": sub.label,
                    "subAccountApiKey": key.api_key,
                    "secretKey": key.secret_key,
                    "permList": key.permissions,
                    "ipList": key.ip_list,
                }
            )
        return rows

    def _create_virtual_subaccounts(
        self, account: EmulatorAccount, payload: Any, wall_ms: int
    ) -> Any:
        request = self._parse(payload, m.CreateVirtualSubaccountsRequest)
        existing = self._subaccounts[account.uid]
        successes, failures = [], []
        for name in request.names:
            if name.lower() in self._names or len(existing) >= self.limits.max_subaccounts:
                failures.append({"subaAccountName": name})
                continue
            self._names.add(name.lower())
            sub = _Subaccount(uid=self._new_uid(), name=name, label="", created_ms=wall_ms)
            existing.append(sub)
            successes.append(
                {
                    "subaAccountUid": sub.uid,
                    "subaAccountName": sub.name,
                    "status": sub.status,
                    "label": sub.label,
                    "permList": [],
                    "cTime": str(wall_ms),
                    "uTime": str(wall_ms),
                }
            )
        return {"successList": successes, "failureList": failures}

    def _list_virtual_subaccounts(
        self, account: EmulatorAccount, params: Mapping[str, str], _wall_ms: int
    ) -> Any:
        request = self._parse(dict(params), m.ListVirtualSubaccountsRequest)
        subs = sorted(self._subaccounts[account.uid], key=lambda sub: int(sub.uid), reverse=True)
        if request.id_less_than is not None:
            subs = [sub for sub in subs if int(sub.uid) < int(request.id_less_than)]
        if request.status is not None:
            subs = [sub for sub in subs if sub.status == request.status]
        page = subs[: request.limit]
        return {
            "endId": page[-1].uid if page else None,
            "subAccountList": [
                {
                    "subAccountUid": sub.uid,
                    "subAccountName": _mask(sub.name) if self.limits.mask_list_names else sub.name,
                    "label": sub.label,
                    "status": sub.status,
                    "permList": ["spot_trade"],
                    "cTime": str(sub.created_ms),
                    "uTime": str(sub.created_ms),
                }
                for sub in page
            ],
        }

    def _list_virtual_subaccount_api_keys(
        self, account: EmulatorAccount, params: Mapping[str, str], _wall_ms: int
    ) -> Any:
        request = self._parse(dict(params), m.ListVirtualSubaccountAPIKeysRequest)
        sub = self._own_subaccount(account, request.subaccount_uid)
        return [self._key_row(sub, key, secret=False) for key in sub.keys]

    def _modify_virtual_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, _wall_ms: int
    ) -> Any:
        request = self._parse(payload, m.ModifyVirtualSubaccountAPIKeyRequest)
        sub = self._own_subaccount(account, request.subaccount_uid)
        key = next((k for k in sub.keys if k.api_key == request.api_key), None)
        if key is None:
            raise _Refused("40065", "This subApikey does not exist")
        _check_key_passphrase(key, request.passphrase)
        key.label = request.label
        key.ip_list = list(request.ip_list)
        if request.permissions is not None:
            key.permissions = [str(p) for p in request.permissions]
        return self._key_row(sub, key, secret=True)

    def _broker_key(
        self, account: EmulatorAccount, sub_uid: str, api_key: str | None
    ) -> tuple[list[_Key], _Key | None]:
        if not account.broker:
            raise _Refused(
                "40029", "This account is not a Broker, please apply to become a Broker first"
            )
        keys = self._broker_subs[account.uid].get(sub_uid)
        if keys is None:
            raise _Refused("40028", "This subUid does not belong to this account")
        return keys, next((k for k in keys if k.api_key == api_key), None)

    @staticmethod
    def _broker_row(sub_uid: str, key: _Key, *, secret: bool) -> dict[str, Any]:
        row: dict[str, Any] = {
            "subUid": sub_uid,
            "apiKey": key.api_key,
            "label": key.label,
            "ipList": key.ip_list,
            "permType": key.perm_type,
            "permList": key.permissions,
        }
        if secret:
            row["secretKey"] = key.secret_key
        return row

    def _modify_broker_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, _wall_ms: int
    ) -> Any:
        request = self._parse(payload, m.ModifyBrokerSubaccountAPIKeyRequest)
        _, key = self._broker_key(account, request.sub_uid, request.api_key)
        if key is None:
            raise _Refused("40065", "This subApikey does not exist")
        _check_key_passphrase(key, request.passphrase)
        key.permissions = [str(p) for p in request.permissions]
        key.perm_type = str(request.perm_type)
        if request.ip_list:
            key.ip_list = list(request.ip_list)
        if request.label is not None:
            key.label = request.label
        return self._broker_row(request.sub_uid, key, secret=False)

    def _create_broker_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, _wall_ms: int
    ) -> Any:
        request = self._parse(payload, m.CreateBrokerSubaccountAPIKeyRequest)
        keys, _ = self._broker_key(account, request.sub_uid, None)
        if len(keys) >= self.limits.max_keys:
            raise _Refused("40063", "API exceeds the maximum limit added")
        key = self._new_key(
            request.label,
            [str(p) for p in request.permissions],
            list(request.ip_list),
            request.passphrase.reveal(),
        )
        key.perm_type = str(request.perm_type)
        keys.append(key)
        return self._broker_row(request.sub_uid, key, secret=True)

    def _list_broker_subaccount_api_keys(
        self, account: EmulatorAccount, params: Mapping[str, str], _wall_ms: int
    ) -> Any:
        request = self._parse(dict(params), m.ListBrokerSubaccountAPIKeysRequest)
        keys, _ = self._broker_key(account, request.sub_uid, None)
        return [self._broker_row(request.sub_uid, key, secret=False) for key in keys]


def _parse_query(query: str) -> dict[str, str]:
    """
    The query's parameters, strictly: every part is ``k=v``, no key twice.

    Percent-escapes are decoded here, after the signature was checked on the raw text.
    """
    params: dict[str, str] = {}
    if not query:
        return params
    for part in query.split("&"):
        key, sep, value = part.partition("=")
        if not sep or not key or key in params:
            raise _Refused("40017", "Parameter verification failed (malformed query string)")
        try:
            params[urllib.parse.unquote(key, errors="strict")] = urllib.parse.unquote(
                value, errors="strict"
            )
        except UnicodeDecodeError as exc:
            raise _Refused(
                "40017", "Parameter verification failed (malformed query string)"
            ) from exc
    return params


def _check_key_passphrase(key: _Key, passphrase: Secret) -> None:
    """A modify names the target key's passphrase; a wrong one is 40036."""
    if not hmac.compare_digest(key.passphrase.encode(), passphrase.reveal().encode()):
        raise _Refused("40036", "passphrase is error")


def _first_validation_error(exc: BaseException) -> ValidationError | None:
    if isinstance(exc, ValidationError):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _first_validation_error(inner)
        if found is not None:
            return found
    return None


def _code_for(exc: ValidationError) -> str:
    """The Bitget code for the first broken rule, as Bitget would report it."""
    problem = exc.problems[0]
    field = problem.field.rsplit(".", 1)[-1].split("[")[0]
    if field in ("name", "names") and "twice" in problem.rule:
        return "40071"
    return {
        "name": "40055",
        "names": "40055",
        "label": "40056",
        "passphrase": "40070",
        "items": "40058",
    }.get(field, "40017")
