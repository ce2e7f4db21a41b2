"""
Who is calling: the checks Bitget makes before it looks at a signed request, in its order.

Headers present, timestamp within the window, a known key, its passphrase, the signature
over the path, query and body exactly as received, the content type, the key's IP
whitelist; then whether the account's mode serves the endpoint at all, and whether a
sub-account's key may call it.

A known key is a master's (`EmulatorAccount`) or, after those, any virtual sub-account
key in the store, which signs as a `SubaccountCaller`: the sub-account's UID, its
master's mode, the key's own whitelist and passphrase. A key younger than
``Limits.key_propagation_ms`` is not known yet (40006, as a new key that has not
reached every one of Bitget's gateways), nor is a deleted one.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Final

from bitget_keys import _endpoints as ep
from bitget_keys._signing import prehash, sign
from bitget_keys.testing._accounts import EmulatorAccount, SubaccountCaller
from bitget_keys.testing._limits import Limits
from bitget_keys.testing._store import Store
from bitget_keys.testing._wire import Refused, Request

__all__ = ["SUBACCOUNT_ENDPOINTS", "Authenticator"]

#: What a sub-account's key may call: who it is (account-info, v2 and v3) and the v3
#: settings. Every other endpoint manages a master's sub-accounts and keys, and Bitget
#: documents each as "only supports API Key calls from the main account"; its error
#: table's code for that is 40048 "The user's ApiKey must be the parent account".
SUBACCOUNT_ENDPOINTS: Final = frozenset(
    {ep.ACCOUNT_INFO.name, ep.ACCOUNT_INFO_V3.name, ep.ACCOUNT_SETTINGS.name}
)
_INVALID_KEY: Final = ("40006", "Invalid ACCESS_KEY")

_REQUIRED_HEADERS = (
    ("ACCESS-KEY", "40001"),
    ("ACCESS-SIGN", "40002"),
    ("ACCESS-TIMESTAMP", "40003"),
    ("ACCESS-PASSPHRASE", "40011"),
)


class Authenticator:
    """Finds the account a signed request comes from, or refuses it as Bitget would."""

    def __init__(
        self, accounts: Mapping[str, EmulatorAccount], limits: Limits, store: Store
    ) -> None:
        self.accounts = accounts
        self.limits = limits
        self.store = store

    def lane_uid(self, request: Request) -> str:
        """
        The lane a request counts against: its account's UID (a sub-account key's
        sub-account), else the client's IP.
        """
        api_key = request.headers.get("ACCESS-KEY", "")
        account = self.accounts.get(api_key)
        if account is not None:
            return account.uid
        found = self.store.subaccount_key(api_key) if api_key else None
        return found[1].uid if found is not None else request.client_ip

    def caller(self, api_key: str, wall_ms: int) -> EmulatorAccount | None:
        """
        Whose key ``api_key`` is: a master, or a sub-account key that has propagated
        (``Limits.key_propagation_ms`` after it was made); ``None`` for anyone else.
        """
        account = self.accounts.get(api_key)
        if account is not None:
            return account
        found = self.store.subaccount_key(api_key)
        if found is None:
            return None
        master_uid, sub, key = found
        if wall_ms - key.created_ms < self.limits.key_propagation_ms:
            return None
        master = next((a for a in self.accounts.values() if a.uid == master_uid), None)
        return SubaccountCaller(
            uid=sub.uid,
            api_key=key.api_key,
            secret_key=key.secret_key,
            passphrase=key.passphrase,
            mode=master.mode if master is not None else "classic",
            ip_list=key.ip_list,
            master_uid=master_uid,
            permissions=tuple(key.permissions),
            perm_type=key.perm_type,
        )

    def authenticate(self, request: Request, wall_ms: int) -> EmulatorAccount:
        """The account that signed ``request``."""
        headers = request.headers
        stamp = self._check_headers(headers, wall_ms)
        account = self.caller(headers["ACCESS-KEY"], wall_ms)
        if account is None:
            raise Refused(*_INVALID_KEY)
        if not hmac.compare_digest(
            headers["ACCESS-PASSPHRASE"].encode(), account.passphrase.reveal().encode()
        ):
            raise Refused("40012", "apikey/password is incorrect")
        # Verified over the query and body exactly as received, as Bitget does.
        signed = prehash(stamp, request.method, request.path, request.query).encode()
        expected = sign(account.secret_key, signed + request.body)
        if not hmac.compare_digest(expected.encode(), headers["ACCESS-SIGN"].encode()):
            raise Refused("40009", "sign signature error")
        content_type = headers.get("Content-Type", "").split(";")[0].strip()
        if request.method == "POST" and content_type != "application/json":
            raise Refused("40007", "Invalid Content_Type")
        if account.ip_list and request.client_ip not in account.ip_list:
            raise Refused("40038", "The current ip is not in the apikey ip whitelist")
        return account

    @staticmethod
    def check_mode(account: EmulatorAccount, endpoint: ep.Endpoint) -> None:
        """
        A unified (UTA) master gets 40085 from the classic (v2) endpoints, a classic
        master 40084 from the unified (v3) ones; either way nothing is carried out.
        """
        if account.unified and endpoint.family == "v2":
            raise Refused(
                "40085",
                "You are in Unified Account mode, and the Classic Account API is not "
                "supported at this time",
            )
        if not account.unified and endpoint.family == "v3":
            raise Refused(
                "40084",
                "You are in Classic Account mode, and the Unified Account API is not "
                "supported at this time",
            )

    @staticmethod
    def check_caller(account: EmulatorAccount, endpoint: ep.Endpoint) -> None:
        """A sub-account's key may ask who it is, and nothing else (40048)."""
        if isinstance(account, SubaccountCaller) and endpoint.name not in SUBACCOUNT_ENDPOINTS:
            raise Refused("40048", "The user's ApiKey must be the parent account")

    def _check_headers(self, headers: Mapping[str, str], wall_ms: int) -> str:
        for header, code in _REQUIRED_HEADERS:
            if not headers.get(header):
                raise Refused(code, f"{header.replace('-', '_')} cannot be empty")
        stamp = headers["ACCESS-TIMESTAMP"]
        # isascii() first: str.isdigit() also accepts digits int() can't parse ("²").
        if not (stamp.isascii() and stamp.isdigit()) or len(stamp) != 13:
            raise Refused("40005", "Invalid ACCESS_TIMESTAMP")
        if abs(int(stamp) - wall_ms) > self.limits.timestamp_window_ms:
            raise Refused("40008", "Request timestamp expired")
        return stamp
