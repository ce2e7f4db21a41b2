"""
What happens to the emulated exchange behind the API's back, for tests: someone edits a
key or makes one in Bitget's web UI, a sub-account is made or frozen there; and what a
test may look up about a key (never its secret or passphrase).

`Exchange` offers each as a method; they change the store directly, bypassing the
request pipeline (no signature, no rate limit, no audit), as the web UI would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bitget_keys.testing._accounts import EmulatorAccount
from bitget_keys.testing._limits import Limits
from bitget_keys.testing._store import Key, Store, Subaccount

__all__ = ["KeyAdmin"]

#: A sub-account's status when frozen, as each family's list spells it.
_FROZEN = {"classic": "freeze", "unified": "frozen"}


def _listed(values: Iterable[str], what: str) -> list[str]:
    # A lone string is iterable too: "1.2.3.4" would become a list of characters.
    if isinstance(values, str):
        msg = f"{what} must be a list, not one string"
        raise TypeError(msg)
    return [str(value) for value in values]


class KeyAdmin:
    """The web UI's view of the store: look keys up, change them, make keys and sub-accounts."""

    def __init__(self, store: Store, accounts: Mapping[str, EmulatorAccount], limits: Limits):
        self.store = store
        self.accounts = accounts
        self.limits = limits

    def master(self, uid: str) -> EmulatorAccount:
        """The master account ``uid``; any other is a `KeyError`."""
        for account in self.accounts.values():
            if account.uid == uid:
                return account
        msg = f"no master account with UID {uid}"
        raise KeyError(msg)

    def subaccount(self, master_uid: str, sub_uid: str) -> Subaccount:
        """A master's sub-account; any other is a `KeyError`."""
        self.master(master_uid)
        for sub in self.store.subaccounts.get(master_uid, ()):
            if sub.uid == sub_uid:
                return sub
        msg = f"master {master_uid} has no sub-account {sub_uid}"
        raise KeyError(msg)

    def key(self, api_key: str) -> dict[str, Any] | None:
        """A virtual sub-account key, live or deleted, as a test may see it; ``None``: unknown."""
        found = self.store.subaccount_key(api_key)
        if found is not None:
            master_uid, sub, key = found
            return _view(key, master_uid, sub.uid, deleted=False, status=sub.status)
        gone = self.store.deleted.get(api_key)
        if gone is not None:
            master_uid, sub_uid, key = gone
            return _view(key, master_uid, sub_uid, deleted=True, status=None)
        return None

    def tamper_key(
        self,
        api_key: str,
        *,
        permissions: Iterable[str] | None = None,
        ip_list: Iterable[str] | None = None,
        perm_type: str | None = None,
    ) -> None:
        """Change what is given of a live key, as someone in the web UI would."""
        found = self.store.subaccount_key(api_key)
        if found is None:
            msg = f"no live sub-account key {api_key}"
            raise KeyError(msg)
        key = found[2]
        if permissions is not None:
            key.permissions = _listed(permissions, "permissions")
        if ip_list is not None:
            key.ip_list = _listed(ip_list, "ip_list")
        if perm_type is not None:
            key.perm_type = perm_type

    def add_key(
        self,
        master_uid: str,
        sub_uid: str,
        *,
        label: str,
        permissions: Iterable[str],
        ip_list: Iterable[str],
        passphrase: str,
        perm_type: str | None,
        created_ms: int,
    ) -> dict[str, str]:
        """A key made in the web UI; its API key and secret, for the test to sign with."""
        unified = self.master(master_uid).unified
        sub = self.subaccount(master_uid, sub_uid)
        quota = self.limits.max_uta_keys if unified else self.limits.max_keys
        if len(sub.keys) >= quota:
            msg = f"sub-account {sub_uid} has its {quota} keys"
            raise ValueError(msg)
        key = self.store.new_key(
            label, _listed(permissions, "permissions"), _listed(ip_list, "ip_list"), passphrase
        )
        key.perm_type = perm_type
        key.created_ms = created_ms
        sub.keys.append(key)
        return {"api_key": key.api_key, "secret_key": key.secret_key}

    def set_frozen(self, master_uid: str, sub_uid: str, *, frozen: bool) -> None:
        """Freeze or unfreeze a sub-account, spelled as its master's family lists it."""
        mode = self.master(master_uid).mode
        self.subaccount(master_uid, sub_uid).status = _FROZEN[mode] if frozen else "normal"

    def add_subaccount(self, master_uid: str, name: str, label: str, created_ms: int) -> str:
        """A sub-account made in the web UI (names stay unique across the exchange)."""
        unified = self.master(master_uid).unified
        subs = self.store.subaccounts[master_uid]
        quota = self.limits.max_uta_subaccounts if unified else self.limits.max_subaccounts
        if len(subs) >= quota:
            msg = f"master {master_uid} has its {quota} sub-accounts"
            raise ValueError(msg)
        if name.lower() in self.store.names:
            msg = f"the sub-account name {name!r} is taken"
            raise ValueError(msg)
        self.store.names.add(name.lower())
        sub = Subaccount(
            uid=self.store.new_uid(),
            name=name,
            label=label,
            created_ms=created_ms,
            account_mode="UNIFIED" if unified else "CLASSIC",
            updated_ms=created_ms,
        )
        subs.append(sub)
        return sub.uid


def _view(
    key: Key, master_uid: str, sub_uid: str, *, deleted: bool, status: str | None
) -> dict[str, Any]:
    """A key without its secret or passphrase."""
    return {
        "api_key": key.api_key,
        "label": key.label,
        "permissions": list(key.permissions),
        "ip_list": list(key.ip_list),
        "perm_type": key.perm_type,
        "subaccount_uid": sub_uid,
        "master_uid": master_uid,
        "created_ms": key.created_ms,
        "deleted": deleted,
        # No rights left: Bitget keeps such a key, but it can do nothing (40014).
        "neutralised": not deleted and not key.permissions,
        "frozen": status in _FROZEN.values(),
    }
