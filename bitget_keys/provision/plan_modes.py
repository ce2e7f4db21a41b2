"""
A plan's rules for classic and unified masters, and how its values map to the v3 requests.

One plan serves both kinds of master account. A classic master takes v2's batch-create
(8-letter names, the first key made with its sub-account) and its keys' permissions and
permission types; a unified (UTA) master takes v3's create-sub (a lowercase username and
a note) and create-sub-api (a key note, ``read_write`` or ``read_only``, and
``uta_mgt``/``uta_trade``). An account's ``mode`` says which it is: ``classic`` or
``unified`` pins the rules the plan is checked by when it is loaded; ``auto`` (the
default) is checked by the classic rules when loaded, and by the rules of the mode its
master turns out to have before anything is created (`mode_problems`).

The mapping of a plan key to create-sub-api (`unified_key`):

- the key's label is the key's note;
- every trading permission (``spot_trade``, ``margin_trade``, ``contract_trade``,
  ``contract_order``, ``contract_position``, ``copytrading_trade``) is ``uta_trade``;
  ``uta_trade`` and ``uta_mgt`` stay; several that map to one are sent once;
- ``read`` adds nothing, but a key whose only permission is ``read`` is a ``read_only``
  key with ``uta_trade``, which lets it read trading data (a v3 key must name at least
  one permission); such a key is read-only whatever its ``perm_type``, as a v2 key with
  only ``read`` can write nothing either;
- ``perm_type`` ``readonly`` is ``read_only`` and ``read_and_write`` is ``read_write``;
  without one a key is ``read_write``;
- ``transfer``, ``wallet_transfer`` and ``wallet_withdraw`` have no equivalent among the
  permissions Bitget documents for unified sub-account keys, so a key asking for them is
  refused rather than made without them.

`plan_permissions_of_unified` goes the other way, for keys made elsewhere that a plan
takes over (``bitget-keys import``): the plan permissions and permission type that
`unified_key` maps to a live key's, in the names an ``auto`` account's classic rules
accept where there are such (``read`` for a read-only trading key, ``spot_trade`` for a
read-write one).

A sub-account's name is its username (lowercased, as Bitget ignores a name's case: a
plan pinned to ``unified`` must already write it in lowercase) and its label its note.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Final

import attrs

from bitget_keys import models as m
from bitget_keys.errors import Problem, ValidationError

if TYPE_CHECKING:
    from collections.abc import Callable

    from bitget_keys.provision.plan import AccountSpec, KeySpec, SubaccountSpec

__all__ = [
    "FIRST_KEY_PERM_TYPE",
    "PlanMode",
    "UnifiedKey",
    "key_problems",
    "mode_problems",
    "name_and_label_problems",
    "plan_mode_problem",
    "plan_permissions_of_unified",
    "subaccount_problems",
    "unified_key",
    "unified_subaccount",
]


class PlanMode(StrEnum):
    """Which kind of master an account of the plan is, and so which rules apply to it."""

    #: Checked by the classic rules when loaded, by its master's once that is known.
    AUTO = "auto"
    #: v2 (classic) masters only.
    CLASSIC = "classic"
    #: v3 (Unified Trading Account) masters only.
    UNIFIED = "unified"


def plan_mode_problem(value: str) -> str | None:
    """Why ``value`` can't be a plan's ``mode``, or ``None`` when it can."""
    if value in PlanMode.__members__.values():
        return None
    choices = ", ".join(PlanMode)
    return f"{value!r} is not valid; one of: {choices}"


# Stand-ins used only to run the request models' checks on plan fields that are not
# known yet (a sub-account's UID before it exists, a passphrase to be generated).
_PLACEHOLDER_UID: Final = "1"
_PLACEHOLDER_NAME: Final = "abcdefgh"
_PLACEHOLDER_PASSPHRASE: Final = "Placeholder0passphrase1"  # noqa: S105 - never sent

# Refused rather than dropped: the key would otherwise be made without the permission
# type the plan asks for, and no later run could change it.
FIRST_KEY_PERM_TYPE: Final = (
    "the first key is created with its sub-account by batch-create, which takes no "
    "permission type: leave it out (the permissions alone decide what this key may "
    'do; ["read"] is read-only), or plan the key as a further one'
)

_P = m.Permission

#: Each plan permission with a unified equivalent; ``None``: ``read``, which adds none.
_UNIFIED_PERMISSIONS: Final[dict[m.Permission, m.Permission | None]] = {
    _P.SPOT_TRADE: _P.UTA_TRADE,
    _P.MARGIN_TRADE: _P.UTA_TRADE,
    _P.CONTRACT_TRADE: _P.UTA_TRADE,
    _P.CONTRACT_ORDER: _P.UTA_TRADE,
    _P.CONTRACT_POSITION: _P.UTA_TRADE,
    _P.COPYTRADING_TRADE: _P.UTA_TRADE,
    _P.UTA_TRADE: _P.UTA_TRADE,
    _P.UTA_MGT: _P.UTA_MGT,
    _P.READ: None,
}
_UNIFIED_TYPES: Final = {
    m.PermType.READ_AND_WRITE: m.UTAKeyType.READ_WRITE,
    m.PermType.READONLY: m.UTAKeyType.READ_ONLY,
}
#: The v3 requests' fields by the plan's name for them.
_PLAN_FIELDS: Final = {
    "note": "label",
    "username": "name",
    "type": "perm_type",
    "ips": "ip_list",
}
_FIRST_STEP: Final = re.compile(r"^[^.\[]+")


@attrs.frozen(kw_only=True)
class UnifiedKey:
    """A plan key as create-sub-api takes it (everything but the sub-account and passphrase)."""

    note: str
    type: m.UTAKeyType
    permissions: tuple[m.Permission, ...]
    ips: tuple[str, ...]


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _mapped_permissions(
    values: tuple[m.Permission, ...], out: list[Problem]
) -> tuple[m.Permission, ...] | None:
    """The v3 permissions of a plan key's, ``None`` when one has no equivalent."""
    mapped: list[m.Permission] = []
    seen: set[m.Permission] = set()
    ok = True
    for index, value in enumerate(values):
        where = f"permissions[{index}]"
        if value in seen:
            out.append(Problem(where, f"{value!s} is listed twice"))
        seen.add(value)
        if value not in _UNIFIED_PERMISSIONS:
            ok = False
            if value.known:
                rule = (
                    f"{str(value)!r} has no unified-account (v3) equivalent; "
                    'remove it or pin mode = "classic"'
                )
            else:
                choices = ", ".join(sorted(_UNIFIED_PERMISSIONS))
                rule = f"{value!s} is not valid here; one of: {choices}"
            out.append(Problem(where, rule))
        elif (equivalent := _UNIFIED_PERMISSIONS[value]) is not None and equivalent not in mapped:
            mapped.append(equivalent)
    if not ok:
        return None
    if values and set(values) == {_P.READ}:
        return (_P.UTA_TRADE,)
    return tuple(mapped)


def _mapped_type(key: KeySpec, out: list[Problem]) -> m.UTAKeyType | None:
    if key.perm_type is not None and key.perm_type not in _UNIFIED_TYPES:
        out.append(Problem("perm_type", m.perm_type_problem(key.perm_type) or "is not valid"))
        return None
    if key.permissions and set(key.permissions) == {_P.READ}:
        return m.UTAKeyType.READ_ONLY
    if key.perm_type is None:
        return m.UTAKeyType.READ_WRITE
    return _UNIFIED_TYPES[key.perm_type]


def _mapped(key: KeySpec) -> tuple[UnifiedKey | None, list[Problem]]:
    problems: list[Problem] = []
    permissions = _mapped_permissions(key.permissions, problems)
    type_ = _mapped_type(key, problems)
    if permissions is None or type_ is None or problems:
        return None, problems
    return UnifiedKey(note=key.label, type=type_, permissions=permissions, ips=key.ip_list), []


def unified_key(key: KeySpec) -> UnifiedKey:
    """
    ``key`` as create-sub-api takes it (see the module's mapping).

    Only the mapping is checked here; the v3 request checks the values' own rules
    (`key_problems` checks both).

    Raises:
        ValidationError: a permission or permission type has no unified equivalent;
            each problem is named by the plan key's field (``permissions[1]``).
    """
    unified, problems = _mapped(key)
    if unified is None:
        raise ValidationError(tuple(problems), "unified key")
    return unified


def plan_permissions_of_unified(
    permissions: tuple[m.Permission, ...], key_type: str | None, *, classic_names: bool
) -> tuple[tuple[m.Permission, ...], m.PermType | None]:
    """
    The plan permissions and permission type that `unified_key` maps to a live v3 key
    with ``permissions`` and ``key_type`` (``read_only``/``read_write``; ``None``: not
    shown, read as ``read_write``, create-sub-api's choice without one).

    ``classic_names``: prefer names the classic rules accept (an ``auto`` account is
    checked by them when the plan is loaded): a key with ``uta_trade`` alone is
    ``read`` when read-only, ``spot_trade`` when it may write. ``uta_mgt`` has no
    classic name; it stays, and only an account pinned to ``unified`` can plan it.
    A permission with no plan equivalent is returned as it is (the plan's rules refuse
    it where it is checked).
    """
    live = tuple(dict.fromkeys(permissions))
    read_only = key_type == str(m.UTAKeyType.READ_ONLY)
    if set(live) == {_P.UTA_TRADE}:
        if read_only:
            return (_P.READ,), None
        return ((_P.SPOT_TRADE,) if classic_names else (_P.UTA_TRADE,)), None
    return live, (m.PermType.READONLY if read_only else None)


def unified_subaccount(sub: SubaccountSpec) -> tuple[str, str]:
    """The ``username`` and ``note`` that create-sub takes for ``sub``."""
    return m.subaccount_name_key(sub.name), sub.label


def _plan_field(field: str) -> str:
    return _FIRST_STEP.sub(lambda step: _PLAN_FIELDS.get(step[0], step[0]), field, count=1)


def _built(where: str, request: Callable[..., object], **values: object) -> list[Problem]:
    """The problems of ``request`` built from plan values, at the plan's locations."""
    try:
        request(**values)
    except ValidationError as exc:
        return [Problem(_at(where, _plan_field(p.field)), p.rule) for p in exc.problems]
    return []


def _classic_key(key: KeySpec, where: str, *, first: bool) -> list[Problem]:
    values = {
        "passphrase": key.passphrase or _PLACEHOLDER_PASSPHRASE,
        "label": key.label,
        "permissions": key.permissions,
        "ip_list": key.ip_list,
    }
    if not first:
        return _built(
            where,
            m.CreateVirtualSubaccountAPIKeyRequest,
            subaccount_uid=_PLACEHOLDER_UID,
            perm_type=key.perm_type,
            **values,
        )
    # Made by batch-create, whose items carry no permission type.
    refused = (
        [] if key.perm_type is None else [Problem(_at(where, "perm_type"), FIRST_KEY_PERM_TYPE)]
    )
    return refused + _built(where, m.NewVirtualSubaccount, name=_PLACEHOLDER_NAME, **values)


def _unified_key(key: KeySpec, where: str) -> list[Problem]:
    unified, problems = _mapped(key)
    located = [Problem(_at(where, p.field), p.rule) for p in problems]
    # The request's own rules are checked even when the mapping failed (a stand-in
    # that passes takes the unmapped value's place), so every problem comes at once.
    request = _built(
        where,
        m.CreateUTASubaccountAPIKeyRequest,
        sub_uid=_PLACEHOLDER_UID,
        note=key.label,
        type=m.UTAKeyType.READ_WRITE if unified is None else unified.type,
        passphrase=key.passphrase or _PLACEHOLDER_PASSPHRASE,
        permissions=(_P.UTA_TRADE,) if unified is None else unified.permissions,
        ips=key.ip_list,
    )
    return located + request


def key_problems(key: KeySpec, mode: PlanMode, where: str, *, first: bool) -> list[Problem]:
    """
    Every rule of ``mode`` that ``key`` breaks, located inside ``where`` (the key's table).

    ``first``: the sub-account's first key, which a classic master makes with the
    sub-account (by batch-create, with its own rules); a unified master makes every key
    the same way.
    """
    if mode is PlanMode.UNIFIED:
        return _unified_key(key, where)
    return _classic_key(key, where, first=first)


def name_and_label_problems(
    name: str, label: str, mode: PlanMode, where: str, *, pinned: bool
) -> list[Problem]:
    """
    The rules of ``mode`` a sub-account's name and label break, located inside ``where``.

    ``pinned``: the account's plan says ``mode = "unified"``, so its names are written
    as Bitget takes them (lowercase); an ``auto`` account's classic names are lowercased.
    """
    if mode is not PlanMode.UNIFIED:
        problems = []
        if (rule := m.subaccount_name_problem(name)) is not None:
            problems.append(Problem(_at(where, "name"), rule))
        if (rule := m.label_problem(label)) is not None:
            problems.append(Problem(_at(where, "label"), rule))
        return problems
    username = name if pinned else m.subaccount_name_key(name)
    problems = _built(where, m.CreateUTASubaccountRequest, username=username, note=label)
    label_where = _at(where, "label")
    # A label identifies its sub-account in output and in the vault, so the label rules
    # other than v2's length (printable, no '/') hold for the longer note too.
    rule = m.label_problem(label, m.UTA_NOTE_MAX_LENGTH)
    if rule is not None and all(p.field != label_where for p in problems):
        problems.append(Problem(label_where, rule))
    return problems


def subaccount_problems(
    sub: SubaccountSpec, mode: PlanMode, where: str, *, pinned: bool = False
) -> list[Problem]:
    """Every rule of ``mode`` that ``sub`` and its keys break, located inside ``where``."""
    problems = name_and_label_problems(sub.name, sub.label, mode, where, pinned=pinned)
    for index, key in enumerate(sub.keys):
        problems += key_problems(key, mode, _at(where, f"keys[{index}]"), first=index == 0)
    return problems


def mode_problems(account: AccountSpec, mode: PlanMode, where: str) -> list[Problem]:
    """
    Every rule of ``mode`` that ``account``'s sub-accounts and keys break.

    For an account whose master's mode has just been found (``mode`` is ``CLASSIC`` or
    ``UNIFIED``), before anything is created under it. ``where`` is the account's
    location in the plan file (``account.where``: ``accounts[2]``, whatever the shard);
    each problem is located inside it, as `bitget_keys.provision.plan_lines.locate`
    and `bitget_keys.provision.plan.plan_error` take them. An account loaded under the
    same mode's rules has none; an ``auto`` account meets the unified rules here first.

    Raises:
        ValueError: ``mode`` is ``AUTO``, which is no master's mode.
    """
    if mode is PlanMode.AUTO:
        msg = "mode_problems needs the master's mode (classic or unified), not auto"
        raise ValueError(msg)
    pinned = account.mode is PlanMode.UNIFIED
    problems: list[Problem] = []
    for index, sub in enumerate(account.subaccounts):
        sub_where = _at(where, f"subaccounts[{index}]")
        problems += subaccount_problems(sub, mode, sub_where, pinned=pinned)
    return problems
