"""
Reading what exists for a master account, and keeping track of it during a run.

`read_live_state` reads the list endpoints; reads change nothing, so one that fails on
Bitget's side or loses its answer is tried again a few times. `KnownState` is live
state as last read plus what the current round created, with what unknown outcomes may
have changed marked stale, so that only that is read again.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import attrs

from bitget_keys import models as m
from bitget_keys._client import Client
from bitget_keys.provision.diff import LiveState
from bitget_keys.provision.family import AccountAPI
from bitget_keys.provision.plan import AccountSpec, BrokerKeySpec
from bitget_keys.provision.retrying import describe_error, read_retrying

__all__ = [
    "KnownState",
    "describe_error",
    "gather_all",
    "list_broker_keys",
    "list_keys",
    "list_subaccounts",
    "read_live_state",
    "read_retrying",
]

T = TypeVar("T")


async def list_subaccounts(api: AccountAPI) -> tuple[m.VirtualSubaccount, ...]:
    """Every sub-account of the master (see `read_retrying`)."""
    return await read_retrying(api.list_subaccounts)


async def gather_all(reads: Sequence[Awaitable[T]]) -> list[T]:
    """
    Run reads at once (the scheduler paces them on their lanes, whatever the round
    trip); once all have ended, raise the first error, if any.
    """
    results = await asyncio.gather(*reads, return_exceptions=True)
    values = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        values.append(result)
    return values


async def _per_uid(read: Callable[[str], Awaitable[T]], uids: Sequence[str]) -> list[T]:
    """``read`` of each sub-account UID, at once, each retried (see `read_retrying`)."""
    return await gather_all([read_retrying(functools.partial(read, uid)) for uid in uids])


async def list_keys(
    api: AccountAPI, uids: Sequence[str]
) -> list[tuple[m.VirtualSubaccountAPIKey, ...]]:
    return await _per_uid(api.list_keys, uids)


async def list_broker_keys(
    client: Client, uids: Sequence[str]
) -> list[tuple[m.BrokerSubaccountAPIKey, ...]]:
    return await _per_uid(client.list_broker_subaccount_api_keys, uids)


async def read_live_state(api: AccountAPI, account: AccountSpec) -> LiveState:
    """
    Read what exists for ``account``: sub-accounts, their keys, broker keys.

    A read that fails on the server's side or loses its answer is tried again a few
    times before its error is raised.
    """
    client = api.client
    subaccounts = await list_subaccounts(api)
    planned_labels = {sub.label for sub in account.subaccounts}
    uids = [
        sub.subaccount_uid
        for sub in subaccounts
        if sub.label in planned_labels and sub.status is not m.SubaccountStatus.DELETED
    ]
    broker_uids = sorted({spec.sub_uid for spec in account.broker_keys})
    return LiveState(
        subaccounts=subaccounts,
        keys=dict(zip(uids, await list_keys(api, uids), strict=True)),
        broker_keys=dict(
            zip(broker_uids, await list_broker_keys(client, broker_uids), strict=True)
        ),
    )


class KnownState:
    """
    Live state as last read, plus what the current round created since.

    While every create's answer arrives, this is exactly what exists (this run is the
    only writer), so the next round can diff against it without reading again. An
    outcome that is not known marks what it may have changed as stale, and `refresh`
    reads exactly that again: the sub-account list, or one sub-account's keys.
    """

    __slots__ = (
        "broker_keys",
        "keys",
        "stale_broker_keys",
        "stale_keys",
        "stale_list",
        "subaccounts",
    )

    def __init__(self, live: LiveState) -> None:
        self.subaccounts = {sub.subaccount_uid: sub for sub in live.subaccounts}
        self.keys = {uid: list(keys) for uid, keys in live.keys.items()}
        self.broker_keys = {uid: list(keys) for uid, keys in live.broker_keys.items()}
        #: The sub-account list may lack sub-accounts that exist.
        self.stale_list = False
        #: Sub-accounts (by UID) that may have keys not listed here.
        self.stale_keys: set[str] = set()
        #: Broker sub-accounts whose keys may not have the settings listed here.
        self.stale_broker_keys: set[str] = set()

    @property
    def exact(self) -> bool:
        """Whether this is known to be what exists."""
        return not (self.stale_list or self.stale_keys or self.stale_broker_keys)

    def listed(self, subaccounts: Sequence[m.VirtualSubaccount]) -> None:
        """A fresh sub-account list replaces the old one (keys are kept)."""
        self.subaccounts = {sub.subaccount_uid: sub for sub in subaccounts}

    def add_key(self, key: m.VirtualSubaccountAPIKey) -> None:
        self.keys.setdefault(key.subaccount_uid, []).append(key)

    def modified(self, spec: BrokerKeySpec) -> None:
        """A broker key now has the settings of ``spec``."""
        keys = self.broker_keys.setdefault(spec.sub_uid, [])
        for index, key in enumerate(keys):
            if key.api_key == spec.api_key:
                keys[index] = attrs.evolve(
                    key,
                    permissions=spec.permissions,
                    perm_type=spec.perm_type,
                    ip_list=key.ip_list if spec.ip_list is None else spec.ip_list,
                    label=key.label if spec.label is None else spec.label,
                )

    async def refresh(self, api: AccountAPI, account: AccountSpec) -> None:
        """
        Read again what is stale, and only that.

        A re-read list may show planned sub-accounts whose keys were never read (an
        unknown batch that took effect): their keys are read too.
        """
        client = api.client
        if self.stale_list:
            self.listed(await list_subaccounts(api))
            planned = {sub.label for sub in account.subaccounts}
            self.stale_keys |= {
                uid
                for uid, sub in self.subaccounts.items()
                if sub.label in planned
                and sub.status is not m.SubaccountStatus.DELETED
                and uid not in self.keys
            }
            self.stale_list = False
        uids = sorted(self.stale_keys)
        for uid, keys in zip(uids, await list_keys(api, uids), strict=True):
            self.keys[uid] = list(keys)
        self.stale_keys.clear()
        broker_uids = sorted(self.stale_broker_keys)
        broker = await list_broker_keys(client, broker_uids)
        for uid, broker_keys in zip(broker_uids, broker, strict=True):
            self.broker_keys[uid] = list(broker_keys)
        self.stale_broker_keys.clear()

    def live(self) -> LiveState:
        return LiveState(
            subaccounts=tuple(self.subaccounts.values()),
            keys={uid: tuple(keys) for uid, keys in self.keys.items()},
            broker_keys={uid: tuple(keys) for uid, keys in self.broker_keys.items()},
        )
