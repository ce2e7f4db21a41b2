"""
Text made safe to print: what came from a plan or from Bitget never acts on the terminal.

Names, labels, API keys and error details reach the output from files and from the
exchange. Printed raw, a newline in one could forge a line of output, an ESC sequence
could rewrite the screen, and a right-to-left override (U+202E) could show a label
backwards. `escape` shows every such character as a backslash escape instead, so each
printed line is exactly one line and reads as written.

"Such a character" is one `str.isprintable` refuses: Unicode's control, format,
surrogate, private-use, unassigned, and line, paragraph and space separators other than
the ASCII space (U+00A0 and the like look like a space but are not one). Labels may not
hold them at all (`bitget_keys.models.label_problem`), nor a backslash, so a label always
prints as written and can never imitate an escape.
"""

from __future__ import annotations

from typing import Final

__all__ = ["escape", "first_unprintable"]

_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    if char.isprintable():
        return char
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str) -> str:
    """``text`` with every character that would not print as itself shown as an escape."""
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(_escaped(char) for char in text)


def first_unprintable(text: str) -> str | None:
    """The first character of ``text`` that `escape` would change, or ``None``."""
    if text.isprintable():
        return None
    return next(char for char in text if not char.isprintable())
