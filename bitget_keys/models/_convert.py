"""Converters of request fields: lists become tuples, wire strings become enums."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from bitget_keys.models.common import PERMISSION_BY_VALUE, Permission, PermType, SubaccountStatus

__all__ = [
    "optional_perm_type",
    "optional_permissions",
    "optional_status",
    "optional_strings",
    "perm_type",
    "permissions",
    "refuse_one_string",
    "strings",
]


def refuse_one_string(values: object, items: str) -> None:
    """Raise `TypeError` for a lone string where a list of ``items`` belongs."""
    # A lone string is iterable too, and always a mistake where a list is expected.
    if isinstance(values, str):
        msg = f"expected a list of {items}, not one string"
        raise TypeError(msg)


def strings(values: Iterable[str]) -> tuple[str, ...]:
    refuse_one_string(values, "strings")
    return tuple(values)


def optional_strings(values: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if values is None else strings(values)


def permissions(values: Iterable[Permission | str]) -> tuple[Permission, ...]:
    refuse_one_string(values, "permissions")
    lookup = PERMISSION_BY_VALUE.get
    return tuple([lookup(value) or Permission(value) for value in values])


def optional_permissions(
    values: Iterable[Permission | str] | None,
) -> tuple[Permission, ...] | None:
    return None if values is None else permissions(values)


def perm_type(value: PermType | str) -> PermType:
    checked: object = value
    if not isinstance(checked, str):
        # Kept as given, for `check_perm_type` to refuse with the field's name.
        return cast("PermType", checked)
    return PermType(value)


def optional_perm_type(value: PermType | str | None) -> PermType | None:
    return None if value is None else perm_type(value)


def optional_status(value: SubaccountStatus | str | None) -> SubaccountStatus | None:
    return None if value is None else SubaccountStatus(value)
