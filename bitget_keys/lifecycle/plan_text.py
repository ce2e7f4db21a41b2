"""
Adopted entries as plan text: printed as TOML blocks, or added to the plan file itself.

A TOML writer would drop the plan's comments and layout, so the plan is never written
out whole from parsed data. Each entry is rendered on its own (values by ``tomli-w``,
so every string is quoted and escaped as TOML wants) and inserted as text at the end
of the table it belongs to: a new ``[[accounts.subaccounts]]`` block at the end of its
``[[accounts]]`` entry, a further ``[[accounts.subaccounts.keys]]`` block at the end of
its sub-account's. Everything else of the file stays byte for byte.

The result is then parsed and must equal the original plan with exactly the entries
added, each in its place; a plan whose layout does not allow that (its accounts or
sub-accounts written as inline tables, say) is refused with `PlanTextError` and left
as it was: its entries can be printed and pasted instead.
"""

from __future__ import annotations

import copy
import re
import stat
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import tomli_w

from bitget_keys._escape import escape
from bitget_keys.errors import ConfigurationError
from bitget_keys.lifecycle.adopt import Adoption, KeyEntry, NewSubaccount
from bitget_keys.provision.vault_files import write_private_file

__all__ = ["PlanTextError", "entries_text", "insert_entries", "write_plan_text"]

_HEADER: Final = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_TRIPLE: Final = re.compile(r'"""|\'\'\'')


class PlanTextError(ConfigurationError):
    """The entries can't be added to the plan file as text (it is left unchanged)."""


def _quoted(value: str) -> str:
    """``value`` as a TOML string, quoted and escaped by the TOML writer."""
    return tomli_w.dumps({"v": value}).removeprefix("v = ").rstrip("\n")


def _values(table: dict[str, Any]) -> list[str]:
    """``key = value`` lines; lists of strings on one line, as plans write them."""
    return [
        f"{name} = "
        + (f"[{', '.join(map(_quoted, value))}]" if isinstance(value, list) else _quoted(value))
        for name, value in table.items()
    ]


def _key_lines(key: KeyEntry) -> list[str]:
    return [
        (
            f"# imported: secret not held (API key {escape(key.live.api_key)}); "
            "`bitget-keys rotate` replaces it with a key whose secret is held"
        ),
        "[[accounts.subaccounts.keys]]",
        *_values(key.table()),
    ]


def subaccount_lines(entry: NewSubaccount) -> list[str]:
    """A new sub-account's block: its table, then each of its keys'."""
    lines = []
    if entry.masked_name is not None:
        lines.append(
            f"# Bitget shows this sub-account's name only masked ({escape(entry.masked_name)}): "
            f'"{entry.name}" is a stand-in; replace it with the real name (UID {entry.uid})'
        )
    lines += ["[[accounts.subaccounts]]", *_values(entry.table())]
    for key in entry.keys:
        lines += ["", *_key_lines(key)]
    return lines


def entries_text(adoption: Adoption) -> str:
    """Every entry as TOML, each introduced by a comment that says where it goes."""
    blocks = [
        "\n".join(
            [
                (
                    f"# {escape(key.account.name)}: add to sub-account "
                    f"{escape(key.subaccount.label)} ({key.account.where}.subaccounts"
                    f"[{key.subaccount_index}]), after its last key"
                ),
                *_key_lines(key.key),
            ]
        )
        for key in adoption.keys
    ]
    blocks += [
        "\n".join(
            [
                (
                    f"# {escape(sub.account.name)}: add to account {sub.account.where}, "
                    "after its last sub-account"
                ),
                *subaccount_lines(sub),
            ]
        )
        for sub in adoption.subaccounts
    ]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def _headers(lines: Sequence[str]) -> list[tuple[int, str]]:
    """Each table header's line number and path, outside multi-line strings."""
    found: list[tuple[int, str]] = []
    in_string = False
    for number, line in enumerate(lines):
        if not in_string and (match := _HEADER.match(line)):
            found.append((number, re.sub(r"\s*\.\s*", ".", match[2])))
        if len(_TRIPLE.findall(line)) % 2:
            in_string = not in_string
    return found


def _block_ends(lines: Sequence[str]) -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    """
    Where each ``[[accounts]]`` entry's text ends, and each of its sub-accounts', by
    index: the line before which a table of it can be added.
    """
    headers = _headers(lines)
    accounts: dict[int, int] = {}
    subaccounts: dict[tuple[int, int], int] = {}
    account, sub = -1, -1
    for position, (_, path) in enumerate(headers):
        later = [path for _, path in headers[position + 1 :]]
        ends = [n for n, _ in headers[position + 1 :]] + [len(lines)]
        if path == "accounts":
            account, sub = account + 1, -1
            stop = next(
                (i for i, p in enumerate(later) if not p.startswith("accounts.")), len(later)
            )
            accounts[account] = ends[stop]
        elif path == "accounts.subaccounts" and account >= 0:
            sub += 1
            stop = next(
                (i for i, p in enumerate(later) if not p.startswith("accounts.subaccounts.")),
                len(later),
            )
            subaccounts[account, sub] = ends[stop]
    return accounts, subaccounts


def _insertion_point(lines: Sequence[str], end: int) -> int:
    """
    Before ``end`` (a header line, or the end of the file), above the comments and blank
    lines that lead into the next table.
    """
    if end >= len(lines):
        return len(lines)
    while end > 0 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return end


def _expected(data: dict[str, Any], adoption: Adoption) -> dict[str, Any]:
    """The plan's data with the adoption's entries added, where the text adds them."""
    expected = copy.deepcopy(data)
    accounts = expected.get("accounts", [])
    for key in adoption.keys:
        sub = accounts[key.account.index]["subaccounts"][key.subaccount_index]
        sub.setdefault("keys", []).append(key.key.table())
    for new in adoption.subaccounts:
        table = new.table() | {"keys": [key.table() for key in new.keys]}
        accounts[new.account.index].setdefault("subaccounts", []).append(table)
    return expected


def insert_entries(text: str, adoption: Adoption, source: str) -> str:
    """
    ``text`` (the plan at ``source``) with the adoption's entries added as text.

    Raises:
        PlanTextError: the plan's layout does not let them be added as text.
    """
    lines = text.split("\n")
    accounts, subaccounts = _block_ends(lines)
    # (line, order, block): blocks at one line keep their order, further keys before new
    # sub-accounts, so that TOML adds the keys to the sub-account above them.
    inserts: list[tuple[int, int, list[str]]] = []
    try:
        for order, key in enumerate(adoption.keys):
            end = subaccounts[key.account.index, key.subaccount_index]
            inserts.append((_insertion_point(lines, end), order, ["", *_key_lines(key.key)]))
        for order, new in enumerate(adoption.subaccounts, start=len(adoption.keys)):
            end = accounts[new.account.index]
            inserts.append((_insertion_point(lines, end), order, ["", *subaccount_lines(new)]))
    except KeyError:
        raise _refused(source, "its [[accounts]] or sub-account tables were not found") from None
    for at, _, block in sorted(inserts, key=lambda item: (-item[0], -item[1])):
        # At the end: before the final newline's empty remainder.
        line = at - 1 if at == len(lines) and lines and lines[-1] == "" else at
        lines[line:line] = block
    result = "\n".join(lines)
    if not result.endswith("\n"):
        result += "\n"
    try:
        parsed = tomllib.loads(result)
    except tomllib.TOMLDecodeError as exc:
        raise _refused(source, f"the result would not be valid TOML ({exc})") from None
    if parsed != _expected(tomllib.loads(text), adoption):
        raise _refused(source, "its layout does not let entries be added in their places")
    return result


def _refused(source: str, why: str) -> PlanTextError:
    return PlanTextError(
        f"cannot add the imported entries to {source}: {why}; it is unchanged (run "
        "import without --out to print the entries, and add them by hand)"
    )


def write_plan_text(path: Path, text: str, *, original: Path, was: str) -> None:
    """
    Write the plan ``text`` to ``path`` atomically (a temporary file, fsynced, then
    renamed): the file is the old one or the new one, never a mix. ``path`` may be the
    plan itself (``original``), whose content must still be ``was``: an edit made
    meanwhile is never overwritten. Another existing file is never replaced.

    Raises:
        ConfigurationError: ``path`` exists and is not the plan, or the plan changed.
        OSError: it could not be written; nothing changed.
    """
    same = path.exists() and original.exists() and path.resolve() == original.resolve()
    if path.exists() and not same:
        msg = f"{path} exists; --out writes a new file, or the plan itself"
        raise ConfigurationError(msg)
    if same and original.read_text(encoding="utf-8") != was:
        msg = f"{original} changed while import ran; it is unchanged: run import again"
        raise ConfigurationError(msg)
    mode = stat.S_IMODE(original.stat().st_mode) if original.exists() else 0o644
    # The plan's own file when it is a link to it, which stays a link.
    target = original.resolve() if same else path
    write_private_file(target, text.encode(), overwrite=same)
    target.chmod(mode)
