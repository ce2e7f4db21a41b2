"""
A unified (v3) ND broker's sub-account keys: create, modify, delete and query.

They work over the same broker sub-accounts as the classic broker endpoints (seeded
with `Exchange.add_broker_subaccount`), keep the v2 broker field names (``label``,
``ipList``, ``permType``, ``permList``, ``secretKey``) and its codes: a non-broker is
40029, a sub-account the broker wasn't seeded with 40028, an unknown key 40065, a full
quota (``Limits.max_uta_keys``) 40063, a wrong passphrase on modify 40036. A classic
broker never gets here (40084). Query answers one key, the sub-account's first, as
Bitget's single-object answer shows; a sub-account without keys is 40065.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys.testing._accounts import EmulatorAccount
from bitget_keys.testing._routes import check_key_passphrase, key_row
from bitget_keys.testing._routes_broker import BrokerRoutes
from bitget_keys.testing._store import Key
from bitget_keys.testing._wire import NO_DATA, Refused, structure

__all__ = ["UnifiedBrokerRoutes"]


#: The columns of a broker sub-account key, after its sub-account's UID.
_COLUMNS: Final = (
    ("label", "label"),
    ("apiKey", "api_key"),
    ("permType", "perm_type"),
    ("permList", "permissions"),
    ("ipList", "ip_list"),
)

_NO_KEY: Final = ("40065", "This subApikey does not exist")


def _row(sub_uid: str, key: Key, *, secret: bool) -> dict[str, Any]:
    return key_row(key, _COLUMNS, secret=secret, subUid=sub_uid)


class UnifiedBrokerRoutes(BrokerRoutes):
    """The ``*_uta_broker_subaccount_api_key`` endpoints, with the classic broker's checks."""

    endpoints = (
        ep.CREATE_UTA_BROKER_SUBACCOUNT_API_KEY,
        ep.MODIFY_UTA_BROKER_SUBACCOUNT_API_KEY,
        ep.DELETE_UTA_BROKER_SUBACCOUNT_API_KEY,
        ep.QUERY_UTA_BROKER_SUBACCOUNT_API_KEY,
    )

    def _key(self, account: EmulatorAccount, sub_uid: str, api_key: str) -> tuple[list[Key], Key]:
        keys = self._keys(account, sub_uid)
        key = next((k for k in keys if k.api_key == api_key), None)
        if key is None:
            raise Refused(*_NO_KEY)
        return keys, key

    def create_uta_broker_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, wall_ms: int
    ) -> Any:
        """A new key on one of the broker's sub-accounts, with its secret (``secretKey``)."""
        request = structure(payload, m.CreateUTABrokerSubaccountAPIKeyRequest)
        keys = self._keys(account, request.sub_uid)
        if len(keys) >= self.limits.max_uta_keys:
            raise Refused("40063", "API exceeds the maximum limit added")
        key = self.store.key_for(request)
        key.perm_type = str(request.perm_type)
        key.created_ms = wall_ms
        keys.append(key)
        return _row(request.sub_uid, key, secret=True)

    def modify_uta_broker_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, _wall_ms: int
    ) -> Any:
        """Change only what the request gives, for a key whose passphrase the caller knows."""
        request = structure(payload, m.ModifyUTABrokerSubaccountAPIKeyRequest)
        _, key = self._key(account, request.sub_uid, request.api_key)
        check_key_passphrase(key, request.passphrase)
        if request.label is not None:
            key.label = request.label
        if request.perm_type is not None:
            key.perm_type = str(request.perm_type)
        if request.permissions is not None:
            key.permissions = [str(p) for p in request.permissions]
        if request.ip_list is not None:
            key.ip_list = list(request.ip_list)
        return _row(request.sub_uid, key, secret=False)

    def delete_uta_broker_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, _wall_ms: int
    ) -> Any:
        """The key stops working at once; Bitget's answer has no ``data`` at all."""
        request = structure(payload, m.DeleteUTABrokerSubaccountAPIKeyRequest)
        keys, key = self._key(account, request.sub_uid, request.api_key)
        keys.remove(key)
        return NO_DATA

    def query_uta_broker_subaccount_api_key(
        self, account: EmulatorAccount, params: Mapping[str, str], _wall_ms: int
    ) -> Any:
        """The sub-account's first key, with its secret, as one object."""
        request = structure(dict(params), m.ListBrokerSubaccountAPIKeysRequest)
        keys = self._keys(account, request.sub_uid)
        if not keys:
            raise Refused(*_NO_KEY)
        return _row(request.sub_uid, keys[0], secret=True)
