"""
The desired-state plan file: parsing and whole-file validation, no I/O beyond reading.

A plan (TOML) says which virtual sub-accounts and keys should exist under which master
accounts, which ND-broker keys should have which settings, and which copy traders should
have their copy key. `load_plan` checks everything before a single request is sent:
every field against Bitget's rules (by building the request models that will carry it),
duplicate names and labels, the quotas (20 sub-accounts per master, 10 keys per
sub-account), and that every credentials reference resolves. Every problem is reported
at once, each with its location in the file, such as
``accounts[2].subaccounts[5].name: must be exactly 8 English letters``. A value that is
missing or of the wrong TOML type is a structural problem; the values' rules are then
still checked in every part of the file that could be read (``[defaults]``, each
``[[accounts]]`` entry on its own, at its own index), and wait only in the part holding
it: the rest of that ``[[accounts]]`` entry, the keys taking a value from an unreadable
``[defaults]``, and duplicates with an unreadable entry. Nothing is inferred from an
unreadable part (an account that could not be read still counts as named).

Each account's ``mode`` (or ``[defaults] mode``) decides which of Bitget's rules its
sub-accounts and keys are checked by (`bitget_keys.provision.plan_modes`). ``auto``
(the default) and ``classic`` take the classic (v2) rules here: the first key of each
sub-account is created together with the sub-account (by batch-create), so it follows
batch-create's rules (permissions ``spot_trade``, ``margin_trade``, ``contract_trade``,
``read``); further keys follow create-virtual-subaccount-apikey's. Batch-create takes no
permission type, so a ``perm_type`` on a first key is refused rather than silently
dropped, and ``[defaults] perm_type`` applies to further keys only. ``unified`` takes
the unified (v3) rules instead, where every key is made alike and takes a ``perm_type``.
An ``auto`` account meets the rules of its master's mode once that is known, before
anything is created under it. A ``mode`` that is not valid leaves its account's
sub-accounts unchecked until it is.

An account may name the egress its master's requests leave through (``egress``, one of
``apply --egress``'s names, which apply checks); accounts of one master may not name two.

The file's structure (its tables and keys, and their TOML types) is read by
`bitget_keys.provision.plan_schema`; every rule on the values comes from
`bitget_keys.models` (the request models, `label_problem`, `subaccount_name_problem`,
the quotas): one rule each, shared with the requests.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from bitget_keys import models as m
from bitget_keys._secret import Secret, to_secret
from bitget_keys._signing import Credentials
from bitget_keys.errors import ConfigurationError, PlanError, Problem, ValidationError
from bitget_keys.provision.durations import duration_problem, parse_duration
from bitget_keys.provision.plan_lines import PlanProblem, locate
from bitget_keys.provision.plan_modes import (
    FIRST_KEY_PERM_TYPE,
    PlanMode,
    key_problems,
    name_and_label_problems,
    plan_mode_problem,
)
from bitget_keys.provision.plan_schema import (
    AccountRow,
    BrokerKeyRow,
    DefaultsRow,
    KeyRow,
    State,
    SubaccountRow,
    read_parts,
)

__all__ = [
    "AccountSpec",
    "BrokerKeySpec",
    "KeySpec",
    "Plan",
    "PlanMode",
    "PlanProblem",
    "State",
    "SubaccountSpec",
    "load_plan",
    "loads_plan",
    "parse_plan",
    "plan_error",
]

MAX_SUBACCOUNTS: Final = m.MAX_SUBACCOUNTS
MAX_KEYS: Final = m.MAX_SUBACCOUNT_KEYS
#: What an egress may be named: what a Redis scheduler accepts in its keys, so that
#: ``apply --egress NAME=PROXY_URL --redis URL`` can share its IP budget under it.
EGRESS_NAME: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@attrs.frozen(kw_only=True)
class KeySpec:
    """A key that should exist on a virtual sub-account, identified by its label."""

    label: str
    permissions: tuple[m.Permission, ...]
    ip_list: tuple[str, ...]
    perm_type: m.PermType | None = None
    state: State = State.PRESENT
    #: ``None``: a passphrase is generated when the key is created.
    passphrase: Secret | None = attrs.field(default=None, repr=False)
    #: Seconds after which ``rotate --due`` replaces the key; ``None``: never due.
    rotate_after: float | None = None


@attrs.frozen(kw_only=True)
class SubaccountSpec:
    """A virtual sub-account that should exist, with its keys (the first is made with it)."""

    name: str
    label: str
    keys: tuple[KeySpec, ...]
    state: State = State.PRESENT
    #: ``None``: whether it is frozen is not managed.
    frozen: bool | None = None


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
    state: State = State.PRESENT


@attrs.frozen(kw_only=True)
class AccountSpec:
    """One master account and what should exist under it."""

    name: str
    credentials: Credentials
    copy_api_key: bool = False
    copy_passphrase: Secret | None = attrs.field(default=None, repr=False)
    subaccounts: tuple[SubaccountSpec, ...] = ()
    broker_keys: tuple[BrokerKeySpec, ...] = ()
    #: The plan's ``mode``: ``AUTO`` is checked by the classic rules when loaded, and
    #: by `bitget_keys.provision.plan_modes.mode_problems` once the master's is known.
    mode: PlanMode = PlanMode.AUTO
    #: Its place among the file's ``[[accounts]]`` entries, kept by `shard_plan`, so
    #: that problems found later are located as the file's own (``accounts[index]``).
    index: int = 0
    #: The name of the ``apply --egress`` its master's requests leave through (every
    #: account of the master with it); ``None``: apply chooses.
    egress: str | None = None

    @property
    def where(self) -> str:
        """Its location in the plan file, the ``where`` of `mode_problems`."""
        return f"accounts[{self.index}]"

    @property
    def master(self) -> str:
        """Which master it is under: its UID, else (not given) its API key."""
        return self.credentials.uid or f"key:{self.credentials.api_key}"


@attrs.frozen(kw_only=True)
class Plan:
    """A whole, validated plan."""

    accounts: tuple[AccountSpec, ...]
    #: The file it was read from (``None`` when built from data), so that problems found
    #: later (a master's mode decides some rules) are shown at their lines too.
    source: str | None = attrs.field(default=None, eq=False)

    @property
    def key_count(self) -> int:
        """How many sub-account keys the plan asks for."""
        return sum(len(sub.keys) for account in self.accounts for sub in account.subaccounts)


def _at(where: str, name: str) -> str:
    """The location of ``name`` inside ``where`` (the file's top level when empty)."""
    return f"{where}.{name}" if where else name


# Structural problems whose plain wording would mislead here: a first key's perm_type
# is refused whatever its type (unless the account is pinned to unified, whose first
# keys take one), and a broker key's passphrase is what Bitget checks.
_REWORDED: Final = (
    (re.compile(r"(^|\.)keys\[0\]\.perm_type$"), None, FIRST_KEY_PERM_TYPE),
    (
        re.compile(r"(^|\.)broker_keys\[\d+\]\.passphrase$"),
        "is required",
        "is required (env:NAME): Bitget needs the key's passphrase",
    ),
)


_ACCOUNT_INDEX: Final = re.compile(r"accounts\[(\d+)\]")


def _written_mode(data: Mapping[str, Any], field: str) -> object:
    """The ``mode`` written for the account holding ``field`` (or in ``[defaults]``)."""
    accounts = data.get("accounts")
    if (entry := _ACCOUNT_INDEX.match(field)) and isinstance(accounts, list):
        account = accounts[int(entry[1])] if int(entry[1]) < len(accounts) else None
        if isinstance(account, dict) and "mode" in account:
            return account["mode"]
    defaults = data.get("defaults")
    return defaults.get("mode") if isinstance(defaults, dict) else None


def _known_mode(value: object) -> PlanMode | None:
    """A written ``mode`` (``None``: not written, so auto), or ``None`` when not valid."""
    if value is None:
        return PlanMode.AUTO
    if isinstance(value, str) and plan_mode_problem(value) is None:
        return PlanMode(value)
    return None


def _reworded(problem: Problem, data: Mapping[str, Any]) -> Problem:
    for where, rule, instead in _REWORDED:
        if where.search(problem.field) and rule in (None, problem.rule):
            if instead is FIRST_KEY_PERM_TYPE and (
                _known_mode(_written_mode(data, problem.field)) is PlanMode.UNIFIED
            ):
                return problem
            return Problem(problem.field, instead)
    return problem


class _Checker:
    """Checks the rows' values against Bitget's rules, collecting located problems."""

    def __init__(
        self,
        environ: Mapping[str, str],
        defaults: DefaultsRow | None,
        written_mode: object = None,
    ) -> None:
        self.environ = environ
        self.problems: list[Problem] = []
        #: ``[defaults] mode``; ``None``: not known (not valid, or unreadable).
        #: An unreadable ``[defaults]`` still tells its mode when that is written right.
        self.default_mode = _known_mode(written_mode)
        #: ``None``: ``[defaults]`` could not be read (its structural problems say why).
        self.defaults = None if defaults is None else self.checked_defaults(defaults)

    def problem(self, where: str, rule: str) -> None:
        self.problems.append(Problem(where, rule))

    def secret_reference(self, value: str | None, where: str) -> Secret | None:
        """A secret given as ``env:NAME``; plans never hold secrets in clear."""
        if value is None:
            return None
        if not value.startswith("env:"):
            self.problem(where, "must be env:NAME (secrets are not written in plans)")
            return None
        name = value.removeprefix("env:")
        if not self.environ.get(name):
            self.problem(where, f"environment variable {name} is not set")
            return None
        return Secret(self.environ[name])

    def credentials(self, reference: str, where: str) -> Credentials | None:
        if not reference.startswith("env:"):
            self.problem(where, "must be env:PREFIX")
            return None
        try:
            return Credentials.from_env(reference.removeprefix("env:"), environ=self.environ)
        except ConfigurationError as exc:
            self.problem(where, str(exc))
            return None

    def model(self, where: str, request: Callable[..., object], **values: object) -> bool:
        """Build a request model from plan values, reporting its problems at plan locations."""
        try:
            request(**values)
        except ValidationError as exc:
            # Every field is a plan value or a stand-in that passes its rule.
            self.problems += [Problem(_at(where, p.field), p.rule) for p in exc.problems]
            return False
        return True

    def checked_defaults(self, row: DefaultsRow) -> DefaultsRow:
        """``[defaults]``, a bad perm_type reported once, there, and then left out."""
        for index, address in enumerate(row.ip_list or ()):
            verdict = m.ip_problem(address)
            if verdict is not None:
                self.problem(f"defaults.ip_list[{index}]", verdict)
        perm_type = row.perm_type
        if perm_type is not None and (rule := m.perm_type_problem(perm_type)) is not None:
            self.problem("defaults.perm_type", rule)
            perm_type = None
        self.default_mode = self.mode(row.mode, "defaults.mode")
        rotate_after = self.duration(row.rotate_after, "defaults.rotate_after")
        return DefaultsRow(ip_list=row.ip_list, perm_type=perm_type, rotate_after=rotate_after)

    def duration(self, value: str | None, where: str) -> str | None:
        """A written duration, reported and left out when it is not one."""
        if value is not None and (rule := duration_problem(value, positive=True)) is not None:
            self.problem(where, rule)
            return None
        return value

    def mode(self, value: str | None, where: str) -> PlanMode | None:
        """A written ``mode`` (``None``: ``[defaults]``'s); ``None`` when not known."""
        if value is None:
            return self.default_mode
        if (rule := plan_mode_problem(value)) is not None:
            self.problem(where, rule)
            return None
        return PlanMode(value)

    def key(self, row: KeyRow, where: str, *, first: bool, mode: PlanMode) -> KeySpec | None:
        # A classic master makes the first key with its sub-account, by batch-create,
        # which takes no permission type; a unified master makes every key alike.
        batch = first and mode is not PlanMode.UNIFIED
        # A key taking a value from a [defaults] that could not be read waits for it:
        # that value's rules and the key's request are checked once it can be read.
        waits = self.defaults is None and (
            row.ip_list is None or (not batch and row.perm_type is None)
        )
        defaults = self.defaults or DefaultsRow()
        ip_list = defaults.ip_list if row.ip_list is None else row.ip_list
        if ip_list is None and not waits:
            self.problem(_at(where, "ip_list"), "is required (here or in [defaults])")
        refused = batch and row.perm_type is not None
        if refused:
            self.problem(_at(where, "perm_type"), FIRST_KEY_PERM_TYPE)
        perm_type = row.perm_type if row.perm_type is not None else defaults.perm_type
        passphrase = self.secret_reference(row.passphrase, _at(where, "passphrase"))
        rotate_after = self.duration(row.rotate_after, _at(where, "rotate_after"))
        if rotate_after is None and row.rotate_after is None:
            rotate_after = defaults.rotate_after
        if ip_list is None or waits or (rotate_after is None and row.rotate_after is not None):
            return None
        key = KeySpec(
            label=row.label,
            permissions=tuple(m.permission(value) for value in row.permissions),
            ip_list=ip_list,
            perm_type=None if perm_type is None or batch else m.PermType(perm_type),
            state=row.state,
            passphrase=passphrase,
            rotate_after=None if rotate_after is None else parse_duration(rotate_after),
        )
        problems = key_problems(key, mode, where, first=first)
        self.problems += problems
        return None if problems or refused else key

    def subaccount(self, row: SubaccountRow, where: str, mode: PlanMode) -> SubaccountSpec | None:
        # Only an account pinned to unified is checked by the unified rules here.
        self.problems += name_and_label_problems(
            row.name, row.label, mode, where, pinned=mode is PlanMode.UNIFIED
        )
        if row.state is State.ABSENT and row.frozen is False:
            absent = 'false contradicts state = "absent" (an absent sub-account is frozen)'
            self.problem(_at(where, "frozen"), f"{absent}: leave frozen out")
        if not row.keys and row.state is State.PRESENT:
            self.problem(
                _at(where, "keys"), "must list at least one key (the first is made with it)"
            )
        if len(row.keys) > MAX_KEYS:
            self.problem(
                _at(where, "keys"), f"at most {MAX_KEYS} keys per sub-account (got {len(row.keys)})"
            )
        keys: list[KeySpec] = []
        seen: set[str] = set()
        for index, key_row in enumerate(row.keys):
            key_where = _at(where, f"keys[{index}]")
            key = self.key(key_row, key_where, first=index == 0, mode=mode)
            if key is None:
                continue
            if key.label in seen:
                self.problem(
                    _at(key_where, "label"), f"{key.label!r} is used twice in this sub-account"
                )
            seen.add(key.label)
            keys.append(key)
        if len(keys) != len(row.keys):
            return None
        return SubaccountSpec(
            name=row.name, label=row.label, keys=tuple(keys), state=row.state, frozen=row.frozen
        )

    def broker_key(self, row: BrokerKeyRow, where: str) -> BrokerKeySpec | None:
        passphrase = self.secret_reference(row.passphrase, _at(where, "passphrase"))
        if passphrase is None:
            return None
        # A broker key's table holds exactly the modify request's fields.
        fields = attrs.asdict(row, recurse=False) | {"passphrase": passphrase}
        del fields["state"]  # whether it should exist, not a setting of the key
        ok = self.model(where, m.ModifyBrokerSubaccountAPIKeyRequest, **fields)
        if not ok:
            return None
        return BrokerKeySpec(
            sub_uid=row.sub_uid,
            api_key=row.api_key,
            passphrase=passphrase,
            permissions=tuple(m.permission(value) for value in row.permissions),
            perm_type=m.PermType(row.perm_type),
            ip_list=row.ip_list,
            label=row.label,
            state=row.state,
        )

    def account(self, row: AccountRow, position: int) -> AccountSpec | None:
        where = f"accounts[{position}]"
        credentials = self.credentials(row.credentials, _at(where, "credentials"))
        copy_passphrase = self.secret_reference(row.copy_passphrase, _at(where, "copy_passphrase"))
        # A mode that is not known leaves the sub-accounts' rules waiting for it.
        mode = self.mode(row.mode, _at(where, "mode"))
        if len(row.subaccounts) > MAX_SUBACCOUNTS:
            self.problem(
                _at(where, "subaccounts"),
                f"at most {MAX_SUBACCOUNTS} sub-accounts per master account "
                f"(got {len(row.subaccounts)})",
            )
        subaccounts = []
        names: set[str] = set()
        labels: set[str] = set()
        for index, sub_row in enumerate(row.subaccounts):
            sub_where = _at(where, f"subaccounts[{index}]")
            sub = None if mode is None else self.subaccount(sub_row, sub_where, mode)
            name = m.subaccount_name_key(sub_row.name)
            if name in names:
                self.problem(_at(sub_where, "name"), f"{sub_row.name!r} is used twice")
            names.add(name)
            if sub_row.label in labels:
                self.problem(
                    _at(sub_where, "label"),
                    f"{sub_row.label!r} is used twice; labels identify sub-accounts per master",
                )
            labels.add(sub_row.label)
            if sub is not None:
                subaccounts.append(sub)
        broker_keys = [
            key
            for index, key_row in enumerate(row.broker_keys)
            if (key := self.broker_key(key_row, _at(where, f"broker_keys[{index}]"))) is not None
        ]
        egress = row.egress
        if egress is not None and not EGRESS_NAME.fullmatch(egress):
            self.problem(
                _at(where, "egress"),
                "must name an egress: up to 64 letters, digits and . _ : -",
            )
            egress = None  # no name to compare with the master's other accounts
        if credentials is None or mode is None:
            return None
        return AccountSpec(
            mode=mode,
            index=position,
            egress=egress,
            name=row.name,
            credentials=credentials,
            copy_api_key=row.copy_api_key,
            copy_passphrase=copy_passphrase,
            subaccounts=tuple(subaccounts),
            broker_keys=tuple(broker_keys),
        )

    def one_egress_per_master(self, accounts: Iterable[AccountSpec]) -> None:
        """
        Accounts of one master that name different egresses: a master's per-UID limits
        are kept by one egress's scheduler, so its requests leave through one.
        """
        first: dict[str, AccountSpec] = {}
        for account in accounts:
            if account.egress is None:
                continue
            other = first.setdefault(account.master, account)
            if other.egress != account.egress:
                uid = account.credentials.uid
                whose = f"UID {uid}" if uid else "API key"
                self.problem(
                    _at(account.where, "egress"),
                    f"{account.name} names egress {account.egress!r} but {other.name} "
                    f"({other.where}) names {other.egress!r} for the same master {whose}: "
                    "the accounts of one master leave through one egress",
                )

    def unique_across_accounts(self, rows: Iterable[tuple[int, AccountRow]]) -> None:
        """Duplicates among ``rows``, each an account with its index in the file."""
        account_names: set[str] = set()
        # Sub-account names are unique across all of Bitget, so across the plan too.
        subaccount_names: dict[str, str] = {}
        for index, row in rows:
            where = f"accounts[{index}]"
            if row.name in account_names:
                self.problem(_at(where, "name"), f"{row.name!r} is used twice")
            account_names.add(row.name)
            for sub_index, sub in enumerate(row.subaccounts):
                first = subaccount_names.setdefault(m.subaccount_name_key(sub.name), where)
                if first != where:
                    self.problem(
                        _at(where, f"subaccounts[{sub_index}].name"),
                        f"{sub.name!r} is also planned under {first}; "
                        "names are unique across Bitget",
                    )


def parse_plan(
    data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None, source: str = "plan"
) -> Plan:
    """
    Validate parsed plan data and build the `Plan`.

    Every problem is reported at once: the structure's (tables, keys, TOML types) and
    the values' (Bitget's rules, duplicates, quotas) in every part whose structure could
    be read (``[defaults]``, each ``[[accounts]]`` entry).

    Raises:
        PlanError: listing every problem with its location; nothing has been sent.
    """
    parts, structural = read_parts(data)
    problems = [_reworded(problem, data) for problem in structural]
    checker = _Checker(
        os.environ if environ is None else environ,
        parts.defaults,
        _written_mode(data, "defaults"),
    )
    if parts.every_account and not parts.accounts:
        checker.problem("accounts", "the plan names no account")
    accounts = [
        account
        for index, row in parts.accounts
        if (account := checker.account(row, index)) is not None
    ]
    checker.unique_across_accounts(parts.accounts)
    checker.one_egress_per_master(accounts)
    problems += checker.problems
    if problems:
        raise PlanError(tuple(problems), source)
    return Plan(accounts=tuple(accounts))


def load_plan(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Plan:
    """
    Read and validate the TOML plan at ``path``.

    Raises:
        PlanError: the file can't be read or parsed, or breaks any rule (all listed,
            each a `PlanProblem` with the line it is at where the file shows it).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError((Problem(source, f"cannot read: {exc.strerror}"),), source) from exc
    except UnicodeDecodeError as exc:
        rule = f"not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); TOML is UTF-8"
        raise PlanError((Problem(source, rule),), source) from exc
    return loads_plan(text, source=source, environ=environ)


def loads_plan(
    text: str, *, source: str = "<stdin>", environ: Mapping[str, str] | None = None
) -> Plan:
    """
    Validate the TOML plan ``text`` read from ``source`` (a path, or ``"<stdin>"``),
    which every problem names.

    Raises:
        PlanError: the text is not TOML, or breaks any rule (all listed, with lines).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError((Problem(source, f"not valid TOML: {exc}"),), source) from exc
    try:
        return attrs.evolve(parse_plan(data, environ=environ, source=source), source=source)
    except PlanError as exc:
        raise PlanError(locate(exc.problems, text), source) from None


def plan_error(problems: Iterable[Problem], path: str | os.PathLike[str]) -> PlanError:
    """
    The `PlanError` for ``problems`` found in the plan at ``path`` after it was loaded
    (such as `mode_problems`'), each a `PlanProblem` with its line as the file is now
    (no line when it can't be read any more).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return PlanError(tuple(PlanProblem(p.field, p.rule) for p in problems), source)
    return PlanError(locate(tuple(problems), text), source)


def shard_plan(plan: Plan, index: int, count: int) -> Plan:
    """The accounts of shard ``index`` of ``count`` (1-based): position % count == index - 1."""
    return attrs.evolve(
        plan, accounts=tuple(a for k, a in enumerate(plan.accounts) if k % count == index - 1)
    )
