"""
What every endpoint family of the emulated exchange shares.

A family is a class that lists its endpoints in ``endpoints`` and has a handler method
named after each; the exchange merges the families' `Routes.routes` and calls the
handler once the request is authenticated and counted. A handler takes the calling
account (``None`` for a public endpoint), the request's parameters (a GET's query, a
POST's JSON body) and the exchange's wall clock.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, ClassVar

from bitget_keys import _endpoints as ep
from bitget_keys._secret import Secret
from bitget_keys.testing._accounts import EmulatorAccount, SubaccountCaller
from bitget_keys.testing._limits import Limits
from bitget_keys.testing._store import Key, Store, Subaccount
from bitget_keys.testing._wire import Refused

__all__ = ["Handler", "Routes", "check_key_passphrase", "check_rights", "key_row", "mask"]

#: ``(account, parameters, wall_ms) -> data`` of the success envelope.
Handler = Callable[[Any, Any, int], Any]


class Routes:
    """A family of endpoints over the exchange's store, under its limits."""

    #: The endpoints this family serves; each has a handler method of the same name.
    endpoints: ClassVar[tuple[ep.Endpoint, ...]] = ()

    def __init__(self, store: Store, limits: Limits) -> None:
        self.store = store
        self.limits = limits

    def routes(self) -> dict[str, Handler]:
        """The handler of each endpoint of this family, by endpoint name."""
        return {endpoint.name: getattr(self, endpoint.name) for endpoint in self.endpoints}

    def own_subaccount(self, account: EmulatorAccount, uid: str) -> Subaccount:
        """The master's virtual sub-account ``uid``; any other UID is 40066."""
        for sub in self.store.subaccounts[account.uid]:
            if sub.uid == uid:
                return sub
        raise Refused("40066", "subUid not in account or not virtual")


def check_rights(account: EmulatorAccount, needed: str | None = None) -> None:
    """
    A sub-account's key with no rights left (neutralised), or without ``needed``, is
    40014 "Incorrect permissions"; a master's key has every right.
    """
    if isinstance(account, SubaccountCaller) and (
        not account.permissions or (needed is not None and needed not in account.permissions)
    ):
        raise Refused("40014", "Incorrect permissions")


def check_key_passphrase(key: Key, passphrase: Secret) -> None:
    """A modify names the target key's passphrase; a wrong one is 40036."""
    if not hmac.compare_digest(key.passphrase.encode(), passphrase.reveal().encode()):
        raise Refused("40036", "passphrase is error")


def key_row(
    key: Key, columns: tuple[tuple[str, str], ...], *, secret: bool, **first: str
) -> dict[str, Any]:
    """
    A key as an answer shows it: the ``first`` fields, then ``(wire name, Key attribute)``
    columns in order, then its secret when the answer is the one that may show it.
    """
    row: dict[str, Any] = dict(first)
    row.update((wire, getattr(key, attribute)) for wire, attribute in columns)
    if secret:
        row["secretKey"] = key.secret_key
    return row


def mask(name: str) -> str:
    """A sub-account name as Bitget masks it in some answers."""
    return "*****@*******.com" if name else name
