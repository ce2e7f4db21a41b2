"""
Who is calling: the checks Bitget makes before it looks at a signed request, in its order.

Headers present, timestamp within the window, a known key, its passphrase, the signature
over the path, query and body exactly as received, the content type, the key's IP
whitelist; then whether the account's mode serves the endpoint at all.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from bitget_keys import _endpoints as ep
from bitget_keys._signing import prehash, sign
from bitget_keys.testing._accounts import EmulatorAccount
from bitget_keys.testing._limits import Limits
from bitget_keys.testing._wire import Refused, Request

__all__ = ["Authenticator"]

_REQUIRED_HEADERS = (
    ("ACCESS-KEY", "40001"),
    ("ACCESS-SIGN", "40002"),
    ("ACCESS-TIMESTAMP", "40003"),
    ("ACCESS-PASSPHRASE", "40011"),
)


class Authenticator:
    """Finds the account a signed request comes from, or refuses it as Bitget would."""

    def __init__(self, accounts: Mapping[str, EmulatorAccount], limits: Limits) -> None:
        self.accounts = accounts
        self.limits = limits

    def lane_uid(self, request: Request) -> str:
        """The lane a request counts against: its account's UID, else the client's IP."""
        account = self.accounts.get(request.headers.get("ACCESS-KEY", ""))
        return account.uid if account is not None else request.client_ip

    def authenticate(self, request: Request, wall_ms: int) -> EmulatorAccount:
        """The account that signed ``request``."""
        headers = request.headers
        stamp = self._check_headers(headers, wall_ms)
        account = self.accounts.get(headers["ACCESS-KEY"])
        if account is None:
            raise Refused("40006", "Invalid ACCESS_KEY")
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
