"""What a terminal shows after some output: `pyte` draws it on a screen of a given size."""

from __future__ import annotations

import pyte


def screen_lines(output: str, *, columns: int = 80, lines: int = 24) -> list[str]:
    """The screen's lines (trailing blanks stripped) once ``output`` was drawn on it."""
    screen = pyte.Screen(columns, lines)
    stream = pyte.Stream(screen)
    # A terminal's line discipline turns "\n" into "\r\n" (ONLCR); a buffer does not.
    stream.feed(output.replace("\r\n", "\n").replace("\n", "\r\n"))
    return [line.rstrip() for line in screen.display]


def screen_text(output: str, *, columns: int = 80, lines: int = 24) -> str:
    """`screen_lines`, joined: what the screen shows."""
    return "\n".join(screen_lines(output, columns=columns, lines=lines))
