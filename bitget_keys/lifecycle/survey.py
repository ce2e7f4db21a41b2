"""
Reading everything a plan's masters hold: every sub-account and every key.

`plan` and `apply` read only the sub-accounts the plan names; ``import`` and
``inventory`` need the rest too. Each master is read through the family its mode
calls for (the plan's pinned ``mode``, else Bitget's answer, asked once per UID), as
plan reads it, and every master at once, each paced by its own UID's lanes. Reads
that fail on Bitget's side or lose their answer are tried again (`read_retrying`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

import attrs

from bitget_keys import models as m
from bitget_keys._client import Client
from bitget_keys.provision.family import Family, account_api
from bitget_keys.provision.live import list_keys, list_subaccounts
from bitget_keys.provision.plan import AccountSpec, Plan

__all__ = ["MasterHoldings", "survey_master", "survey_plan"]


@attrs.frozen(kw_only=True)
class MasterHoldings:
    """What one master holds, or why it could not be read."""

    #: The plan's accounts under this master (several may share one), in plan order;
    #: the first one's credentials and mode read it.
    accounts: tuple[AccountSpec, ...]
    family: Family | None = None
    #: The master's UID ("" while not known).
    master_uid: str = ""
    #: Every sub-account but deleted ones, in the order Bitget lists them.
    subaccounts: tuple[m.VirtualSubaccount, ...] = ()
    #: Every key of each sub-account, by sub-account UID.
    keys: Mapping[str, tuple[m.VirtualSubaccountAPIKey, ...]] = attrs.field(factory=dict)
    #: The error that stopped the read (``None``: read), and what it was doing.
    error: BaseException | None = attrs.field(default=None, eq=False)
    stage: str = ""

    @property
    def account(self) -> AccountSpec:
        """The plan account that names the master first (what output names it by)."""
        return self.accounts[0]


async def survey_master(client: Client, accounts: Sequence[AccountSpec]) -> MasterHoldings:
    """
    Every sub-account and key of the master of ``accounts`` (one master's plan accounts,
    read with the first's credentials). Errors are returned, not raised, so every
    master's read runs to its end and each failure is named with its account.
    """
    account = accounts[0]
    accounts = tuple(accounts)
    try:
        api = await account_api(client, account)
        master_uid = await client.uid()
    except Exception as exc:  # noqa: BLE001 - returned, named with its account by the caller
        return MasterHoldings(accounts=accounts, error=exc, stage="its mode could not be told")
    try:
        listed = await list_subaccounts(api)
        subaccounts = tuple(s for s in listed if s.status is not m.SubaccountStatus.DELETED)
        uids = [sub.subaccount_uid for sub in subaccounts]
        keys = dict(zip(uids, await list_keys(api, uids), strict=True))
    except Exception as exc:  # noqa: BLE001 - as above
        return MasterHoldings(
            accounts=accounts,
            family=api.family,
            master_uid=master_uid,
            error=exc,
            stage="its sub-accounts and keys could not be read",
        )
    return MasterHoldings(
        accounts=accounts,
        family=api.family,
        master_uid=master_uid,
        subaccounts=subaccounts,
        keys=keys,
    )


async def survey_plan(
    plan: Plan, client_for: Callable[[AccountSpec], Client]
) -> Sequence[MasterHoldings]:
    """
    Each master's `MasterHoldings`, read at once, in the order the plan first names
    them: a master several accounts name is read once.
    """
    masters: dict[str, list[AccountSpec]] = {}
    for account in plan.accounts:
        masters.setdefault(account.master, []).append(account)
    return await asyncio.gather(
        *(survey_master(client_for(group[0]), group) for group in masters.values())
    )
