"""
``bitget-keys plan``: what apply would create, change or revoke; sends no change.

Every master is read at once (each paced by its UID's lanes), one read of live state
each, and the changes are printed in plan order as Terraform prints resources, ending
with ``Plan: N to create, M to change, K to revoke.`` ``--json`` prints one JSON
document instead, ``--out FILE`` saves the reviewed plan for ``apply FILE``, and
``--detailed-exitcode`` exits 2 when there are changes (0 none, 1 an error): keys that
drifted from the plan, sub-accounts to freeze and revokes count as changes, so a
scheduled ``plan --detailed-exitcode`` is a drift check. ``--prune`` also shows what
``apply --prune`` would revoke because the plan no longer names it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import sys
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Final

import attrs
import orjson

from bitget_keys._client.config import resolve_base_url
from bitget_keys._escape import escape
from bitget_keys.cli._common import make_clients, open_vault, plan_from_stdin
from bitget_keys.cli.exits import AccountError, ExitCode
from bitget_keys.errors import (
    AccountModeError,
    BitgetKeysError,
    ConfigurationError,
    PlanError,
    Problem,
)
from bitget_keys.provision.apply import drift_context
from bitget_keys.provision.diff import LiveState
from bitget_keys.provision.family import Family, api_of_family, check_modes, pinned_mode_detail
from bitget_keys.provision.plan import AccountSpec, Plan, load_plan, loads_plan, plan_error
from bitget_keys.provision.plan_changes import AccountChanges, Summary, account_changes, summarize
from bitget_keys.provision.plan_render import Line, render, summary_lines
from bitget_keys.provision.preview import AccountState, copy_key_accounts, read_account_state
from bitget_keys.provision.revoke_flows import HeldKeys, reads_unplanned
from bitget_keys.provision.saved_plan import (
    SavedPlan,
    changes_json,
    snapshot,
    stale,
    write_saved_plan,
)
from bitget_keys.provision.vault import VAULT_KEY_ENV, SecretsVault

#: Where ``plan`` looks for the vault when ``--vault`` is not given (apply's default).
DEFAULT_VAULT: Final = Path("bitget-keys.vault")


@attrs.frozen
class Approval:
    """
    Whether apply may go on, and the live state it may start from: the reads made to
    decide, when nothing happened between them and the go (no question was asked).
    """

    approved: bool
    live: dict[str, LiveState] = attrs.field(factory=dict)


@attrs.frozen
class Review:
    """What apply would do for a plan, and the live state it was computed from."""

    accounts: tuple[AccountChanges, ...]
    #: Each account's `snapshot` of live state, by account name.
    live: dict[str, Any]
    #: Accounts pinned to a mode their master refuses: the plan's mistakes, raised
    #: once the other accounts are shown.
    pinned: tuple[Problem, ...] = ()
    #: Each account's live state as read, by account name (what apply can start from).
    states: dict[str, LiveState] = attrs.field(factory=dict)

    @property
    def summary(self) -> Summary:
        return summarize(self.accounts)

    def changes(self) -> list[dict[str, Any]]:
        return changes_json(self.accounts)


def _vault_view(
    vault: SecretsVault | None,
) -> tuple[frozenset[str], frozenset[str] | None]:
    """The accounts whose copy keys the vault holds, and the API keys it holds."""
    if vault is None:
        return frozenset(), None
    return copy_key_accounts(vault), frozenset(record.api_key for record in vault.records())


async def _state_of(client: Any, account: AccountSpec, *, prune: bool) -> AccountState:
    """`read_account_state`; with ``prune``, the keys of unplanned sub-accounts too."""
    state = await read_account_state(client, account)
    if not prune or state.family is None or state.error is not None:
        return state
    try:
        live = await reads_unplanned(api_of_family(client, state.family), state.live)
    except Exception as exc:  # noqa: BLE001 - named with its account, as read_account_state's
        return attrs.evolve(state, error=exc, stage="its sub-accounts' keys could not be read")
    return attrs.evolve(state, live=live)


async def review_plan(
    plan: Plan,
    client_for: Any,
    *,
    vaulted_copy_keys: Collection[str] | None = None,
    vault_keys: Collection[str] | None = None,
    held: HeldKeys | None = None,
    prune: bool = False,
) -> Review:
    """
    Read every master's live state at once and compute what apply would do.

    Given the accounts whose copy keys are in the vault, a planned copy key not among
    them is a create (apply would make it); given the vault's API keys, live keys of the
    plan without their secret there are orphans. ``held``: the vault's keys, which tell
    the planned key among several with a label; ``prune``: what the plan no longer
    names is revoked too.

    Raises:
        PlanError: the plan breaks a rule of a master's mode.
        Exception: a master's mode or live state could not be read (named on stderr).
    """
    states: Sequence[AccountState] = await asyncio.gather(
        *(_state_of(client_for(account), account, prune=prune) for account in plan.accounts)
    )
    held = held or HeldKeys()
    # A master whose mode can't be told stops the plan before anything is shown.
    untold = [(a, s) for a, s in zip(plan.accounts, states, strict=True) if s.family is None]
    for account, state in untold:
        print(escape(f"{account.name}: {state.stage}: {state.error}"), file=sys.stderr)
    if untold and untold[0][1].error is not None:
        raise _named(untold[0][0], untold[0][1].error)
    families: list[Family | None] = [state.family for state in states]
    check_modes(plan, families)
    accounts: list[AccountChanges] = []
    live: dict[str, Any] = {}
    read: dict[str, LiveState] = {}
    pinned: list[Problem] = []
    for account, state in zip(plan.accounts, states, strict=True):
        if state.error is not None:
            # A master that refuses the mode its account pins is a mistake of the plan:
            # every such account is named at its ``mode`` once the others are shown.
            detail = pinned_mode_detail(account, state.error)
            if isinstance(state.error, AccountModeError) and detail is not None:
                pinned.append(Problem(f"{account.where}.mode", detail))
                continue
            print(escape(f"{account.name}: {state.stage}: {state.error}"), file=sys.stderr)
            raise _named(account, state.error)
        if state.family is None:  # pragma: no cover - raised above
            continue
        copy_key = (
            vaulted_copy_keys is not None
            and account.copy_api_key
            and account.name not in vaulted_copy_keys
        )
        context = drift_context(plan, account, held, family=state.family, prune=prune)
        accounts.append(
            account_changes(
                account,
                state.family,
                state.live,
                copy_key=copy_key,
                vault_keys=vault_keys,
                context=context,
            )
        )
        live[account.name] = snapshot(state.family, state.live, state.master_uid)
        read[account.name] = state.live
    return Review(tuple(accounts), live, tuple(pinned), read)


def _colour() -> bool:
    """Colour only on a terminal, and not while ``NO_COLOR`` is set to a non-empty value."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def print_lines(lines: Sequence[Line]) -> None:
    """Print the plan's (already escaped) lines, coloured on a terminal."""
    if not _colour():
        for line in lines:
            print(line.text)
        return
    from rich.console import Console  # noqa: PLC0415 - only a terminal needs it
    from rich.text import Text  # noqa: PLC0415

    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    for line in lines:
        console.print(Text(line.text, style=line.style))


def _raise_pinned(plan: Plan, review: Review) -> None:
    if review.pinned:
        if plan.source:
            raise plan_error(review.pinned, plan.source)
        raise PlanError(review.pinned, "plan")


async def show_changes(
    plan: Plan,
    client_for: Any,
    vaulted_copy_keys: Collection[str] | None = None,
    *,
    vault_keys: Collection[str] | None = None,
) -> bool:
    """
    Print what apply would create, change or revoke; return whether it would change
    anything (see `review_plan`).
    """
    review = await show_review(plan, client_for, vaulted_copy_keys, vault_keys=vault_keys)
    return review.summary.changes


async def show_review(
    plan: Plan,
    client_for: Any,
    vaulted_copy_keys: Collection[str] | None = None,
    *,
    vault_keys: Collection[str] | None = None,
    held: HeldKeys | None = None,
    prune: bool = False,
) -> Review:
    """Print what apply would create, change or revoke, and return the review."""
    review = await review_plan(
        plan,
        client_for,
        vaulted_copy_keys=vaulted_copy_keys,
        vault_keys=vault_keys,
        held=held,
        prune=prune,
    )
    print_lines(render(review.accounts))
    _raise_pinned(plan, review)
    print_lines([Line(""), *summary_lines(review.summary)])
    return review


def _held(vault: SecretsVault | None) -> HeldKeys:
    """The vault's keys (none without a vault)."""
    return HeldKeys(None if vault is None else vault.records())


def _plan_vault(args: argparse.Namespace) -> SecretsVault | None:
    """
    The vault apply would use, to foresee copy keys and orphans: ``--vault`` (which must
    exist), else ``bitget-keys.vault`` when it exists and its key is at hand.
    """
    if args.vault is not None:
        return open_vault(args.vault)
    if not SecretsVault.exists(DEFAULT_VAULT):
        return None
    # Only an explicit --vault is worth a passphrase prompt: a vault found by default is
    # read when its key is in the environment.
    why = None if os.environ.get(VAULT_KEY_ENV) else f"{VAULT_KEY_ENV} is unset"
    try:
        vault = None if why else open_vault(DEFAULT_VAULT)
    except ConfigurationError as exc:
        why, vault = str(exc), None
    if why:
        print(
            escape(
                f"bitget-keys: the vault {DEFAULT_VAULT} was not read ({why}): orphans and "
                "copy keys it may hold are not foreseen"
            ),
            file=sys.stderr,
        )
    return vault


def _document(review: Review) -> dict[str, Any]:
    """``plan --json``'s document."""
    return {
        "format_version": 1,
        "accounts": [
            {
                "account": account.account,
                "family": account.family,
                "changes": len(account.changes),
                "notices": len(account.notices),
            }
            for account in review.accounts
        ],
        "changes": review.changes(),
        "notices": [n.to_json() for account in review.accounts for n in account.notices],
        "summary": review.summary.to_json(),
    }


def _load(args: argparse.Namespace) -> tuple[Plan, str]:
    """The plan (``-``: from stdin), and (for ``--out``) its text as read."""
    if plan_from_stdin(args.plan):
        text = sys.stdin.read()
        return loads_plan(text), text
    plan = load_plan(args.plan)
    return plan, Path(args.plan).read_text(encoding="utf-8") if args.out is not None else ""


async def _run(args: argparse.Namespace) -> int:
    plan, text = _load(args)
    vault = _plan_vault(args)
    copy_keys: frozenset[str] | None
    copy_keys, vault_keys = _vault_view(vault)
    if vault is None and args.vault is None and SecretsVault.exists(DEFAULT_VAULT):
        copy_keys = None  # unknown: the vault holds them, or not
    clients, client_for = make_clients(args.base_url)
    try:
        review = await review_plan(
            plan,
            client_for,
            vaulted_copy_keys=copy_keys,
            vault_keys=vault_keys,
            held=_held(vault),
            prune=args.prune,
        )
    finally:
        for client in clients.values():
            await client.aclose()
    if args.json:
        _raise_pinned(plan, review)
        sys.stdout.write(orjson.dumps(_document(review), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
    else:
        print_lines(render(review.accounts))
        _raise_pinned(plan, review)
        print_lines([Line(""), *summary_lines(review.summary)])
    if args.out is not None:
        write_saved_plan(
            args.out,
            plan_text=text,
            source=str(args.plan),
            base_url=resolve_base_url(args.base_url),
            live=review.live,
            accounts=review.accounts,
            summary=review.summary,
        )
        print(
            escape(
                f"bitget-keys: saved this plan to {args.out}; apply it with "
                f"`bitget-keys apply {args.out}`"
            ),
            file=sys.stderr,
        )
    if args.detailed_exitcode and review.summary.changes:
        return ExitCode.CHANGES
    return ExitCode.OK


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
    try:
        return await _run(args)
    except BitgetKeysError as exc:
        if not args.detailed_exitcode:
            raise
        # 2 means "changes" here: every error is 1, printed as the command line does.
        message = str(exc) if isinstance(exc, PlanError) else escape(f"bitget-keys: {exc}")
        print(message, file=sys.stderr)
        return ExitCode.FAILED


def _source_argument(saved: SavedPlan) -> str:
    """The plan file a saved plan was made from, as a ``plan`` argument."""
    return "PLAN" if saved.source.startswith("<") else shlex.quote(saved.source)


async def saved_plan_holds(
    saved: SavedPlan,
    plan: Plan,
    client_for: Any,
    vault: SecretsVault | None,
    base_url: str | None,
    *,
    prune: bool = False,
) -> Approval:
    """
    Whether ``saved`` may be applied: read live state again (as ``plan`` does) and
    compare it, and the changes it gives, with what was saved; anything that moved is
    named on stderr and nothing is sent. Apply starts from the state this read.
    ``prune``: the saved plan was made with ``--prune`` (its revokes say so).
    """
    target = resolve_base_url(base_url)
    if saved.base_url != target:
        moved = [f"the plan was read from {saved.base_url}, this apply goes to {target}"]
    else:
        copy_keys, vault_keys = _vault_view(vault)
        review = await review_plan(
            plan,
            client_for,
            vaulted_copy_keys=copy_keys,
            vault_keys=vault_keys,
            held=_held(vault),
            prune=prune,
        )
        _raise_pinned(plan, review)
        moved = stale(saved, review.live, review.changes())
    if moved:
        print(
            escape(
                f"bitget-keys: live state changed since the plan was saved ({saved.created}): "
                f"{'; '.join(moved)}; review it again with "
                f"`bitget-keys plan {_source_argument(saved)} --out {saved.path}`"
            ),
            file=sys.stderr,
        )
        return Approval(approved=False)
    count = sum(change["account"] in review.live for change in saved.changes)
    print(
        escape(
            f"bitget-keys: applying the saved plan {saved.path} ({saved.created}, "
            f"{count} change(s)): live state is as it was saved"
        ),
        file=sys.stderr,
    )
    return Approval(approved=True, live=review.states)


async def confirm_changes(
    plan: Plan, client_for: Any, vault: SecretsVault | None, *, prune: bool = False
) -> Approval:
    """
    Show what apply would do and ask for a yes; nothing to do needs no yes, and then
    apply starts from the state just read. After a question, which may be answered
    minutes later, apply reads live state again. Revokes are named in the question.
    """
    copy_keys, vault_keys = _vault_view(vault)
    review = await show_review(
        plan, client_for, copy_keys, vault_keys=vault_keys, held=_held(vault), prune=prune
    )
    if not review.summary.changes:
        return Approval(approved=True, live=review.states)
    question = "Create and change the above?"
    if review.summary.revoke:
        question = f"Create, change and revoke the above ({review.summary.revoke} to revoke)?"
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    # The event loop's own SIGINT handling only cancels its main task, which a blocking
    # read of the terminal never notices: while asking, Ctrl-C interrupts the read.
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread handles signals (a program running the command line in
        # a thread keeps its own).
        return Approval(approved=sys.stdin.readline().strip().lower() in {"y", "yes"})
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        answer = sys.stdin.readline()
    finally:
        signal.signal(signal.SIGINT, previous)
    return Approval(approved=answer.strip().lower() in {"y", "yes"})
