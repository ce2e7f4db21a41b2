"""A virtual sub-account's API keys: create one, list them, modify one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys.testing._accounts import EmulatorAccount
from bitget_keys.testing._routes import Routes, check_key_passphrase, key_row
from bitget_keys.testing._store import Key, Subaccount
from bitget_keys.testing._wire import Refused, structure

__all__ = ["KeyRoutes"]


#: The columns of a sub-account key, after its sub-account's UID.
_COLUMNS: Final = (
    ("label", "label"),
    ("subAccountApiKey", "api_key"),
    ("permList", "permissions"),
    ("ipList", "ip_list"),
)


def _row(sub: Subaccount, key: Key, *, secret: bool) -> dict[str, Any]:
    return key_row(key, _COLUMNS, secret=secret, subAccountUid=sub.uid)


class KeyRoutes(Routes):
    """The ``*_virtual_subaccount_api_key(s)`` endpoints; at most ``max_keys`` per sub-account."""

    endpoints = (
        ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY,
        ep.LIST_VIRTUAL_SUBACCOUNT_API_KEYS,
        ep.MODIFY_VIRTUAL_SUBACCOUNT_API_KEY,
    )

    def create_virtual_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, wall_ms: int
    ) -> Any:
        """A new key on one of the master's sub-accounts, with its secret."""
        request = structure(payload, m.CreateVirtualSubaccountAPIKeyRequest)
        sub = self.own_subaccount(account, request.subaccount_uid)
        if len(sub.keys) >= self.limits.max_keys:
            raise Refused("40063", "API exceeds the maximum limit added")
        key = self.store.key_for(request)
        key.perm_type = None if request.perm_type is None else str(request.perm_type)
        key.created_ms = wall_ms
        sub.keys.append(key)
        return _row(sub, key, secret=True)

    def list_virtual_subaccount_api_keys(
        self, account: EmulatorAccount, params: Mapping[str, str], _wall_ms: int
    ) -> Any:
        """The keys of one of the master's sub-accounts, without secrets."""
        request = structure(dict(params), m.ListVirtualSubaccountAPIKeysRequest)
        sub = self.own_subaccount(account, request.subaccount_uid)
        return [_row(sub, key, secret=False) for key in sub.keys]

    def modify_virtual_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, _wall_ms: int
    ) -> Any:
        """
        New label, IPs and maybe permissions for a key whose passphrase the caller knows:
        the whitelist becomes what is sent, and an empty ``permList`` removes every right.
        """
        request = structure(payload, m.ModifyVirtualSubaccountAPIKeyRequest)
        sub = self.own_subaccount(account, request.subaccount_uid)
        key = next((k for k in sub.keys if k.api_key == request.api_key), None)
        if key is None:
            raise Refused("40065", "This subApikey does not exist")
        check_key_passphrase(key, request.passphrase)
        key.label = request.label
        key.ip_list = list(request.ip_list)
        if request.permissions is not None:
            key.permissions = [str(p) for p in request.permissions]
        return _row(sub, key, secret=True)
