"""
``bitget-keys audit``: check and show the audit log of lifecycle operations, and the one
rule every command follows to find that log (`audit_log_for`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bitget_keys._escape import escape
from bitget_keys.cli._common import STATE_PATH_ENV
from bitget_keys.cli.exits import ExitCode
from bitget_keys.provision.audit_log import (
    AUDIT_LOG_ENV,
    AuditCheck,
    AuditEntry,
    AuditLog,
    audit_log_path,
    scan_audit_log,
)

__all__ = ["audit_log_for", "audit_log_path_for", "run_show", "run_verify"]

#: The state file when neither ``--state`` nor its variable names one (as ``--state``).
_DEFAULT_STATE = "bitget-keys.state"

#: The columns of ``audit show``, as `AuditEntry` names them.
_COLUMNS = ("seq", "time", "actor", "operation", "account", "target", "outcome", "detail")


def audit_log_path_for(args: argparse.Namespace) -> Path:
    """
    The audit log a command writes to and ``audit`` reads: ``--audit-log``, else
    ``$BITGET_KEYS_AUDIT_LOG``, else beside the state file (``--state``, else
    ``$BITGET_KEYS_STATE``, else ``bitget-keys.state``) as ``STATE.audit.jsonl``.
    """
    given = getattr(args, "audit_log", None)
    if given is not None:
        return Path(given)
    from_environment = os.environ.get(AUDIT_LOG_ENV)
    if from_environment:
        return Path(from_environment)
    state = getattr(args, "state", None)
    if state is None:
        state = Path(os.environ.get(STATE_PATH_ENV) or _DEFAULT_STATE)
    return audit_log_path(Path(state))


def audit_log_for(args: argparse.Namespace) -> AuditLog:
    """
    The audit log of `audit_log_path_for`, opened for appending: created (0600) when it
    does not exist, and refused (`AuditLogDamagedError`) when its last line is damaged,
    so a command that opens it first refuses before it sends anything.
    """
    return AuditLog(audit_log_path_for(args))


def _check_document(check: AuditCheck) -> dict[str, object]:
    return {
        "path": str(check.path),
        "ok": check.ok,
        "missing": check.missing,
        "entries": check.entries,
        "last_seq": check.last_seq,
        "last_hash": check.last_hash,
        "problems": [{"line": p.line, "reason": p.reason} for p in check.problems],
    }


def _exit_code(check: AuditCheck) -> int:
    if check.missing:
        return ExitCode.NO_INPUT
    return ExitCode.OK if check.ok else ExitCode.INVALID_INPUT


async def run_verify(args: argparse.Namespace) -> int:
    """
    Check the audit log's chain line by line; print the last hash, for the operator to
    keep elsewhere (only a hash kept elsewhere shows entries removed from the end).
    """
    path = audit_log_path_for(args)
    check = scan_audit_log(path, expect_hash=args.expect_hash).check
    if args.json:
        print(json.dumps(_check_document(check)))
        return _exit_code(check)
    name = escape(str(path))
    if check.missing:
        print(f"bitget-keys: audit log {name}: {check.problems[0].reason}", file=sys.stderr)
        return _exit_code(check)
    if check.ok:
        print(f"audit log {name}: {check.entries} entries, chain intact")
    else:
        print(f"audit log {name}: {check.entries} entries, {len(check.problems)} damaged")
        for problem in check.problems:
            print(f"  {escape(str(problem))}")
    if check.last_hash is not None:
        which = "last hash" if check.ok else "last intact hash"
        print(f"{which}: {check.last_hash} (seq {check.last_seq})")
        if check.ok:
            print(
                "keep it elsewhere: `audit verify --expect-hash HASH` later shows whether "
                "entries up to it were removed"
            )
    return _exit_code(check)


def _row(entry: AuditEntry) -> list[str]:
    return [escape(str(getattr(entry, column))) or "-" for column in _COLUMNS]


async def run_show(args: argparse.Namespace) -> int:
    """
    Print the audit log's entries, oldest first: a table, or (``--json``) each entry as
    one JSON object per line. Damaged lines are named on stderr, with how to check them.
    """
    path = audit_log_path_for(args)
    scan = scan_audit_log(path)
    if scan.check.missing:
        reason = scan.check.problems[0].reason
        print(f"bitget-keys: audit log {escape(str(path))}: {reason}", file=sys.stderr)
        return ExitCode.NO_INPUT
    entries = [entry for _, entry in scan.entries if args.account in {None, entry.account}]
    if args.json:
        for entry in entries:
            print(json.dumps(entry.to_dict()))
    else:
        rows = [[column.upper() for column in _COLUMNS], *(_row(entry) for entry in entries)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            print("  ".join([*cells, row[-1]]).rstrip())
    if scan.check.problems:
        print(
            f"bitget-keys: warning: audit log {escape(str(path))} is damaged at "
            f"{len(scan.check.problems)} line(s); `bitget-keys audit verify` names them",
            file=sys.stderr,
        )
    return ExitCode.OK
