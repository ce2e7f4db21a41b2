"""
Where in a plan's TOML text each table and key is written, for locating its problems.

`tomllib` gives no positions, so the text is scanned for table headers (``[defaults]``,
``[[accounts.subaccounts]]``) and for the keys under them, counting each array of
tables to know an entry's index. The scan only has to be right for what it finds:
a location it can't find (a key inside an inline table or a multi-line array, a key
left out) is given the line of the nearest enclosing table or key it did find, and
a problem with none at all gets no line.
"""

from __future__ import annotations

import re
import tomllib
from typing import Final

import attrs

from bitget_keys._escape import escape
from bitget_keys.errors import Problem

__all__ = ["PlanProblem", "line_of", "locate", "locations"]


@attrs.frozen
class PlanProblem(Problem):
    """A plan's problem with the line of the file it is at (``None``: not found)."""

    line: int | None = None

    def __str__(self) -> str:
        where = "" if self.line is None else f" (line {self.line})"
        return escape(f"{self.field}: {self.rule}{where}")


# A line's strings and comment, removed before looking at its structure.
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')
_COMMENT: Final = re.compile(r"#.*")
_MULTILINE_QUOTES: Final = ('"""', "'''")
_KEY: Final = r'[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\''
_HEADER: Final = re.compile(rf"\s*(\[\[?)\s*((?:{_KEY})(?:\s*\.\s*(?:{_KEY}))*)\s*\]\]?\s*(#.*)?$")
_ASSIGNMENT: Final = re.compile(rf"\s*({_KEY})\s*[.=]")
_DOT: Final = re.compile(rf"({_KEY})\s*\.?\s*")
# Where a location's last step begins: ``.name`` or ``[index]``.
_LAST_STEP: Final = re.compile(r"(\.[^.\[]*|\[\d+\])$")


def _key_name(token: str) -> str:
    if token[0] in "\"'":
        try:
            return str(tomllib.loads(f"k = {token}")["k"])
        except tomllib.TOMLDecodeError:
            # Not a key after all: the scan misread a line inside a multi-line string.
            return token
    return token


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _unclosed_multiline(line: str) -> str | None:
    """The quotes of a multi-line string this line opens and leaves open, if any."""
    for quotes in _MULTILINE_QUOTES:
        if line.count(quotes) % 2 == 1:
            return quotes
    return None


def locations(text: str) -> dict[str, int]:
    """The 1-based line of each table and key found, by location (``accounts[1].name``)."""
    found: dict[str, int] = {}
    # How many entries each array of tables has had so far, by its location.
    entries: dict[str, int] = {}
    table = ""
    depth = 0  # open brackets of a multi-line value, whose lines hold no keys
    inside: str | None = None  # the quotes of the multi-line string being skipped
    for number, line in enumerate(text.splitlines(), start=1):
        if inside is not None:
            if line.count(inside) % 2 == 1:
                inside = None
            continue
        opened = _unclosed_multiline(line)
        structure = line if opened is None else line[: line.rindex(opened)]
        bare = _COMMENT.sub("", _STRING.sub('""', structure))
        if depth == 0 and (header := _HEADER.match(line)):
            table = _table(header.group(2), array=header.group(1) == "[[", entries=entries)
            found.setdefault(table, number)
        elif depth == 0 and (assignment := _ASSIGNMENT.match(line)):
            found.setdefault(_at(table, _key_name(assignment.group(1))), number)
        depth = max(
            0, depth + bare.count("[") + bare.count("{") - bare.count("]") - bare.count("}")
        )
        inside = opened
    return found


def _table(dotted: str, *, array: bool, entries: dict[str, int]) -> str:
    """The location a header names, counting a new entry when it is an array's."""
    names = [_key_name(match.group(1)) for match in _DOT.finditer(dotted)]
    where = ""
    for name in names[:-1]:
        where = _at(where, name)
        if where in entries:  # a header inside an array's entry names its latest one
            where = f"{where}[{entries[where] - 1}]"
    where = _at(where, names[-1])
    if not array:
        return where
    entries[where] = entries.get(where, 0) + 1
    return f"{where}[{entries[where] - 1}]"


def line_of(where: str, found: dict[str, int]) -> int | None:
    """The line of ``where``, or of the nearest enclosing table or key that was found."""
    while where not in found:
        enclosing = _LAST_STEP.sub("", where)
        if enclosing == where:  # a top-level key that is not written
            return None
        where = enclosing
    return found[where]


def locate(problems: tuple[Problem, ...], text: str) -> tuple[PlanProblem, ...]:
    """``problems`` of the plan written as ``text``, each with its line."""
    found = locations(text)
    return tuple(PlanProblem(p.field, p.rule, line_of(p.field, found)) for p in problems)
