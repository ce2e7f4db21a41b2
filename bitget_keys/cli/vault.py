"""``bitget-keys vault``: read, check, repair and rekey the secrets vault."""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import attrs

from bitget_keys._escape import escape
from bitget_keys.cli._common import (
    ask_new_passphrase,
    intact_records,
    open_vault,
    repair_hint,
    stdin_is_terminal,
    take_lock,
    warn_damage,
)
from bitget_keys.cli._vault_key import read_key_file
from bitget_keys.cli.exits import ExitCode, UsageError
from bitget_keys.errors import (
    ConfigurationError,
    VaultDamagedError,
    VaultMissingError,
)
from bitget_keys.provision.files import refuse_directory
from bitget_keys.provision.lock import FileLock
from bitget_keys.provision.vault import (
    SecretsVault,
    VaultRecord,
    write_private_file,
)
from bitget_keys.provision.vault_format import VERSION
from bitget_keys.provision.vault_kdf import outdated
from bitget_keys.provision.vault_records import Stage

#: ``vault list``'s last column.
HELD = "secret held"
NOT_HELD = "secret not held"


async def run_list(args: argparse.Namespace) -> int:
    """
    List the vault's keys, without their secrets: account, kind, the key as the plan and
    apply name it (SUB-LABEL/KEY), API key, the Bitget sub-account name (``-``: none),
    the key's stage (current, pending, previous, revoked) and whether the secret is held
    (``secret not held``: an imported key, made elsewhere).
    """
    vault = open_vault(args.vault, args.vault_key_file)
    for record in intact_records(vault):
        name = record.plan_label or record.qualified_label
        fields = (
            record.account,
            record.kind,
            name,
            record.api_key,
            record.subaccount_name or "-",
            str(record.stage),
            HELD if record.held else NOT_HELD,
        )
        print("\t".join(escape(field) for field in fields))
    return 0


async def run_show(args: argparse.Namespace) -> int:
    """Show one key's record; its secrets only with ``--reveal``."""
    vault = open_vault(args.vault, args.vault_key_file)
    found = [
        record
        for record in intact_records(vault)
        if args.label in {record.qualified_label, record.plan_label, record.api_key}
        and args.account in {None, record.account}
    ]
    current = [record for record in found if record.stage is Stage.CURRENT]
    if len(found) > 1 and len(current) == 1:
        # A rotated key's name: the key in use, not the one it replaced (or revoked ones).
        found = current
    where = f"in account {args.account!r} of" if args.account else "in"
    if not found:
        print(
            f"bitget-keys: no key {args.label!r} {where} vault {args.vault} (LABEL is "
            "SUBACCOUNT/KEY, or the label of a key without a sub-account, as `vault list` "
            "shows it, or an API key)",
            file=sys.stderr,
        )
        return ExitCode.FAILED
    if len(found) > 1:
        matches = escape(", ".join(f"{r.account} {r.qualified_label} {r.api_key}" for r in found))
        print(
            f"bitget-keys: {args.label!r} matches {len(found)} keys {where} vault "
            f"{args.vault} ({matches}); give the API key"
            + ("" if args.account else ", or --account"),
            file=sys.stderr,
        )
        return ExitCode.USAGE
    record = found[0]
    data = record.to_dict(reveal=args.reveal)
    if not record.held:
        # An imported key: made elsewhere, its secret was never shown to bitget-keys.
        data["secret_key"] = None if args.json else f"({NOT_HELD}: imported)"
        if args.reveal:
            print(
                escape(
                    f"bitget-keys: the vault does not hold the secret of {record.api_key}: it "
                    "was imported (made elsewhere); `bitget-keys rotate` replaces it with a "
                    "key whose secret the vault holds"
                ),
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(data))
    else:
        width = max(len(name) for name in data) + 2
        for name, value in data.items():
            text = ", ".join(value) if isinstance(value, list) else value
            print(f"{name + ':':<{width}}{'-' if text in {None, ''} else escape(str(text))}")
    return ExitCode.FAILED if args.reveal and not record.held else 0


_EXPORT_FIELDS = tuple(field.name for field in attrs.fields(VaultRecord))


def _export_text(records: list[VaultRecord], form: str) -> str:
    rows = [record.to_dict(reveal=True) for record in records]
    if form == "json":
        return json.dumps(rows, indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: " ".join(v) if isinstance(v, list) else v for k, v in row.items()})
    return out.getvalue()


async def run_export(args: argparse.Namespace) -> int:
    """Write every record, secrets in clear, to a new 0600 file (or stdout with --reveal)."""
    output = None if args.output in {None, Path("-")} else args.output
    if output is None and not args.reveal:
        msg = (
            "export writes every secret in clear: give --output FILE (created with mode "
            "0600), or --reveal to print them to stdout"
        )
        raise UsageError(msg)
    if output is not None:
        # Checked before any secret is decrypted.
        if output.is_dir():
            msg = f"--output {output} is a directory; name the file to write"
            raise UsageError(msg)
        if not output.parent.is_dir():
            msg = f"--output {output}: the directory {output.parent} does not exist"
            raise UsageError(msg)
    if output is not None and not args.force and output.exists():
        msg = f"{output} exists; pass --force to replace it"
        raise UsageError(msg)
    vault = open_vault(args.vault, args.vault_key_file)
    scan = vault.scan()
    if not scan.clean and not args.skip_damaged:
        lines = "; ".join(str(damage) for damage in scan.damage)
        detail = (
            f"damaged: {lines}; export leaves nothing out unless asked: pass --skip-damaged "
            f"to export its {len(scan.entries)} intact record(s), or run {repair_hint(args.vault)}"
        )
        raise VaultDamagedError(str(args.vault), detail)
    warn_damage(args.vault, scan)
    records = [record for record in scan.records if record.is_key]
    text = _export_text(records, args.format)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        write_private_file(output, text.encode(), overwrite=args.force)
    except FileExistsError as exc:
        msg = f"{output} exists; pass --force to replace it"
        raise UsageError(msg) from exc
    except OSError as exc:
        msg = f"{output}: cannot write ({exc.strerror})"
        raise ConfigurationError(msg) from exc
    print(f"exported {len(records)} key(s), secrets in clear, to {output}", file=sys.stderr)
    return 0


async def run_check(args: argparse.Namespace) -> int:
    """Report each damaged line of the vault; exit 1 when there is any."""
    try:
        vault = open_vault(args.vault, args.vault_key_file)
    except VaultDamagedError as exc:
        print(f"{args.vault}: {exc.detail}")
        print(f"{args.vault}: damaged; no record can be recovered without its header")
        return ExitCode.FAILED
    scan = vault.scan()
    for damage in scan.damage:
        print(f"{args.vault}: {damage}")
    version = (
        ""
        if vault.version == VERSION
        else f" (format version {vault.version}: apply, repair or rekey upgrades it)"
    )
    if outdated(vault.kdf):
        version += f" (key derived with {vault.kdf}: `bitget-keys vault rekey` upgrades it)"
    if scan.clean:
        print(f"{args.vault}: intact, {len(scan.entries)} record(s){version}")
        return 0
    print(
        f"{args.vault}: damaged: {len(scan.damage)} damaged line(s), {len(scan.entries)} "
        f"intact record(s){version}; {repair_hint(args.vault)} recovers every intact record"
    )
    return ExitCode.FAILED


async def run_repair(args: argparse.Namespace) -> int:
    """Recover every intact record into a repaired vault, keeping the damaged original."""
    if args.output is not None and (args.output.exists() or args.output.is_symlink()):
        msg = f"--output {args.output} exists; name a new file for the repaired vault"
        raise UsageError(msg)
    async with _locked_vault(args, "bitget-keys vault repair") as vault:
        repair = vault.repair(args.output)
    for damage in repair.damage:
        print(f"{args.vault}: {damage}", file=sys.stderr)
    if repair.written is None:
        print(f"{args.vault}: intact, {repair.recovered} record(s); nothing to repair")
    elif repair.kept is not None:
        print(
            f"{args.vault}: repaired: {repair.recovered} intact record(s) kept; the damaged "
            f"original is kept as {repair.kept}"
        )
    else:
        print(f"{args.vault}: {repair.recovered} intact record(s) written to {repair.written}")
    return 0


@contextlib.asynccontextmanager
async def _locked_vault(args: argparse.Namespace, command: str) -> AsyncIterator[SecretsVault]:
    """The existing vault, opened under its lock: no apply appends while it is rewritten."""
    refuse_directory(args.vault, "vault")
    if not SecretsVault.exists(args.vault):
        raise VaultMissingError(str(args.vault), "no vault here")
    lock = FileLock(args.vault, command=command)
    await take_lock(lock, wait=args.wait_lock)
    try:
        yield open_vault(args.vault, args.vault_key_file)
    finally:
        lock.release()


async def run_rekey(args: argparse.Namespace) -> int:
    """Rewrite the vault under a new passphrase and today's key derivation."""
    async with _locked_vault(args, "bitget-keys vault rekey") as vault:
        before = vault.kdf
        rekey = vault.rekey(_new_passphrase(args.vault, args.new_key_file))
    print(
        f"{args.vault}: rekeyed: {rekey.records} record(s) under the new passphrase, its key "
        f"derived with {rekey.kdf} (was {before}). The vault as it was is kept as "
        f"{rekey.kept}; it opens with the OLD passphrase: delete it once the new one works"
    )
    return 0


def _new_passphrase(path: Path, key_file: str | None) -> str:
    """The passphrase ``vault rekey`` seals under: ``--new-key-file``, else asked twice."""
    if key_file is not None:
        key = read_key_file(key_file, "new vault key file")
        SecretsVault.check_new_passphrase(key)
        return key
    if not stdin_is_terminal():
        msg = (
            "no new vault passphrase: pass --new-key-file PATH (- for stdin), or run on a terminal"
        )
        raise ConfigurationError(msg)
    return ask_new_passphrase(
        f"New passphrase for the vault {path}",
        "The same new passphrase again: ",
        "the two new passphrases differ; the vault is unchanged",
    )
