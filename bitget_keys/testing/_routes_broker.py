"""
An ND broker's sub-account keys: create, list, modify and delete.

Only a broker master may call these (40029 otherwise), and only on sub-accounts it was
seeded with (`Exchange.add_broker_subaccount`); the emulator does not create broker
sub-accounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys.testing._accounts import EmulatorAccount
from bitget_keys.testing._routes import Routes, check_key_passphrase, key_row
from bitget_keys.testing._store import Key
from bitget_keys.testing._wire import Refused, structure

__all__ = ["BrokerRoutes"]


#: The columns of a broker sub-account key, after its sub-account's UID.
_COLUMNS: Final = (
    ("apiKey", "api_key"),
    ("label", "label"),
    ("ipList", "ip_list"),
    ("permType", "perm_type"),
    ("permList", "permissions"),
)


def _row(sub_uid: str, key: Key, *, secret: bool) -> dict[str, Any]:
    return key_row(key, _COLUMNS, secret=secret, subUid=sub_uid)


class BrokerRoutes(Routes):
    """The ``*_broker_subaccount_api_key(s)`` endpoints."""

    endpoints: ClassVar[tuple[ep.Endpoint, ...]] = (
        ep.CREATE_BROKER_SUBACCOUNT_API_KEY,
        ep.LIST_BROKER_SUBACCOUNT_API_KEYS,
        ep.MODIFY_BROKER_SUBACCOUNT_API_KEY,
        ep.DELETE_BROKER_SUBACCOUNT_API_KEY,
    )

    def _keys(self, account: EmulatorAccount, sub_uid: str) -> list[Key]:
        if not account.broker:
            raise Refused(
                "40029", "This account is not a Broker, please apply to become a Broker first"
            )
        keys = self.store.broker_subs[account.uid].get(sub_uid)
        if keys is None:
            raise Refused("40028", "This subUid does not belong to this account")
        return keys

    def modify_broker_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, _wall_ms: int
    ) -> Any:
        """New permissions, and maybe IPs and label, for a key whose passphrase the caller knows."""
        request = structure(payload, m.ModifyBrokerSubaccountAPIKeyRequest)
        keys = self._keys(account, request.sub_uid)
        key = next((k for k in keys if k.api_key == request.api_key), None)
        if key is None:
            raise Refused("40065", "This subApikey does not exist")
        check_key_passphrase(key, request.passphrase)
        key.permissions = [str(p) for p in request.permissions]
        if request.perm_type is not None:  # optional: the key keeps its type
            key.perm_type = str(request.perm_type)
        if request.ip_list:
            key.ip_list = list(request.ip_list)
        if request.label is not None:
            key.label = request.label
        return _row(request.sub_uid, key, secret=False)

    def create_broker_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, _wall_ms: int
    ) -> Any:
        """A new key on one of the broker's sub-accounts, with its secret."""
        request = structure(payload, m.CreateBrokerSubaccountAPIKeyRequest)
        keys = self._keys(account, request.sub_uid)
        if len(keys) >= self.limits.max_keys:
            raise Refused("40063", "API exceeds the maximum limit added")
        key = self.store.key_for(request)
        key.perm_type = str(request.perm_type)
        keys.append(key)
        return _row(request.sub_uid, key, secret=True)

    def list_broker_subaccount_api_keys(
        self, account: EmulatorAccount, params: Mapping[str, str], _wall_ms: int
    ) -> Any:
        """The keys of one of the broker's sub-accounts, without secrets."""
        request = structure(dict(params), m.ListBrokerSubaccountAPIKeysRequest)
        keys = self._keys(account, request.sub_uid)
        return [_row(request.sub_uid, key, secret=False) for key in keys]

    def delete_broker_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, _wall_ms: int
    ) -> Any:
        """The key stops working at once; Bitget answers the string ``success``."""
        request = structure(payload, m.DeleteBrokerSubaccountAPIKeyRequest)
        keys = self._keys(account, request.sub_uid)
        key = next((k for k in keys if k.api_key == request.api_key), None)
        if key is None:
            raise Refused("40065", "This subApikey does not exist")
        keys.remove(key)
        return "success"
