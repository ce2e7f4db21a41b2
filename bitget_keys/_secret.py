"""A string that keeps itself out of logs, reprs and exception messages."""

from __future__ import annotations

import hmac
from typing import Final, final

__all__ = ["REDACTED", "Secret", "to_secret", "userinfo_masked"]

#: What a secret looks like wherever it is printed.
REDACTED: Final = "********"


@final
class Secret:
    """
    Holds an API secret, a passphrase or a newly created secret key.

    ``str()``, ``repr()`` and f-strings all print ``********``; only `reveal` gives the
    value back. Two secrets compare equal when their values are equal (in constant time).
    """

    __slots__ = ("_value",)

    _value: str

    def __init__(self, value: str) -> None:
        checked: object = value  # callers without type checking can pass anything
        if not isinstance(checked, str):
            msg = f"a Secret holds a str, not {type(checked).__name__}"
            raise TypeError(msg)
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The secret value itself. Keep it out of logs."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, format_spec: str) -> str:
        return format(REDACTED, format_spec)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return hmac.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __setattr__(self, name: str, value: object) -> None:
        msg = "Secret is immutable"
        raise AttributeError(msg)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        return (Secret, (self._value,))


def to_secret(value: str | Secret) -> Secret:
    """Wrap a plain string; pass a `Secret` through."""
    return value if isinstance(value, Secret) else Secret(value)


def userinfo_masked(url: str) -> str | None:
    """
    ``url`` with everything between its scheme and its last ``@`` shown as ``***``, or
    ``None`` when it has no ``@``.

    Whatever stands before the last ``@`` may be credentials, however the URL parses: a
    password holding an unencoded ``/``, ``?`` or ``#`` reads as the end of the host, and
    a parser then shows it as a path, a query or a fragment.
    """
    head, at, tail = url.rpartition("@")
    if not at:
        return None
    scheme = head.split("://", 1)[0] + "://" if "://" in head else ""
    return f"{scheme}***@{tail}"
