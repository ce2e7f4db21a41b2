"""
What apply would do for each master account: the one preview `plan`, apply's
confirmation and the live display's totals are all drawn from.

`preview_of` is pure: from a plan account and its diff it lists the changes, each with
the line that shows it and the number of results it will produce (a new sub-account
reports itself and each of its keys; every other change one result). `preview_account`
reads live state first, as `plan` does; it sends nothing that changes anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

import attrs

from bitget_keys._client import Client
from bitget_keys.errors import AccountInTransitionError, APIError, TransportError
from bitget_keys.provision.diff import AccountDiff, LiveState, diff_account
from bitget_keys.provision.family import Family, account_api
from bitget_keys.provision.live import read_live_state
from bitget_keys.provision.plan import AccountSpec, Plan
from bitget_keys.provision.vault import SecretsVault

__all__ = [
    "AccountPreview",
    "AccountState",
    "Change",
    "copy_key_accounts",
    "plan_work",
    "preview_account",
    "preview_of",
    "read_account_state",
]


@attrs.frozen
class Change:
    """One thing apply would do."""

    #: As the preview shows it, such as ``create key alpha/read``.
    text: str
    #: How many item results apply will report for it.
    results: int = 1


@attrs.frozen
class AccountPreview:
    """What apply would do for one master account."""

    account: str
    changes: tuple[Change, ...]
    #: Whether anything would be created or changed (a conflict changes nothing).
    changes_anything: bool

    @property
    def work(self) -> int:
        """How many item results of work apply will report for this account."""
        return sum(change.results for change in self.changes)

    def lines(self) -> list[str]:
        """The preview's lines, ``up to date`` when there is nothing to show."""
        return [change.text for change in self.changes] or ["up to date"]


def preview_of(diff: AccountDiff, *, copy_key: bool = False) -> AccountPreview:
    """
    What apply would do for the master account of ``diff``.

    ``copy_key``: whether its copy key would be created (planned, and not in the vault).
    """
    changes = [
        Change(
            f"create sub-account {sub.label} ({sub.name}), {len(sub.keys)} key(s)",
            1 + len(sub.keys),
        )
        for sub in diff.new_subaccounts
    ]
    changes += [
        Change(f"create key {missing.subaccount.label}/{missing.key.label}")
        for missing in diff.new_keys
    ]
    changes += [
        Change(f"modify broker key {spec.sub_uid}/{spec.api_key}") for spec in diff.broker_changes
    ]
    if copy_key:
        changes.append(Change("create copy key"))
    changes += [Change(f"conflict: {conflict}") for conflict in diff.conflicts]
    return AccountPreview(
        account=diff.account, changes=tuple(changes), changes_anything=not diff.empty or copy_key
    )


def copy_key_accounts(vault: SecretsVault | None) -> frozenset[str]:
    """The plan accounts whose copy key is in ``vault``."""
    if vault is None:
        return frozenset()
    return frozenset(record.account for record in vault.records() if record.kind == "copy_key")


async def preview_account(
    client: Client, account: AccountSpec, *, vaulted_copy_keys: Collection[str] | None = None
) -> AccountPreview:
    """
    Read ``account``'s live state and preview it.

    Given the accounts whose copy keys are in the vault, a planned copy key not among
    them is previewed too (apply would create it); without, copy keys are left out.
    """
    live = await read_live_state(await account_api(client, account), account)
    copy_key = (
        vaulted_copy_keys is not None
        and account.copy_api_key
        and account.name not in vaulted_copy_keys
    )
    return preview_of(diff_account(account, live), copy_key=copy_key)


async def plan_work(
    plan: Plan, clients: Callable[[AccountSpec], Client], vault: SecretsVault
) -> dict[str, int]:
    """
    Each account's planned work, from its live state (read-only, like ``plan``).

    An account whose state can't be read counts 0 here; apply reports why.
    """
    copy_keys = copy_key_accounts(vault)

    async def one(account: AccountSpec) -> int:
        try:
            preview = await preview_account(clients(account), account, vaulted_copy_keys=copy_keys)
        except (APIError, TransportError, AccountInTransitionError):
            return 0
        return preview.work

    totals = await asyncio.gather(*(one(account) for account in plan.accounts))
    return {account.name: total for account, total in zip(plan.accounts, totals, strict=True)}


@attrs.frozen
class AccountState:
    """What one plan account's master has, and the family serving it; or why not known."""

    family: Family | None = None
    live: LiveState = attrs.field(factory=LiveState)
    #: The UID of the master the credentials belong to ("" while not known).
    master_uid: str = ""
    #: The error that stopped the read, and what it was doing (``None``: read).
    error: BaseException | None = attrs.field(default=None, eq=False)
    stage: str = ""


async def read_account_state(client: Client, account: AccountSpec) -> AccountState:
    """
    Tell the master's mode, then read its live state: one read of each list.

    Errors are returned, not raised, so that reads of every master run at once (each
    paced by its UID's lanes) and each failure can be named with its account.
    """
    try:
        api = await account_api(client, account)
        master_uid = await client.uid()
    except Exception as exc:  # noqa: BLE001 - returned, named with its account by the caller
        return AccountState(error=exc, stage="its mode could not be told")
    try:
        live = await read_live_state(api, account)
    except Exception as exc:  # noqa: BLE001 - as above
        return AccountState(family=api.family, error=exc, stage="its live state could not be read")
    return AccountState(family=api.family, live=live, master_uid=master_uid)
