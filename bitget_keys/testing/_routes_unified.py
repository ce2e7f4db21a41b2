"""
Unified Trading Account (v3) masters: their settings, sub-accounts and sub-account keys.

Only unified masters reach these (`Authenticator.check_mode` gives classic ones 40084).
Sub-accounts and keys live in the same `Store` as the classic ones, so a name is unique
across both families and `Exchange.subaccounts` and `Exchange.secret_of` see them all.

Bitget documents no error codes for the v3 user endpoints. Where it leaves a rule
unsaid the emulator takes the strict reading and answers with the code the classic
endpoints use for the same thing: a taken username is 40060 (unique across the exchange
without case, as classic names are), a full quota 40069 / 40063, a sub-account that is
not the master's 40066, a wrong passphrase on update 40036 (the key's own passphrase
must be given), and an unknown key 40034 "Parameter apiKey does not exist".

create-sub honours ``accountMode`` (a unified sub-account by default); update-sub-api
and delete-sub-api refuse a classic sub-account's key, as Bitget says they do, with its
documented 25245 "The account is not the unified account mode".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys.testing._accounts import EmulatorAccount, SubaccountCaller
from bitget_keys.testing._routes import Routes, check_key_passphrase, check_rights
from bitget_keys.testing._store import Key, Subaccount
from bitget_keys.testing._wire import Refused, structure

__all__ = ["UnifiedRoutes"]

#: The spellings of a read-only key's type (v3 user keys, v2 and broker keys).
_READ_ONLY = ("read_only", "readonly")
#: The domain of a unified sub-account's virtual email.
_EMAIL_DOMAIN = "@virtual-bitget.com"

T = TypeVar("T")


def _masked_email(name: str) -> str:
    """The virtual email as sub-list shows it: three letters, then stars."""
    return f"{name[:3]}****{_EMAIL_DOMAIN}"


def _key_row(key: Key) -> dict[str, Any]:
    """A key as update-sub-api and sub-api-list show it: never its secret."""
    return {
        "note": key.label,
        "apiKey": key.api_key,
        "type": key.perm_type,
        "permissions": key.permissions,
        "ips": key.ip_list,
    }


class UnifiedRoutes(Routes):
    """The v3 account settings, ``*_uta_subaccount(s)`` and ``*_uta_subaccount_api_key(s)``."""

    endpoints = (
        ep.ACCOUNT_SETTINGS,
        ep.ACCOUNT_INFO_V3,
        ep.CREATE_UTA_SUBACCOUNT,
        ep.LIST_UTA_SUBACCOUNTS,
        ep.FREEZE_UTA_SUBACCOUNT,
        ep.CREATE_UTA_SUBACCOUNT_API_KEY,
        ep.UPDATE_UTA_SUBACCOUNT_API_KEY,
        ep.DELETE_UTA_SUBACCOUNT_API_KEY,
        ep.LIST_UTA_SUBACCOUNT_API_KEYS,
    )

    def account_settings(self, account: EmulatorAccount, _params: Any, _wall_ms: int) -> Any:
        """
        The caller's settings: a unified account with no symbol or coin configured. A
        sub-account's key needs the UTA-management right Bitget asks for here (40014).
        """
        check_rights(account, "uta_mgt")
        return {
            "uid": account.uid,
            "accountMode": "unified",
            "assetMode": "multi_assets",
            "holdMode": "one_way_mode",
            "stpMode": "none",
            "symbolConfigList": [],
            "coinConfigList": [],
        }

    def account_info_v3(self, account: EmulatorAccount, _params: Any, _wall_ms: int) -> Any:
        """
        Who the calling key belongs to, with the key's whitelist and rights: a
        sub-account's key is told its sub-account (``uid``) and master (``parentId``),
        or 40014 once it has no rights left.
        """
        check_rights(account)
        parent, perm_type, rights = None, None, ["uta_mgt", "uta_trade"]
        if isinstance(account, SubaccountCaller):
            parent, perm_type = account.master_uid, account.perm_type
            rights = list(account.permissions)
        return {
            "uid": account.uid,
            "inviterId": None,
            "parentId": parent,
            "channelCode": "",
            "channel": "",
            "ips": ",".join(account.ip_list),
            # Hyphenated here, unlike the key's own `type`.
            "permType": "read-only" if perm_type in _READ_ONLY else "read-and-write",
            "permissions": rights,
            "regisTime": None,
        }

    # -- sub-accounts ----------------------------------------------------------------

    def create_uta_subaccount(self, account: EmulatorAccount, payload: Any, wall_ms: int) -> Any:
        """One unified virtual sub-account, named by its (exchange-wide unique) username."""
        request = structure(payload, m.CreateUTASubaccountRequest)
        mode = request.account_mode or m.SubaccountMode.UNIFIED
        if not mode.known:
            raise Refused("40017", "Parameter verification failed: accountMode")
        subs = self.store.subaccounts[account.uid]
        if len(subs) >= self.limits.max_uta_subaccounts:
            raise Refused("40069", "The maximum number of sub-accounts created has been reached")
        if request.username.lower() in self.store.names:
            raise Refused("40060", "subNames already exists")
        self.store.names.add(request.username.lower())
        sub = Subaccount(
            uid=self.store.new_uid(),
            name=request.username,
            label=request.note or "",
            created_ms=wall_ms,
            account_mode=str(mode).upper(),
            updated_ms=wall_ms,
        )
        subs.append(sub)
        return {
            "username": sub.name + _EMAIL_DOMAIN,
            "subUid": sub.uid,
            "status": sub.status,
            "note": sub.label,
            "createdTime": str(sub.created_ms),
            "updatedTime": str(sub.updated_ms),
        }

    def list_uta_subaccounts(
        self, account: EmulatorAccount, params: Mapping[str, str], _wall_ms: int
    ) -> Any:
        """One page of the master's sub-accounts, in creation order."""
        request = structure(dict(params), m.ListUTASubaccountsRequest)
        subs = self.store.subaccounts[account.uid]
        page, more = _page(subs, request.limit, request.cursor, lambda sub: sub.uid)
        return {
            "list": [
                {
                    "subUid": sub.uid,
                    "username": _masked_email(sub.name),
                    "status": sub.status,
                    "accountMode": sub.account_mode,
                    "type": sub.type,
                    "note": sub.label,
                    "createdTime": str(sub.created_ms),
                    "updatedTime": str(sub.updated_ms),
                }
                for sub in page
            ],
            "hasNext": self._has_next(more=more),
            "cursor": page[-1].uid if page else (request.cursor or ""),
        }

    def freeze_uta_subaccount(self, account: EmulatorAccount, payload: Any, wall_ms: int) -> Any:
        """Freeze or unfreeze one of the master's sub-accounts."""
        request = structure(payload, m.FreezeUTASubaccountRequest)
        sub = self.own_subaccount(account, request.sub_uid)
        sub.status = "frozen" if request.operation == m.FreezeOperation.FREEZE else "normal"
        sub.updated_ms = wall_ms
        return {}

    # -- sub-account keys ------------------------------------------------------------

    def create_uta_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, wall_ms: int
    ) -> Any:
        """A new key on one of the master's sub-accounts, with its secret (``secret``)."""
        request = structure(payload, m.CreateUTASubaccountAPIKeyRequest)
        sub = self.own_subaccount(account, request.sub_uid)
        if len(sub.keys) >= self.limits.max_uta_keys:
            raise Refused("40063", "API exceeds the maximum limit added")
        key = self.store.new_key(
            request.note,
            [str(p) for p in request.permissions],
            list(request.ips),
            request.passphrase.reveal(),
        )
        key.perm_type = str(request.type)
        key.created_ms = wall_ms
        sub.keys.append(key)
        return _key_row(key) | {"secret": key.secret_key}

    def update_uta_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, _wall_ms: int
    ) -> Any:
        """
        New rights and/or whitelist for a key whose passphrase the caller knows: an
        omitted ``ips`` keeps the whitelist, an empty one deletes it.
        """
        request = structure(payload, m.UpdateUTASubaccountAPIKeyRequest)
        _, key = self._own_key(account, request.api_key)
        check_key_passphrase(key, request.passphrase)
        if request.type is not None and request.permissions is not None:
            key.perm_type = str(request.type)
            key.permissions = [str(p) for p in request.permissions]
        if isinstance(request.ips, m.ClearWhitelist):
            key.ip_list = []
        elif request.ips is not None:
            key.ip_list = list(request.ips)
        return _key_row(key)

    def delete_uta_subaccount_api_key(
        self, account: EmulatorAccount, payload: Any, _wall_ms: int
    ) -> Any:
        """One of the master's sub-account keys stops working, and leaves the lists, at once."""
        request = structure(payload, m.DeleteUTASubaccountAPIKeyRequest)
        sub, key = self._own_key(account, request.api_key)
        self.store.delete_key(account.uid, sub, key)
        return {}

    def list_uta_subaccount_api_keys(
        self, account: EmulatorAccount, params: Mapping[str, str], _wall_ms: int
    ) -> Any:
        """One page of a sub-account's keys, in creation order, without secrets."""
        request = structure(dict(params), m.ListUTASubaccountAPIKeysRequest)
        sub = self.own_subaccount(account, request.sub_uid)
        page, more = _page(sub.keys, request.limit, request.cursor, lambda key: key.api_key)
        return {
            "items": [_key_row(key) | {"ts": str(key.created_ms)} for key in page],
            "hasNext": self._has_next(more=more),
            "cursor": page[-1].api_key if page else (request.cursor or ""),
        }

    # -- helpers ---------------------------------------------------------------------

    def _own_key(self, account: EmulatorAccount, api_key: str) -> tuple[Subaccount, Key]:
        """
        The master's sub-account key ``api_key`` and its sub-account; any other is 40034.
        Update and delete serve unified sub-accounts' keys only: a classic one's is 25245.
        """
        for sub in self.store.subaccounts[account.uid]:
            for key in sub.keys:
                if key.api_key != api_key:
                    continue
                if sub.account_mode != "UNIFIED":
                    raise Refused("25245", "The account is not the unified account mode")
                return sub, key
        raise Refused("40034", "Parameter apiKey does not exist")

    def _has_next(self, *, more: bool) -> bool | str:
        """``hasNext`` as a boolean (Bitget's examples) or a string (its tables)."""
        if self.limits.has_next_as_string:
            return "true" if more else "false"
        return more


def _page(
    rows: Sequence[T], limit: int, cursor: str | None, ident: Callable[[T], str]
) -> tuple[Sequence[T], bool]:
    """
    The ``limit`` rows after the one ``cursor`` names (from the start without one), and
    whether more follow. A cursor that names no row is 40017: it can only be made up.
    """
    start = 0
    if cursor is not None:
        ids = [ident(row) for row in rows]
        if cursor not in ids:
            raise Refused("40017", "Parameter verification failed (cursor)")
        start = ids.index(cursor) + 1
    page = rows[start : start + limit]
    return page, start + limit < len(rows)
