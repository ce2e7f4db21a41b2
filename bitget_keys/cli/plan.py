"""``bitget-keys plan``: what apply would create or change; sends no change."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Collection
from typing import Any

from bitget_keys._escape import escape
from bitget_keys.cli._common import make_clients, read_plan
from bitget_keys.cli.exits import AccountError
from bitget_keys.errors import AccountModeError, BitgetKeysError, PlanError, Problem
from bitget_keys.provision.family import account_api, check_modes, pinned_mode_detail
from bitget_keys.provision.plan import AccountSpec, Plan, plan_error
from bitget_keys.provision.preview import copy_key_accounts, preview_account
from bitget_keys.provision.vault import (
    SecretsVault,
)


async def show_changes(
    plan: Plan, client_for: Any, vaulted_copy_keys: Collection[str] | None = None
) -> bool:
    """
    Print what apply would create or change; return whether there is anything.

    Given the accounts whose copy keys are in the vault, a planned copy key not among
    them is shown too (apply would create it).
    """
    # Every master's mode first (asked once per UID, then cached): a rule of a unified
    # master's mode that the plan breaks is shown, at its line, before any preview.
    found = await asyncio.gather(
        *(account_api(client_for(account), account) for account in plan.accounts),
        return_exceptions=True,
    )
    failed = [
        (account, error)
        for account, error in zip(plan.accounts, found, strict=True)
        if isinstance(error, BaseException)
    ]
    for account, error in failed:
        print(escape(f"{account.name}: its mode could not be told: {error}"), file=sys.stderr)
    if failed:
        raise _named(*failed[0])
    check_modes(plan, [api.family for api in found if not isinstance(api, BaseException)])
    changes = False
    # A master that refuses the mode its account pins is a mistake of the plan: every
    # such account is named at its ``mode`` once the others are shown.
    pinned: list[Problem] = []
    for account in plan.accounts:
        try:
            preview = await preview_account(
                client_for(account), account, vaulted_copy_keys=vaulted_copy_keys
            )
        except AccountModeError as exc:
            detail = pinned_mode_detail(account, exc)
            if detail is None:
                raise _named(account, exc)  # noqa: B904 - the error is its cause
            pinned.append(Problem(f"{account.where}.mode", detail))
            continue
        except BitgetKeysError as exc:
            raise _named(account, exc)  # noqa: B904 - the error is its cause
        for line in preview.lines():
            # Names and labels come from the plan, conflicts quote Bitget: escaped, so
            # that none can forge a line of this preview.
            print(escape(f"{account.name}: {line}"))
        changes = changes or preview.changes_anything
    if pinned:
        raise plan_error(pinned, plan.source) if plan.source else PlanError(tuple(pinned), "plan")
    return changes


def _named(account: AccountSpec, error: BaseException) -> BaseException:
    """
    What to raise for an account's failed request: Bitget refusing its credentials or
    being unreachable names the account (a mistake of the plan names its own lines).
    """
    if isinstance(error, BitgetKeysError) and not isinstance(error, PlanError):
        return AccountError(account.name, error)
    return error


async def run(args: argparse.Namespace) -> int:
    """Print what apply would create or change; send nothing that changes anything."""
    plan = read_plan(args.plan)
    clients, client_for = make_clients(args.base_url)
    try:
        await show_changes(plan, client_for)
    finally:
        for client in clients.values():
            await client.aclose()
    return 0


async def confirm_changes(plan: Plan, client_for: Any, vault: SecretsVault | None) -> bool:
    """Show what apply would do and ask for a yes; nothing to do needs no yes."""
    if not await show_changes(plan, client_for, copy_key_accounts(vault)):
        return True
    print("Create and change the above? [y/N] ", end="", file=sys.stderr, flush=True)
    # The event loop's own SIGINT handling only cancels its main task, which a blocking
    # read of the terminal never notices: while asking, Ctrl-C interrupts the read.
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread handles signals (a program running the command line in
        # a thread keeps its own).
        return sys.stdin.readline().strip().lower() in {"y", "yes"}
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        answer = sys.stdin.readline()
    finally:
        signal.signal(signal.SIGINT, previous)
    return answer.strip().lower() in {"y", "yes"}
