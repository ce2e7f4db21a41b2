"""
Which requested sub-account name each row of a create-virtual-subaccount answer stands
for, when Bitget masks the names it answers with.

A row names its sub-account in clear (``abcdefgh``, maybe as ``abcdefgh@…``), partly
masked (``abc****@virtual-bitget.com``: the visible letters begin, or end, the name),
or not at all (``*****@*******.com``). Each requested name is answered by one row,
success or failure, so the rows and the names pair up one to one: a name is refused
when every such pairing gives it a failure row, created when every pairing gives it a
success row, and unsettled otherwise (listing the sub-accounts settles it). When the
rows cannot all be paired with the names (an answer that leaves some out), only rows
in clear tell anything.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["NameOutcomes", "match_names", "row_fits"]

#: The requested names created, refused and unsettled, each in the order requested.
NameOutcomes = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def row_fits(row: str, name: str) -> bool:
    """Whether an answer's ``row`` name may stand for the requested ``name``."""
    local = row.split("@", 1)[0].lower()
    wanted = name.lower()
    if "*" not in row:
        return not local or local == wanted or row.lower() == wanted
    head, tail = local.split("*", 1)[0], local.rsplit("*", 1)[1]
    return (
        len(head) + len(tail) <= len(wanted) and wanted.startswith(head) and wanted.endswith(tail)
    )


def _clear(row: str, name: str) -> bool:
    return "*" not in row and bool(row) and row_fits(row, name)


def _perfect_matching(fits: Sequence[Sequence[int]], rows: int) -> list[int] | None:
    """A row for every name (``fits[i]``: the rows name ``i`` may take), or None."""
    owner: list[int | None] = [None] * rows

    def place(name: int, seen: set[int]) -> bool:
        for row in fits[name]:
            if row in seen:
                continue
            seen.add(row)
            current = owner[row]
            if current is None or place(current, seen):
                owner[row] = name
                return True
        return False

    if not all(place(name, set()) for name in range(len(fits))):
        return None
    taken = [0] * len(fits)
    for row, name in enumerate(owner):
        if name is not None:
            taken[name] = row
    return taken


def _reachable(start: int, fits: Sequence[Sequence[int]], owner: Sequence[int]) -> set[int]:
    """The names reachable from row ``start``: to its name, then any row that name fits."""
    names: set[int] = set()
    todo = [start]
    seen = {start}
    while todo:
        name = owner[todo.pop()]
        if name in names:
            continue
        names.add(name)
        for row in fits[name]:
            if row not in seen:
                seen.add(row)
                todo.append(row)
    return names


def match_names(
    names: Sequence[str], successes: Sequence[str], failures: Sequence[str]
) -> NameOutcomes:
    """
    The requested ``names`` split by what the answer's ``successes`` and ``failures``
    (their names as answered) tell of them: created, refused, unsettled.
    """
    rows = [*successes, *failures]
    fits = [[row for row, shown in enumerate(rows) if row_fits(shown, name)] for name in names]
    taken = _perfect_matching(fits, len(rows)) if len(rows) == len(names) else None
    outcomes: list[str] = []
    if taken is None:
        for name in names:
            created = any(_clear(shown, name) for shown in successes)
            refused = any(_clear(shown, name) for shown in failures)
            outcomes.append(
                "unsettled" if created == refused else "created" if created else "refused"
            )
    else:
        owner = [0] * len(rows)
        for index, row in enumerate(taken):
            owner[row] = index
        # Another pairing gives a name row ``other`` instead of its own exactly when
        # ``other``'s name, that name's other rows and so on lead back to it.
        for index, row in enumerate(taken):
            success = row < len(successes)
            switches = any(
                (other < len(successes)) != success and index in _reachable(other, fits, owner)
                for other in fits[index]
            )
            outcomes.append("unsettled" if switches else "created" if success else "refused")
    return (
        tuple(name for name, outcome in zip(names, outcomes, strict=True) if outcome == "created"),
        tuple(name for name, outcome in zip(names, outcomes, strict=True) if outcome == "refused"),
        tuple(
            name for name, outcome in zip(names, outcomes, strict=True) if outcome == "unsettled"
        ),
    )
