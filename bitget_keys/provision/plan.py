"""
The desired-state plan file: parsing and whole-file validation, no I/O beyond reading.

A plan (TOML) says which virtual sub-accounts and keys should exist under which master
accounts, which ND-broker keys should have which settings, and which copy traders should
have their copy key. `load_plan` checks everything before a single request is sent:
every field against Bitget's rules (by building the request models that will carry it),
duplicate names and labels, the quotas (20 sub-accounts per master, 10 keys per
sub-account), and that every credentials reference resolves. Every problem is reported
at once, each with its location in the file, such as
``accounts[2].subaccounts[5].name: must be exactly 8 English letters``.

The first key of each sub-account is created together with the sub-account (by
batch-create), so it follows batch-create's rules (permissions ``spot_trade``,
``margin_trade``, ``contract_trade``, ``read``); further keys follow
create-virtual-subaccount-apikey's. Batch-create takes no permission type, so a
``perm_type`` on a first key is refused rather than silently dropped, and
``[defaults] perm_type`` applies to further keys only.

Labels follow `bitget_keys.models.label_problem`, names
`bitget_keys.models.subaccount_name_problem`: one rule each, shared with the requests.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from bitget_keys import models as m
from bitget_keys._secret import Secret, to_secret
from bitget_keys._signing import Credentials
from bitget_keys.errors import ConfigurationError, PlanError, Problem, ValidationError

__all__ = [
    "AccountSpec",
    "BrokerKeySpec",
    "KeySpec",
    "Plan",
    "SubaccountSpec",
    "load_plan",
    "parse_plan",
]

#: Sub-accounts a master may have (batch-create's documented cap).
MAX_SUBACCOUNTS: Final = 20
#: Keys a sub-account may have.
MAX_KEYS: Final = 10

# Stand-ins used only to run the request models' checks on plan fields that are not
# known yet (a sub-account's UID before it exists, a passphrase to be generated).
_PLACEHOLDER_UID: Final = "1"
_PLACEHOLDER_PASSPHRASE: Final = "Placeholder0passphrase1"  # noqa: S105 - never sent


@attrs.frozen(kw_only=True)
class KeySpec:
    """A key that should exist on a virtual sub-account, identified by its label."""

    label: str
    permissions: tuple[m.Permission, ...]
    ip_list: tuple[str, ...]
    perm_type: m.PermType | None = None
    #: ``None``: a passphrase is generated when the key is created.
    passphrase: Secret | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class SubaccountSpec:
    """A virtual sub-account that should exist, with its keys (the first is made with it)."""

    name: str
    label: str
    keys: tuple[KeySpec, ...]


@attrs.frozen(kw_only=True)
class BrokerKeySpec:
    """The desired settings of an existing ND-broker sub-account key."""

    sub_uid: str
    api_key: str
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    permissions: tuple[m.Permission, ...]
    perm_type: m.PermType
    ip_list: tuple[str, ...] | None = None
    label: str | None = None


@attrs.frozen(kw_only=True)
class AccountSpec:
    """One master account and what should exist under it."""

    name: str
    credentials: Credentials
    copy_api_key: bool = False
    copy_passphrase: Secret | None = attrs.field(default=None, repr=False)
    subaccounts: tuple[SubaccountSpec, ...] = ()
    broker_keys: tuple[BrokerKeySpec, ...] = ()


@attrs.frozen(kw_only=True)
class Plan:
    """A whole, validated plan."""

    accounts: tuple[AccountSpec, ...]

    @property
    def key_count(self) -> int:
        """How many sub-account keys the plan asks for."""
        return sum(len(sub.keys) for account in self.accounts for sub in account.subaccounts)


def _at(where: str, name: str) -> str:
    """The location of ``name`` inside ``where`` (the file's top level when empty)."""
    return f"{where}.{name}" if where else name


class _Reader:
    """Walks the parsed TOML, collecting problems with their locations."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[Problem] = []

    def problem(self, where: str, rule: str) -> None:
        self.problems.append(Problem(where, rule))

    def table(self, data: Mapping[str, Any], where: str, known: set[str]) -> None:
        for key in data:
            if key not in known:
                self.problem(_at(where, key), "unknown setting")

    def text(
        self, data: Mapping[str, Any], key: str, where: str, *, required: bool = True
    ) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(_at(where, key), "is required")
            return None
        if not isinstance(value, str):
            self.problem(_at(where, key), f"must be a string, not {type(value).__name__}")
            return None
        return value

    def strings(self, data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(_at(where, key), "must be a list of strings")
            return None
        return tuple(value)

    def tables(self, data: Mapping[str, Any], key: str, where: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.problem(_at(where, key), "must be an array of tables ([[...]])")
            return []
        return value

    def secret_reference(self, data: Mapping[str, Any], key: str, where: str) -> Secret | None:
        """A secret given as ``env:NAME``; plans never hold secrets in clear."""
        value = self.text(data, key, where, required=False)
        if value is None:
            return None
        if not value.startswith("env:"):
            self.problem(_at(where, key), "must be env:NAME (secrets are not written in plans)")
            return None
        name = value.removeprefix("env:")
        if not self.environ.get(name):
            self.problem(_at(where, key), f"environment variable {name} is not set")
            return None
        return Secret(self.environ[name])

    def model(self, where: str, build: Callable[[], object], fields: Mapping[str, str]) -> bool:
        """Run a request model's checks, reporting its problems at plan locations."""
        try:
            build()
        except ValidationError as exc:
            for problem in exc.problems:
                head, _, rest = problem.field.partition("[")
                if head in fields:
                    target = fields[head] + (f"[{rest}" if rest else "")
                    self.problem(_at(where, target), problem.rule)
            return False
        return True


def _credentials(reader: _Reader, data: Mapping[str, Any], where: str) -> Credentials | None:
    reference = reader.text(data, "credentials", where)
    if reference is None:
        return None
    if not reference.startswith("env:"):
        reader.problem(_at(where, "credentials"), "must be env:PREFIX")
        return None
    prefix = reference.removeprefix("env:")
    try:
        return Credentials.from_env(prefix, environ=reader.environ)
    except ConfigurationError as exc:
        reader.problem(_at(where, "credentials"), str(exc))
        return None


def _key(
    reader: _Reader,
    data: Mapping[str, Any],
    where: str,
    defaults: _Defaults,
    *,
    first: bool,
) -> KeySpec | None:
    reader.table(data, where, {"label", "permissions", "ip_list", "perm_type", "passphrase"})
    label = reader.text(data, "label", where)
    permissions = reader.strings(data, "permissions", where)
    if permissions is None and "permissions" not in data:
        reader.problem(_at(where, "permissions"), "is required")
    ip_list = reader.strings(data, "ip_list", where)
    if ip_list is None and "ip_list" not in data:
        ip_list = defaults.ip_list
        if ip_list is None:
            reader.problem(_at(where, "ip_list"), "is required (here or in [defaults])")
    perm_type: str | None = None
    refused = first and "perm_type" in data
    if refused:
        # Refused rather than dropped: the key would otherwise be made without the
        # permission type the plan asks for, and no later run could change it.
        reader.problem(
            _at(where, "perm_type"),
            "the first key is created with its sub-account by batch-create, which takes no "
            "permission type: leave it out (the permissions alone decide what this key may "
            'do; ["read"] is read-only), or plan the key as a further one',
        )
    elif not first:
        perm_type = reader.text(data, "perm_type", where, required=False)
        if "perm_type" not in data:
            perm_type = defaults.perm_type
    passphrase = reader.secret_reference(data, "passphrase", where)
    if label is None or permissions is None or ip_list is None:
        return None
    fields = {"label": "label", "permissions": "permissions", "ip_list": "ip_list"}
    if first:
        # Made by batch-create, whose items carry no permission type.
        ok = reader.model(
            where,
            lambda: m.NewVirtualSubaccount(
                name="abcdefgh",
                passphrase=passphrase or _PLACEHOLDER_PASSPHRASE,
                label=label,
                permissions=permissions,
                ip_list=ip_list,
            ),
            fields | {"passphrase": "passphrase"},
        )
    else:
        ok = reader.model(
            where,
            lambda: m.CreateVirtualSubaccountAPIKeyRequest(
                subaccount_uid=_PLACEHOLDER_UID,
                passphrase=passphrase or _PLACEHOLDER_PASSPHRASE,
                label=label,
                permissions=permissions,
                ip_list=ip_list,
                perm_type=perm_type,
            ),
            fields | {"perm_type": "perm_type", "passphrase": "passphrase"},
        )
    if not ok or refused:
        return None
    return KeySpec(
        label=label,
        permissions=tuple(m.permission(value) for value in permissions),
        ip_list=tuple(ip_list),
        perm_type=None if perm_type is None else m.PermType(perm_type),
        passphrase=passphrase,
    )


def _subaccount(
    reader: _Reader, data: Mapping[str, Any], where: str, defaults: _Defaults
) -> SubaccountSpec | None:
    reader.table(data, where, {"name", "label", "keys"})
    name = reader.text(data, "name", where)
    label = reader.text(data, "label", where)
    if name is not None and (rule := m.subaccount_name_problem(name)) is not None:
        reader.problem(_at(where, "name"), rule)
    if label is not None and (rule := m.label_problem(label)) is not None:
        reader.problem(_at(where, "label"), rule)
    rows = reader.tables(data, "keys", where)
    if not rows:
        reader.problem(_at(where, "keys"), "must list at least one key (the first is made with it)")
    if len(rows) > MAX_KEYS:
        reader.problem(
            _at(where, "keys"), f"at most {MAX_KEYS} keys per sub-account (got {len(rows)})"
        )
    keys: list[KeySpec] = []
    seen: set[str] = set()
    for index, row in enumerate(rows):
        key_where = _at(where, f"keys[{index}]")
        key = _key(reader, row, key_where, defaults, first=index == 0)
        if key is None:
            continue
        if key.label in seen:
            reader.problem(
                _at(key_where, "label"), f"{key.label!r} is used twice in this sub-account"
            )
        seen.add(key.label)
        keys.append(key)
    if name is None or label is None or len(keys) != len(rows):
        return None
    return SubaccountSpec(name=name, label=label, keys=tuple(keys))


def _broker_key(reader: _Reader, data: Mapping[str, Any], where: str) -> BrokerKeySpec | None:
    known = {"sub_uid", "api_key", "passphrase", "permissions", "perm_type", "ip_list", "label"}
    reader.table(data, where, known)
    sub_uid = reader.text(data, "sub_uid", where)
    api_key = reader.text(data, "api_key", where)
    passphrase = reader.secret_reference(data, "passphrase", where)
    if passphrase is None and "passphrase" not in data:
        reader.problem(
            _at(where, "passphrase"), "is required (env:NAME): Bitget needs the key's passphrase"
        )
    permissions = reader.strings(data, "permissions", where)
    if permissions is None and "permissions" not in data:
        reader.problem(_at(where, "permissions"), "is required")
    perm_type = reader.text(data, "perm_type", where)
    ip_list = reader.strings(data, "ip_list", where)
    label = reader.text(data, "label", where, required=False)
    if sub_uid is None or api_key is None or passphrase is None:
        return None
    if permissions is None or perm_type is None:
        return None
    fields = {
        name: name
        for name in ("sub_uid", "api_key", "permissions", "perm_type", "ip_list", "label")
    }
    ok = reader.model(
        where,
        lambda: m.ModifyBrokerSubaccountAPIKeyRequest(
            sub_uid=sub_uid,
            api_key=api_key,
            passphrase=passphrase,
            permissions=permissions,
            perm_type=perm_type,
            ip_list=ip_list,
            label=label,
        ),
        fields,
    )
    if not ok:
        return None
    return BrokerKeySpec(
        sub_uid=sub_uid,
        api_key=api_key,
        passphrase=passphrase,
        permissions=tuple(m.permission(value) for value in permissions),
        perm_type=m.PermType(perm_type),
        ip_list=ip_list,
        label=label,
    )


def _account(
    reader: _Reader, data: Mapping[str, Any], where: str, defaults: _Defaults
) -> AccountSpec | None:
    known = {"name", "credentials", "copy_api_key", "copy_passphrase", "subaccounts", "broker_keys"}
    reader.table(data, where, known)
    name = reader.text(data, "name", where)
    credentials = _credentials(reader, data, where)
    copy_api_key = data.get("copy_api_key", False)
    if not isinstance(copy_api_key, bool):
        reader.problem(_at(where, "copy_api_key"), "must be true or false")
        copy_api_key = False
    copy_passphrase = reader.secret_reference(data, "copy_passphrase", where)
    rows = reader.tables(data, "subaccounts", where)
    if len(rows) > MAX_SUBACCOUNTS:
        reader.problem(
            _at(where, "subaccounts"),
            f"at most {MAX_SUBACCOUNTS} sub-accounts per master account (got {len(rows)})",
        )
    subaccounts = []
    names: set[str] = set()
    labels: set[str] = set()
    for index, row in enumerate(rows):
        sub_where = _at(where, f"subaccounts[{index}]")
        sub = _subaccount(reader, row, sub_where, defaults)
        row_name, row_label = row.get("name"), row.get("label")
        if isinstance(row_name, str):
            if row_name.lower() in names:
                reader.problem(_at(sub_where, "name"), f"{row_name!r} is used twice")
            names.add(row_name.lower())
        if isinstance(row_label, str):
            if row_label in labels:
                reader.problem(
                    _at(sub_where, "label"),
                    f"{row_label!r} is used twice; labels identify sub-accounts per master",
                )
            labels.add(row_label)
        if sub is not None:
            subaccounts.append(sub)
    broker_keys = [
        key
        for index, row in enumerate(reader.tables(data, "broker_keys", where))
        if (key := _broker_key(reader, row, _at(where, f"broker_keys[{index}]"))) is not None
    ]
    if name is None or credentials is None:
        return None
    return AccountSpec(
        name=name,
        credentials=credentials,
        copy_api_key=copy_api_key,
        copy_passphrase=copy_passphrase,
        subaccounts=tuple(subaccounts),
        broker_keys=tuple(broker_keys),
    )


@attrs.frozen(kw_only=True)
class _Defaults:
    """``[defaults]``, each value valid or absent (a bad one is reported once, there)."""

    ip_list: tuple[str, ...] | None = None
    #: For keys after a sub-account's first: batch-create can't set a first key's.
    perm_type: str | None = None


def _defaults(reader: _Reader, data: Mapping[str, Any]) -> _Defaults:
    table = data.get("defaults", {})
    if not isinstance(table, dict):
        reader.problem("defaults", "must be a table")
        return _Defaults()
    reader.table(table, "defaults", {"ip_list", "perm_type"})
    ip_list = reader.strings(table, "ip_list", "defaults")
    for index, address in enumerate(ip_list or ()):
        verdict = m.ip_problem(address)
        if verdict is not None:
            reader.problem(f"defaults.ip_list[{index}]", verdict)
    perm_type = reader.text(table, "perm_type", "defaults", required=False)
    if perm_type is not None and (rule := m.perm_type_problem(perm_type)) is not None:
        reader.problem("defaults.perm_type", rule)
        perm_type = None
    return _Defaults(ip_list=ip_list, perm_type=perm_type)


def _check_unique_across_accounts(reader: _Reader, rows: list[dict[str, Any]]) -> None:
    account_names: set[str] = set()
    # Sub-account names are unique across all of Bitget, so across the plan too.
    subaccount_names: dict[str, str] = {}
    for index, row in enumerate(rows):
        where = f"accounts[{index}]"
        name = row.get("name")
        if isinstance(name, str):
            if name in account_names:
                reader.problem(_at(where, "name"), f"{name!r} is used twice")
            account_names.add(name)
        subs = row.get("subaccounts")
        for sub_index, sub in enumerate(subs if isinstance(subs, list) else []):
            sub_name = sub.get("name") if isinstance(sub, dict) else None
            if not isinstance(sub_name, str):
                continue
            first = subaccount_names.setdefault(sub_name.lower(), where)
            if first != where:
                reader.problem(
                    _at(where, f"subaccounts[{sub_index}].name"),
                    f"{sub_name!r} is also planned under {first}; names are unique across Bitget",
                )


def parse_plan(
    data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, source: str = "plan"
) -> Plan:
    """
    Validate parsed plan data and build the `Plan`.

    Raises:
        PlanError: listing every problem with its location; nothing has been sent.
    """
    reader = _Reader(os.environ if environ is None else environ)
    reader.table(data, "", {"defaults", "accounts"})
    defaults = _defaults(reader, data)
    rows = reader.tables(data, "accounts", "")
    if not rows:
        reader.problem("accounts", "the plan names no account")
    accounts = [
        account
        for index, row in enumerate(rows)
        if (account := _account(reader, row, f"accounts[{index}]", defaults)) is not None
    ]
    _check_unique_across_accounts(reader, rows)
    if reader.problems:
        raise PlanError(tuple(reader.problems), source)
    return Plan(accounts=tuple(accounts))


def load_plan(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Plan:
    """
    Read and validate the TOML plan at ``path``.

    Raises:
        PlanError: the file can't be read or parsed, or breaks any rule (all listed).
    """
    source = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError((Problem(source, f"cannot read: {exc.strerror}"),), source) from exc
    except UnicodeDecodeError as exc:
        rule = f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); TOML is UTF-8"
        raise PlanError((Problem(source, rule),), source) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PlanError((Problem(source, f"not valid TOML: {exc}"),), source) from exc
    return parse_plan(data, environ=environ, source=source)


def shard_plan(plan: Plan, index: int, count: int) -> Plan:
    """The accounts of shard ``index`` of ``count`` (1-based): position % count == index - 1."""
    return attrs.evolve(
        plan, accounts=tuple(a for k, a in enumerate(plan.accounts) if k % count == index - 1)
    )
