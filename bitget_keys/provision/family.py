"""
The API family a master account's sub-accounts and keys are managed through.

A classic master uses the v2 endpoints (sub-accounts are created in batches of five,
each with its first key); a Unified Trading Account master uses v3 (``create-sub``,
then ``create-sub-api`` for each key). Apply picks the family per master: the plan's
``mode`` when it pins one, else the master's mode as Bitget tells it
(`Client.account_mode`, cached per UID, so every reader of one master asks once).

Both families show what exists in the same shapes (`m.VirtualSubaccount`,
`m.VirtualSubaccountAPIKey`; a v3 note is the label), so the diff, the report and the
orphan check are one implementation for both. Sub-accounts are matched by label (v3:
note), keys by label within their sub-account, exactly as for v2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal, Protocol

import attrs

from bitget_keys import models as m
from bitget_keys._client import Client
from bitget_keys._secret import Secret
from bitget_keys.errors import AccountInTransitionError, AccountModeError, PlanError, Problem
from bitget_keys.provision.plan import AccountSpec, KeySpec, Plan, SubaccountSpec, plan_error
from bitget_keys.provision.plan_modes import (
    PlanMode,
    mode_problems,
    unified_key,
    unified_subaccount,
)
from bitget_keys.provision.retrying import read_retrying

__all__ = [
    "AccountAPI",
    "ClassicAPI",
    "Family",
    "NewKey",
    "UnifiedAPI",
    "account_api",
    "api_of_family",
    "api_of_mode",
    "check_modes",
    "family_problems",
    "mode_of",
    "pinned_mode_detail",
]

Family = Literal["v2", "v3"]


@attrs.frozen(kw_only=True)
class NewKey:
    """A created key as either family answers it: its secret is shown only this once."""

    api_key: str
    secret_key: Secret = attrs.field(repr=False)
    permissions: tuple[m.Permission, ...] = ()
    ip_list: tuple[str, ...] = ()
    #: Whether it may write: ``read_write``/``read_only`` (v3), ``read_and_write``/``readonly``.
    perm_type: str | None = None


class AccountAPI(Protocol):
    """What apply needs of a master account, whichever family serves it."""

    family: ClassVar[Family]
    client: Client

    async def list_subaccounts(self) -> tuple[m.VirtualSubaccount, ...]:
        """Every sub-account of the master."""

    async def list_keys(self, subaccount_uid: str) -> tuple[m.VirtualSubaccountAPIKey, ...]:
        """Every key of one sub-account (never with secrets)."""

    async def create_key(self, subaccount_uid: str, key: KeySpec, passphrase: Secret) -> NewKey:
        """Create one key of a sub-account that exists."""


@attrs.define
class ClassicAPI:
    """A classic master: the v2 user endpoints."""

    family: ClassVar[Family] = "v2"
    client: Client

    async def list_subaccounts(self) -> tuple[m.VirtualSubaccount, ...]:
        return tuple([sub async for sub in self.client.iter_virtual_subaccounts(page_size=100)])

    async def list_keys(self, subaccount_uid: str) -> tuple[m.VirtualSubaccountAPIKey, ...]:
        return await self.client.list_virtual_subaccount_api_keys(subaccount_uid)

    async def create_key(self, subaccount_uid: str, key: KeySpec, passphrase: Secret) -> NewKey:
        created = await self.client.create_virtual_subaccount_api_key(
            m.CreateVirtualSubaccountAPIKeyRequest(
                subaccount_uid=subaccount_uid,
                passphrase=passphrase,
                label=key.label,
                ip_list=key.ip_list,
                permissions=key.permissions,
                perm_type=key.perm_type,
            )
        )
        return NewKey(
            api_key=created.api_key,
            secret_key=created.secret_key,
            permissions=created.permissions,
            ip_list=created.ip_list,
            perm_type=None if key.perm_type is None else str(key.perm_type),
        )


def _subaccount_view(sub: m.UTASubaccount) -> m.VirtualSubaccount:
    status = sub.status
    if status is not None and status.frozen:
        status = m.SubaccountStatus.FREEZE
    return m.VirtualSubaccount(
        subaccount_uid=sub.sub_uid,
        subaccount_name=sub.username,
        label=sub.note,
        status=status,
        created_time=sub.created_time,
        updated_time=sub.updated_time,
    )


@attrs.define
class UnifiedAPI:
    """A Unified Trading Account master: the v3 user endpoints."""

    family: ClassVar[Family] = "v3"
    client: Client

    async def list_subaccounts(self) -> tuple[m.VirtualSubaccount, ...]:
        return tuple([_subaccount_view(sub) async for sub in self.client.iter_uta_subaccounts()])

    async def list_keys(self, subaccount_uid: str) -> tuple[m.VirtualSubaccountAPIKey, ...]:
        return tuple(
            [
                m.VirtualSubaccountAPIKey(
                    subaccount_uid=subaccount_uid,
                    api_key=key.api_key,
                    label=key.note,
                    permissions=key.permissions,
                    ip_list=key.ips,
                    perm_type=None if key.type is None else str(key.type),
                    created_time=key.created_ms,
                )
                async for key in self.client.iter_uta_subaccount_api_keys(subaccount_uid)
            ]
        )

    async def create_subaccount(self, sub: SubaccountSpec) -> m.CreatedUTASubaccount:
        """Create one sub-account (no key: its keys follow, one create-sub-api each)."""
        username, note = unified_subaccount(sub)
        return await self.client.create_uta_subaccount(
            m.CreateUTASubaccountRequest(username=username, note=note)
        )

    async def create_key(self, subaccount_uid: str, key: KeySpec, passphrase: Secret) -> NewKey:
        settings = unified_key(key)
        created = await self.client.create_uta_subaccount_api_key(
            m.CreateUTASubaccountAPIKeyRequest(
                sub_uid=subaccount_uid,
                note=settings.note,
                type=settings.type,
                passphrase=passphrase,
                permissions=settings.permissions,
                ips=settings.ips,
            )
        )
        # An answer that leaves the rights out still made the key that was asked for.
        return NewKey(
            api_key=created.api_key,
            secret_key=created.secret,
            permissions=created.permissions or settings.permissions,
            ip_list=created.ips or settings.ips,
            perm_type=str(created.type or settings.type),
        )


def api_of_family(client: Client, family: Family) -> ClassicAPI | UnifiedAPI:
    """The family's API over ``client``."""
    return ClassicAPI(client) if family == "v2" else UnifiedAPI(client)


def api_of_mode(client: Client, mode: m.AccountMode) -> ClassicAPI | UnifiedAPI:
    """The family serving ``mode``; a transitional mode serves none yet."""
    if mode.family == "v2":
        return api_of_family(client, "v2")
    if mode.family == "v3":
        return api_of_family(client, "v3")
    raise AccountInTransitionError(str(mode))


async def mode_of(client: Client, account: AccountSpec) -> m.AccountMode:
    """The plan's pinned mode, else the master's as Bitget tells it (asked once per UID)."""
    if account.mode is PlanMode.CLASSIC:
        return m.AccountMode.CLASSIC
    if account.mode is PlanMode.UNIFIED:
        return m.AccountMode.UNIFIED
    return await read_retrying(client.account_mode)


async def account_api(client: Client, account: AccountSpec) -> ClassicAPI | UnifiedAPI:
    """The family that manages ``account``'s sub-accounts and keys."""
    return api_of_mode(client, await mode_of(client, account))


def pinned_mode_detail(account: AccountSpec, exc: BaseException) -> str | None:
    """
    What to tell of a master that refuses the family its plan pins; ``None`` otherwise.

    The refusal (40084/40085) carried nothing out and no create follows it: the
    plan's ``mode`` is what is wrong, not the library's choice, so the message says so.
    """
    if account.mode is PlanMode.AUTO or not isinstance(exc, AccountModeError) or not exc.mode:
        return None
    return (
        f'the plan pins mode = "{account.mode.value}" for {account.name}, but this master '
        f"is {exc.mode} (Bitget: {exc.code}, {exc.message}); nothing was created or changed "
        f'under it: pin mode = "{exc.mode}" or leave mode out'
    )


def family_problems(account: AccountSpec, family: Family) -> list[Problem]:
    """
    Every rule of ``family``'s mode that ``account`` breaks, located in the plan.

    An account whose mode the plan pins was checked against that mode when the plan was
    read, and an ``auto`` one against the classic rules; one whose master turns out
    unified is checked against the unified rules here.
    """
    problems: list[Problem] = []
    if family == "v3" and account.copy_api_key:
        problems.append(
            Problem(
                f"{account.where}.copy_api_key",
                "Bitget has no copy-trading key endpoint for unified accounts (create-copy-api "
                'is v2 only); remove it, or pin mode = "classic" for a classic master',
            )
        )
    if family == "v3" and account.broker_keys:
        problems.append(
            Problem(
                f"{account.where}.broker_keys",
                "plans do not manage a unified broker's keys yet; use "
                "Client.modify_uta_broker_subaccount_api_key",
            )
        )
    if account.mode is PlanMode.AUTO and family == "v3":
        # An auto account was read by the classic rules; a unified master has its own.
        problems += mode_problems(account, PlanMode.UNIFIED, account.where)
    return problems


def check_modes(plan: Plan, families: Sequence[Family | None]) -> None:
    """
    Check every account against its master's mode before anything is sent.

    Raises:
        PlanError: every problem of every account, located in the plan file when known.
    """
    problems = [
        problem
        for account, family in zip(plan.accounts, families, strict=True)
        if family is not None
        for problem in family_problems(account, family)
    ]
    if problems:
        if plan.source is not None:
            raise plan_error(problems, plan.source)
        raise PlanError(tuple(problems), "plan")
