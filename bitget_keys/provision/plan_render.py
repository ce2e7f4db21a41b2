"""
``plan``'s text: each account's changes as Terraform shows resources (``+`` create,
``~`` change, ``-`` revoke), each with the attributes it sets, then a summary line.

Every line is escaped here (`bitget_keys._escape.escape`): names, labels and Bitget's
answers come from outside, and none may forge a line or move the cursor. A line carries
a style name for a terminal; the caller decides whether to colour it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

import attrs

from bitget_keys._escape import escape
from bitget_keys.provision.plan_changes import (
    AccountChanges,
    Action,
    Attribute,
    PlannedChange,
    Summary,
    Value,
)

__all__ = ["Line", "render", "summary_lines"]

_KINDS: Final = {
    "subaccount": "sub-account",
    "key": "key",
    "broker_key": "broker key",
    "copy_key": "copy key",
}
_STYLES: Final = {Action.CREATE: "green", Action.CHANGE: "yellow", Action.REVOKE: "red"}


@attrs.frozen
class Line:
    """One escaped line of the plan, and how a terminal may colour it."""

    text: str
    style: str = ""


def _shown(value: Value, missing: str) -> str:
    if value is None:
        return missing
    return json.dumps(value, ensure_ascii=False)


def _attribute(attribute: Attribute, width: int) -> str:
    name = attribute.name.ljust(width)
    if attribute.changed:
        old = _shown(attribute.old, "(not listed)")
        return f"      {name} = {old} -> {_shown(attribute.new, '(unset)')}"
    default = "(Bitget's default)"
    return f"      {name} = {_shown(attribute.new, default)}"


def _change(change: PlannedChange) -> list[Line]:
    style = _STYLES[change.action]
    kind = _KINDS.get(change.kind.value, change.kind.value)
    head = f"  {change.action.symbol} {kind}"
    if change.address != "copy":
        head += f" {change.address}"
    lines = [Line(escape(head), style)]
    width = max((len(a.name) for a in change.attributes), default=0)
    lines += [Line(escape(_attribute(a, width)), style) for a in change.attributes]
    return lines


def render(accounts: Sequence[AccountChanges]) -> list[Line]:
    """Every account's changes and notices, in plan order."""
    lines: list[Line] = []
    for account in accounts:
        if not account.changes and not account.notices:
            lines.append(Line(escape(f"{account.account}: up to date")))
            continue
        lines.append(Line(escape(f"{account.account}:"), "bold"))
        for change in account.changes:
            lines += _change(change)
        for notice in account.notices:
            api_key = f" ({notice.api_key})" if notice.api_key else ""
            what = (
                f"orphan key {notice.address}{api_key}" if notice.kind == "orphan" else "conflict"
            )
            lines.append(Line(escape(f"  ! {what}: {notice.detail}"), "red"))
    return lines


def summary_lines(summary: Summary) -> list[Line]:
    """The summary line, and what needs a person's attention besides."""
    lines = [Line(summary.line(), "bold")]
    if summary.orphans or summary.conflicts:
        lines.append(
            Line(
                f"Attention: {summary.orphans} orphan key(s), {summary.conflicts} conflict(s); "
                "apply reports them and changes nothing about them.",
                "red",
            )
        )
    return lines
