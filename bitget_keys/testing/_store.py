"""
What the emulated exchange holds: sub-accounts, their keys, copy-trading and broker keys.

One `Store` per exchange, shared by every endpoint family, so names stay unique across
all masters and a created key's secret can be found whichever endpoint made it.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import attrs

from bitget_keys._secret import Secret
from bitget_keys.testing._accounts import ALPHANUMERIC

__all__ = ["Key", "KeySpec", "Store", "Subaccount"]


@attrs.define
class Key:
    """An API key the exchange made or was seeded with; its secret stays here."""

    api_key: str
    secret_key: str
    passphrase: str
    label: str
    permissions: list[str]
    ip_list: list[str]
    #: The permission type: ``permType`` (v2, v3 broker) or ``type`` (v3 user keys).
    perm_type: str | None = None
    created_ms: int = 0


@attrs.define
class Subaccount:
    """A virtual sub-account of a master; a unified one's ``label`` is its note."""

    uid: str
    name: str
    label: str
    created_ms: int
    keys: list[Key] = attrs.field(factory=list)
    status: str = "normal"
    #: ``"CLASSIC"`` for a v2 sub-account, ``"UNIFIED"`` for one made by v3 create-sub.
    account_mode: str = "CLASSIC"
    #: The v3 list's ``type``: every sub-account the emulator makes is virtual.
    type: str = "VIRTUAL_CHILD"
    updated_ms: int = 0
    #: The sub-account's own rights, as the v2 list shows and modify-virtual-subaccount sets.
    permissions: list[str] = attrs.field(factory=lambda: ["spot_trade"])


class KeySpec(Protocol):
    """What a request that creates a key says about it."""

    @property
    def label(self) -> str: ...
    @property
    def permissions(self) -> Iterable[object]: ...
    @property
    def ip_list(self) -> Iterable[str]: ...
    @property
    def passphrase(self) -> Secret: ...


class Store:
    """Every master's sub-accounts and keys, the taken names, and the UID/key generators."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        #: Virtual sub-accounts by master UID, in creation order.
        self.subaccounts: dict[str, list[Subaccount]] = defaultdict(list)
        #: ND-broker sub-accounts' keys, by broker UID then sub-account UID.
        self.broker_subs: dict[str, dict[str, list[Key]]] = defaultdict(dict)
        #: Sub-account names in lower case: unique across the whole exchange.
        self.names: set[str] = set()
        #: The one copy-trading key of each trader UID.
        self.copy_keys: dict[str, Key] = {}
        #: Deleted keys by API key, with their master's and sub-account's UIDs: they
        #: sign nothing any more (40006), but tests may still ask about them.
        self.deleted: dict[str, tuple[str, str, Key]] = {}
        self._next_uid = 7_000_000_000
        #: Where each virtual sub-account key was last found: API key -> (master UID,
        #: sub-account UID). A hint only, checked on every use (keys move and go).
        self._where: dict[str, tuple[str, str]] = {}

    def new_uid(self) -> str:
        """A fresh sub-account UID, larger than every one before."""
        self._next_uid += self.rng.randrange(1, 1000)
        return str(self._next_uid)

    def new_key(
        self, label: str, permissions: list[str], ip_list: list[str], passphrase: str
    ) -> Key:
        """A fresh key with a random API key and secret."""
        token = "".join(self.rng.choice(ALPHANUMERIC) for _ in range(56))
        return Key(
            api_key=f"bg_{token[:32].lower()}",
            secret_key=token[8:],
            passphrase=passphrase,
            label=label,
            permissions=permissions,
            ip_list=ip_list,
        )

    def key_for(self, spec: KeySpec) -> Key:
        """A fresh key with the label, permissions, IPs and passphrase a request asked for."""
        return self.new_key(
            spec.label,
            [str(p) for p in spec.permissions],
            list(spec.ip_list),
            spec.passphrase.reveal(),
        )

    def subaccount_key(self, api_key: str) -> tuple[str, Subaccount, Key] | None:
        """
        The virtual sub-account key ``api_key`` (of any master, either family) with its
        master's UID and its sub-account, or ``None``.

        Found through a hint kept from the last search, checked each time, so a signed
        request of a sub-account key does not walk every master's keys.
        """
        hint = self._where.get(api_key)
        if hint is not None:
            found = self._find(api_key, hint[0], hint[1])
            if found is not None:
                return found
        for master_uid, subs in self.subaccounts.items():
            for sub in subs:
                self._where.update((key.api_key, (master_uid, sub.uid)) for key in sub.keys)
        hint = self._where.get(api_key)
        return None if hint is None else self._find(api_key, hint[0], hint[1])

    def _find(
        self, api_key: str, master_uid: str, sub_uid: str
    ) -> tuple[str, Subaccount, Key] | None:
        for sub in self.subaccounts.get(master_uid, ()):
            if sub.uid == sub_uid:
                for key in sub.keys:
                    if key.api_key == api_key:
                        return master_uid, sub, key
        return None

    def delete_key(self, master_uid: str, sub: Subaccount, key: Key) -> None:
        """Remove ``key`` from its sub-account; it is kept among the deleted ones."""
        sub.keys.remove(key)
        self.deleted[key.api_key] = (master_uid, sub.uid, key)

    def all_keys(self) -> Iterator[Key]:
        """Every key the exchange holds, whichever endpoint made it."""
        for subs in self.subaccounts.values():
            for sub in subs:
                yield from sub.keys
        yield from self.copy_keys.values()
        for by_sub in self.broker_subs.values():
            for keys in by_sub.values():
                yield from keys

    def seed_broker_key(self, broker_uid: str, sub_uid: str, key: Mapping[str, Any]) -> None:
        """Give an ND-broker sub-account a key, as if made outside the emulator."""
        self.broker_subs[broker_uid].setdefault(sub_uid, []).append(
            Key(
                api_key=key["api_key"],
                secret_key=key.get("secret_key", "broker-secret"),
                passphrase=key["passphrase"],
                label=key.get("label", ""),
                permissions=list(key.get("permissions", ["spot_trade"])),
                ip_list=list(key.get("ip_list", [])),
                perm_type=key.get("perm_type", "readonly"),
            )
        )
