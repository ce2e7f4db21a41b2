"""
Durations as a plan and the command line write them: ``90d``, ``12h``, ``30m``, ``45s``.

One number and one unit, no spaces: a key's ``rotate_after`` and ``rotate --grace`` are
ages and waits that operators think of in days or hours, and a bare number would leave
its unit to be guessed.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["DURATION_RULE", "duration_problem", "format_duration", "parse_duration"]

_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION: Final = re.compile(r"(\d{1,6})([smhd])")

#: What a duration must look like, as problems name it.
DURATION_RULE: Final = "must be a duration: a whole number and a unit (s, m, h, d), such as 90d"


def duration_problem(text: str, *, positive: bool = False) -> str | None:
    """
    Why ``text`` is not a duration (with ``positive``, one longer than zero); ``None``
    when it is one.

    A zero age limit (``rotate_after = "0d"``) would make the key due at every ``rotate
    --due``: each cron run would rotate it again, and on a classic master each rotation
    leaves a neutralised key holding one of the sub-account's 10 slots.
    """
    found = _DURATION.fullmatch(text)
    if found is None:
        return DURATION_RULE
    if positive and int(found[1]) == 0:
        return "must be longer than 0 (a key older than 0 would be due at every rotate --due)"
    return None


def parse_duration(text: str) -> float:
    """
    ``text`` in seconds.

    Raises:
        ValueError: it is not a duration (`DURATION_RULE`).
    """
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise ValueError(DURATION_RULE)
    return int(found[1]) * _UNITS[found[2]]


def format_duration(seconds: float) -> str:
    """``seconds`` in the largest unit that divides it (``3600`` is ``1h``)."""
    whole = round(seconds)
    for unit in ("d", "h", "m"):
        size = int(_UNITS[unit])
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"
