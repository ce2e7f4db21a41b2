"""
``bitget-keys import``: bring the sub-accounts and keys that exist at Bitget, but that
the plan does not name, into the plan, the vault and the state file.

Every master the plan names is read whole (every sub-account, every key), through the
family its mode calls for. What the plan does not name becomes plan entries that
reproduce it (`bitget_keys.lifecycle.adopt`): printed as TOML, or with ``--out FILE``
added to the plan's text (`bitget_keys.lifecycle.plan_text`). Each adopted key's
record goes to the vault without a secret (made elsewhere, its secret was never shown
here), to the state file's journal and to the audit log (operation ``import``);
``bitget-keys rotate`` replaces such a key with one whose secret the vault holds. A
second import adds nothing the first added.

The vault and the state file are locked for the run, as apply locks them.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bitget_keys._escape import escape
from bitget_keys.cli._common import holding_run_locks, make_clients, vault_passphrase
from bitget_keys.cli._vault_key import is_new_vault
from bitget_keys.cli.audit import audit_log_for
from bitget_keys.cli.exits import AccountError, UsageError
from bitget_keys.errors import BitgetKeysError, PlanError, VaultDamagedError
from bitget_keys.lifecycle.adopt import Adoption, adopt
from bitget_keys.lifecycle.first_seen import FirstSeen
from bitget_keys.lifecycle.plan_text import entries_text, insert_entries, write_plan_text
from bitget_keys.lifecycle.survey import MasterHoldings, survey_plan
from bitget_keys.provision.audit_log import AuditLog
from bitget_keys.provision.family import Family, check_modes
from bitget_keys.provision.files import refuse_directory
from bitget_keys.provision.journal import Journal, Outcome
from bitget_keys.provision.plan import Plan, load_plan, loads_plan
from bitget_keys.provision.vault import SecretsVault

#: The journal's kind for an adopted key; its target is ``import:SUB-LABEL/KEY``.
IMPORT_KIND = "import"

ROTATE_HINT = (
    "their secrets are not held (they were made elsewhere): `bitget-keys rotate` replaces "
    "each with a key whose secret the vault holds"
)


def _families(plan: Plan, holdings: Sequence[MasterHoldings]) -> list[Family | None]:
    by_master = {master.account.master: master.family for master in holdings}
    return [by_master.get(account.master) for account in plan.accounts]


def _raise_unread(holdings: Sequence[MasterHoldings]) -> None:
    """Name every master that could not be read on stderr; raise the first one's error."""
    failed = [master for master in holdings if master.error is not None]
    for master in failed:
        print(escape(f"{master.account.name}: {master.stage}: {master.error}"), file=sys.stderr)
    if failed and failed[0].error is not None:
        error = failed[0].error
        if isinstance(error, BitgetKeysError) and not isinstance(error, PlanError):
            raise AccountError(failed[0].account.name, error)
        raise error


async def read_holdings(plan: Plan, base_url: str | None) -> Sequence[MasterHoldings]:
    """Every master's holdings (see `survey_plan`); a master that can't be read stops here."""
    clients, client_for = make_clients(base_url)
    try:
        holdings = await survey_plan(plan, client_for)
    finally:
        for client in clients.values():
            await client.aclose()
    _raise_unread(holdings)
    check_modes(plan, _families(plan, holdings))
    return holdings


def _open_vault(args: argparse.Namespace) -> SecretsVault:
    new = is_new_vault(args.vault, create=args.create_vault, ask=True)
    key = vault_passphrase(args.vault, new=new, key_file=args.vault_key_file)
    vault = SecretsVault.open(args.vault, key)
    if not new:
        try:
            vault.require_intact()
        except VaultDamagedError as exc:
            detail = f"{exc.detail}; import never appends to a damaged vault: repair it first"
            raise VaultDamagedError(str(args.vault), detail) from exc
    return vault


def _remember(
    adoption: Adoption, vault: SecretsVault, state: Path, audit: AuditLog, written: Path | None
) -> None:
    """
    The vault records first (a key's record is what matters most), then the state, then
    one audit entry per adopted key, saying what this run did with it: an import that
    prints the entries and one that writes them to the plan are two operations.
    """
    for record in adoption.records:
        vault.append(record)
    targets = [(key.account.name, key.address, key.key.live.api_key) for key in adoption.keys]
    targets += [
        (sub.account.name, f"{sub.label}/{key.label}", key.live.api_key)
        for sub in adoption.subaccounts
        for key in sub.keys
    ]
    done = "plan entries printed" if written is None else f"added to the plan {written}"
    for account, address, api_key in targets:
        audit.record(
            "import",
            account=account,
            target=address,
            outcome="ok",
            detail=f"API key {api_key}, secret not held: {done}",
        )
    with Journal(state) as journal:
        for account, address, api_key in targets:
            entry = journal.begin(account, IMPORT_KIND, f"import:{address}")
            journal.settle(entry, Outcome.DONE, api_key=api_key, detail="secret not held")
    with FirstSeen(state) as seen:
        for account in sorted({account for account, _, _ in targets}):
            seen.sighted(account, [key for name, _, key in targets if name == account])


def _document(adoption: Adoption, written: Path | None) -> dict[str, Any]:
    """``import --json``'s document."""
    return {
        "format_version": 1,
        "subaccounts": [
            {
                "account": sub.account.name,
                "name": sub.name,
                "label": sub.label,
                "uid": sub.uid,
                "masked_name": sub.masked_name,
                "keys": [key.table() | {"api_key": key.live.api_key} for key in sub.keys],
            }
            for sub in adoption.subaccounts
        ],
        "keys": [
            {
                "account": key.account.name,
                "subaccount": key.subaccount.label,
                "subaccount_index": key.subaccount_index,
                **key.key.table(),
                "api_key": key.key.live.api_key,
            }
            for key in adoption.keys
        ],
        "recorded": [record.api_key for record in adoption.records],
        "notes": [
            {"account": n.account, "address": n.address, "detail": n.detail} for n in adoption.notes
        ],
        "written": None if written is None else str(written),
        "toml": entries_text(adoption),
    }


def _summary(adoption: Adoption, written: Path | None) -> str:
    keys = len(adoption.keys) + sum(len(sub.keys) for sub in adoption.subaccounts)
    if adoption.empty:
        return "bitget-keys: nothing to import: the plan names everything its masters hold"
    where = f"added to {written}" if written is not None else "printed above"
    masked = sum(sub.masked_name is not None for sub in adoption.subaccounts)
    stand_ins = (
        f"; {masked} sub-account name(s) are stand-ins for names Bitget masks: replace them"
        if masked
        else ""
    )
    return (
        f"bitget-keys: imported {len(adoption.subaccounts)} sub-account(s) and {keys} key(s), "
        f"{where}; {len(adoption.records)} recorded in the vault; {ROTATE_HINT}{stand_ins}"
    )


def _load(path: Path) -> tuple[Plan, str, dict[str, Any]]:
    if str(path) == "-":
        msg = "import reads the plan from its file (to add entries to it), not from stdin"
        raise UsageError(msg)
    plan = load_plan(path)
    text = path.read_text(encoding="utf-8")
    return plan, text, tomllib.loads(text)


async def run(args: argparse.Namespace) -> int:
    """Adopt what the plan's masters hold and the plan does not name."""
    plan, text, data = _load(args.plan)
    for path, what in ((args.vault, "vault"), (args.state, "state file")):
        refuse_directory(path, what)
    # Opened first: a damaged log stops import before anything is read or written.
    audit = audit_log_for(args)
    holdings = await read_holdings(plan, args.base_url)
    async with holding_run_locks(args, f"bitget-keys import {args.plan}"):
        vault = _open_vault(args)
        defaults = data.get("defaults", {})
        vault_keys = {record.api_key for record in vault.records()}
        adoption = adopt(holdings, defaults=defaults, vault_keys=vault_keys)
        updated = None
        if args.out is not None and not adoption.empty:
            updated = insert_entries(text, adoption, str(args.plan))
            # What is written must load, and meet each master's rules, as the plan did.
            check_modes(loads_plan(updated, source=str(args.out)), _families(plan, holdings))
        _remember(adoption, vault, args.state, audit, args.out if updated is not None else None)
        if updated is not None:
            write_plan_text(args.out, updated, original=args.plan, was=text)
    written = args.out if updated is not None else None
    if args.json:
        sys.stdout.write(
            orjson.dumps(_document(adoption, written), option=orjson.OPT_INDENT_2).decode()
        )
        sys.stdout.write("\n")
    else:
        if written is None and not adoption.empty:
            sys.stdout.write(entries_text(adoption))
        for note in adoption.notes:
            print(escape(f"bitget-keys: note: {note}"), file=sys.stderr)
        print(escape(_summary(adoption, written)), file=sys.stderr)
    return 0
