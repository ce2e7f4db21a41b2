"""
The plan file's structure: which tables and keys it has, and of which TOML types.

The rows here are the file as written (strings, booleans, lists, tables), read by a
cattrs converter that refuses unknown keys and values of the wrong type, and reports
every such problem at once, each at its location (``accounts[0].subaccounts[1].name``).
What the values must *mean* (Bitget's rules, references to the environment, duplicates,
quotas) is checked afterwards by `bitget_keys.provision.plan` on these rows; when the
whole file can't be read, `read_parts` still reads ``[defaults]`` and each ``[[accounts]]``
entry on its own, so the values' rules can be checked on the parts that can.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Any, Final, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.gen import make_dict_structure_fn

from bitget_keys.errors import Problem

__all__ = [
    "AccountRow",
    "BrokerKeyRow",
    "DefaultsRow",
    "KeyRow",
    "PlanFile",
    "ReadableParts",
    "State",
    "SubaccountRow",
    "read_parts",
    "read_structure",
]


class State(enum.StrEnum):
    """Whether a planned item should exist (``state`` in the plan; the default: present)."""

    PRESENT = "present"
    #: Revoked where it exists: a key deleted or neutralised, a sub-account's keys
    #: revoked and the sub-account frozen (Bitget deletes no sub-account).
    ABSENT = "absent"


@attrs.frozen(kw_only=True)
class KeyRow:
    """``[[accounts.subaccounts.keys]]``."""

    label: str
    permissions: tuple[str, ...]
    #: ``None``: ``[defaults] ip_list``.
    ip_list: tuple[str, ...] | None = None
    perm_type: str | None = None
    state: State = State.PRESENT
    #: An ``env:NAME`` reference, never the passphrase itself.
    passphrase: str | None = None
    #: How old the key may grow before ``rotate --due`` replaces it (``90d``);
    #: ``None``: ``[defaults] rotate_after``, else never due.
    rotate_after: str | None = None


@attrs.frozen(kw_only=True)
class SubaccountRow:
    """``[[accounts.subaccounts]]``."""

    name: str
    label: str
    keys: tuple[KeyRow, ...] = ()
    state: State = State.PRESENT
    #: ``None``: not managed (a sub-account frozen by hand stays frozen).
    frozen: bool | None = None


@attrs.frozen(kw_only=True)
class BrokerKeyRow:
    """``[[accounts.broker_keys]]``."""

    sub_uid: str
    api_key: str
    #: An ``env:NAME`` reference.
    passphrase: str
    permissions: tuple[str, ...]
    perm_type: str
    ip_list: tuple[str, ...] | None = None
    label: str | None = None
    state: State = State.PRESENT


@attrs.frozen(kw_only=True)
class AccountRow:
    """``[[accounts]]``."""

    name: str
    #: ``env:PREFIX``.
    credentials: str
    copy_api_key: bool = False
    copy_passphrase: str | None = None
    subaccounts: tuple[SubaccountRow, ...] = ()
    broker_keys: tuple[BrokerKeyRow, ...] = ()
    #: ``auto``, ``classic`` or ``unified``; ``None``: ``[defaults] mode``.
    mode: str | None = None
    #: The name of the ``apply --egress`` its master's requests leave through;
    #: ``None``: apply spreads the masters over its egresses.
    egress: str | None = None


@attrs.frozen(kw_only=True)
class DefaultsRow:
    """``[defaults]``."""

    ip_list: tuple[str, ...] | None = None
    perm_type: str | None = None
    #: ``None``: ``auto``.
    mode: str | None = None
    #: Every key's ``rotate_after`` unless it names its own.
    rotate_after: str | None = None


@attrs.frozen(kw_only=True)
class PlanFile:
    """The whole file."""

    defaults: DefaultsRow = DefaultsRow()
    accounts: tuple[AccountRow, ...] = ()


_TABLES: Final = (KeyRow, SubaccountRow, BrokerKeyRow, AccountRow, DefaultsRow, PlanFile)


class _WrongTypeError(TypeError):
    """A value of the wrong TOML type; its message is the rule, never the value."""


def _text(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise _WrongTypeError(f"must be a string, not {type(value).__name__}")
    return value


def _flag(value: object, _: object) -> bool:
    if not isinstance(value, bool):
        raise _WrongTypeError("must be true or false")
    return value


def _state(value: object, _: object) -> State:
    if not isinstance(value, str) or value not in State.__members__.values():
        raise _WrongTypeError('must be "present" or "absent"')
    return State(value)


def _texts(value: object, _: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _WrongTypeError("must be a list of strings")
    return tuple(value)


def _is_array_of_tables(type_: object) -> bool:
    return get_origin(type_) is tuple and get_args(type_)[0] in _TABLES


def _only(accepts: type, rule: str, make: Callable[[Any, cattrs.Converter], Any]) -> Any:
    """A hook factory: cattrs' own hook from ``make``, for values of type ``accepts`` only."""

    def factory(type_: Any, converter: cattrs.Converter) -> Any:
        inner = make(type_, converter)

        def structure(value: object, _: object) -> object:
            if not isinstance(value, accepts):
                raise _WrongTypeError(rule)
            return inner(value, type_)

        return structure

    return factory


# cattrs' own tuple hook, so each table's problems carry its index; a string or a lone
# table would otherwise be iterated (over characters or keys).
_array_of_tables = _only(
    list, "must be an array of tables ([[...]])", homogenous_tuple_structure_factory
)
_table = _only(dict, "must be a table", make_dict_structure_fn)


@functools.cache
def _converter(*, forbid_extra_keys: bool) -> cattrs.Converter:
    """
    The plan's converter (made on first use: commands that read no plan don't pay for
    it); with ``forbid_extra_keys=False`` it reads past unknown keys, only after the
    strict one has reported them.
    """
    converter = cattrs.Converter(forbid_extra_keys=forbid_extra_keys, detailed_validation=True)
    # cattrs' defaults coerce (``str(5)``, ``bool("no")``); a plan's types are checked.
    converter.register_structure_hook(str, _text)
    converter.register_structure_hook(bool, _flag)
    converter.register_structure_hook(State, _state)
    converter.register_structure_hook_func(lambda t: t == tuple[str, ...], _texts)
    converter.register_structure_hook_factory(_is_array_of_tables, _array_of_tables)
    converter.register_structure_hook_factory(lambda t: t in _TABLES, _table)
    return converter


def _rule(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return "is required"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return "unknown setting"
    if isinstance(exc, _WrongTypeError):
        return str(exc)
    # Not expected from the hooks above; its text might quote a value, so it is not shown.
    return f"is not valid ({type(exc).__name__})"


def _problems(error: BaseException) -> list[Problem]:
    """Every problem in a detailed-validation error, each at its location in the file."""
    # transform_error walks the error and builds each location; it asks for one message
    # per problem, in order, so the exception behind each message is known too, and an
    # unknown-keys error becomes one problem per key, located at that key.
    asked: list[tuple[BaseException, str]] = []

    def message(exc: BaseException, _: object) -> str:
        asked.append((exc, _rule(exc)))
        return asked[-1][1]

    lines = cattrs.transform_error(error, path="", format_exception=message)
    problems = []
    for line, (exc, rule) in zip(lines, asked, strict=True):
        where = line[len(rule) + len(" @ ") :].removeprefix(".")
        if isinstance(exc, cattrs.ForbiddenExtraKeysError):
            problems += [
                Problem(f"{where}.{key}" if where else key, rule)
                for key in sorted(exc.extra_fields)
            ]
        else:
            problems.append(Problem(where, rule))
    return problems


def read_structure(data: object) -> tuple[PlanFile | None, list[Problem]]:
    """
    The plan's rows, and every structural problem (unknown keys, wrong types, missing keys).

    The rows are ``None`` when a value is missing or of the wrong type. Unknown keys
    alone leave every known value readable, so the rows are read past them: the values'
    rules can then be checked in the same run, as a misspelt key is a common slip.
    """
    try:
        return _converter(forbid_extra_keys=True).structure(data, PlanFile), []
    except (cattrs.BaseValidationError, _WrongTypeError) as exc:
        problems = _problems(exc)
    try:
        return _converter(forbid_extra_keys=False).structure(data, PlanFile), problems
    except (cattrs.BaseValidationError, _WrongTypeError):
        return None, problems


@attrs.frozen(kw_only=True)
class ReadableParts:
    """The parts of a plan whose structure could be read, each with its place in the file."""

    #: ``None``: ``[defaults]`` could not be read, so what it would supply is unknown.
    defaults: DefaultsRow | None
    #: The ``[[accounts]]`` entries that could be read, each with its index in the file.
    accounts: tuple[tuple[int, AccountRow], ...]
    #: Whether ``accounts`` holds every entry of the file (none was unreadable).
    every_account: bool


def _read(value: object, type_: type[Any]) -> Any:
    """``value`` as ``type_``, read past unknown keys; ``None`` when it can't be read."""
    try:
        return _converter(forbid_extra_keys=False).structure(value, type_)
    except (cattrs.BaseValidationError, _WrongTypeError):
        return None


def read_parts(data: object) -> tuple[ReadableParts, list[Problem]]:
    """
    Every structural problem, as `read_structure` reports them, and the parts of the plan
    that could be read: the whole file when it can be; otherwise ``[defaults]`` and each
    ``[[accounts]]`` entry on its own, so that one entry's missing or mistyped value does
    not keep the others' values from being checked. Each part keeps its index, so the
    problems found in it are located as in the whole file.
    """
    rows, problems = read_structure(data)
    if rows is not None:
        whole = tuple(enumerate(rows.accounts))
        return ReadableParts(defaults=rows.defaults, accounts=whole, every_account=True), problems
    if not isinstance(data, dict):
        return ReadableParts(defaults=None, accounts=(), every_account=False), problems
    defaults = _read(data["defaults"], DefaultsRow) if "defaults" in data else DefaultsRow()
    entries = data.get("accounts", [])
    if not isinstance(entries, list):
        return ReadableParts(defaults=defaults, accounts=(), every_account=False), problems
    read = [(index, _read(entry, AccountRow)) for index, entry in enumerate(entries)]
    accounts = tuple((index, row) for index, row in read if row is not None)
    every = len(accounts) == len(entries)
    return ReadableParts(defaults=defaults, accounts=accounts, every_account=every), problems
