"""
Adopting sub-accounts and keys made elsewhere (in Bitget's web UI, by another tool):
which of a master's holdings its plan does not name yet, as plan entries that reproduce
them exactly, so that ``plan`` shows no change once they are in the plan.

`adopt` is pure: from the plan (its accounts and its ``[defaults]``), what each master
holds and the API keys the vault knows, it returns the entries to add (new sub-accounts
with their keys, and further keys of planned sub-accounts), a note for everything it
could not bring in and why, and the vault records to write: a key made elsewhere has a
secret no one here holds, so its record has none (``secret not held``), and rotating
the key is how to get one that is held.

The entries are checked by the plan's own rules (`bitget_keys.provision.plan_modes`)
for the account they go to: the rules it is loaded by, and the unified rules too when
an ``auto`` account's master is unified. Every key carries its whitelist and, where
the default would differ, its permission type, so ``[defaults]`` never changes what an
entry means. A unified key's permissions are written in plan names that map back to
the live ones (`plan_permissions_of_unified`), checked by mapping them forward again.

Bitget masks a unified sub-account's username in its lists (``abc****@...``), and may
mask a classic name: such a name can't be imported. Its entry holds a stand-in that
begins with the letters Bitget shows (so the plan matches the sub-account, as it
matches by label and checks only what a name shows) and is marked for the operator to
replace with the real name.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

import attrs

from bitget_keys import models as m
from bitget_keys.errors import ValidationError
from bitget_keys.lifecycle.survey import MasterHoldings
from bitget_keys.provision.diff import clear_name, name_contradicts
from bitget_keys.provision.family import Family
from bitget_keys.provision.key_ops import is_neutralised
from bitget_keys.provision.plan import MAX_SUBACCOUNTS, AccountSpec, KeySpec, SubaccountSpec
from bitget_keys.provision.plan_modes import (
    PlanMode,
    key_problems,
    name_and_label_problems,
    plan_permissions_of_unified,
    unified_key,
)
from bitget_keys.provision.plan_schema import State
from bitget_keys.provision.vault_records import Stage, VaultRecord

__all__ = ["Adoption", "KeyEntry", "NewKey", "NewSubaccount", "Note", "adopt"]

#: The letters a stand-in name is completed with: one per digit of the UID.
_DIGIT_LETTERS: Final = str.maketrans("0123456789", "abcdefghij")
_STAND_IN_LENGTH: Final = 8


@attrs.frozen(kw_only=True)
class KeyEntry:
    """One key as a plan entry writes it, and the live key it reproduces."""

    label: str
    permissions: tuple[str, ...]
    ip_list: tuple[str, ...]
    perm_type: str | None
    live: m.VirtualSubaccountAPIKey

    def table(self) -> dict[str, Any]:
        """The key's ``[[accounts.subaccounts.keys]]`` table."""
        table: dict[str, Any] = {
            "label": self.label,
            "permissions": list(self.permissions),
            "ip_list": list(self.ip_list),
        }
        if self.perm_type is not None:
            table["perm_type"] = self.perm_type
        return table


@attrs.frozen(kw_only=True)
class NewSubaccount:
    """A sub-account to add under an ``[[accounts]]`` entry, with its keys."""

    account: AccountSpec
    name: str
    label: str
    uid: str
    keys: tuple[KeyEntry, ...]
    #: The name as Bitget shows it when it is masked: ``name`` is then a stand-in.
    masked_name: str | None = None
    #: Whether it is frozen: the entry says so (``frozen = true``).
    frozen: bool = False

    @property
    def address(self) -> str:
        return self.label

    def table(self) -> dict[str, Any]:
        """The ``[[accounts.subaccounts]]`` table, keys excluded."""
        table: dict[str, Any] = {"name": self.name, "label": self.label}
        if self.frozen:
            table["frozen"] = True
        return table


@attrs.frozen(kw_only=True)
class NewKey:
    """A key to add to a sub-account the plan names already."""

    account: AccountSpec
    #: The sub-account's position among its account's ``subaccounts``.
    subaccount_index: int
    subaccount: SubaccountSpec
    key: KeyEntry

    @property
    def address(self) -> str:
        return f"{self.subaccount.label}/{self.key.label}"


@attrs.frozen
class Note:
    """Something found live that was not brought into the plan, or needs a person."""

    account: str
    address: str
    detail: str

    def __str__(self) -> str:
        return f"{self.account}: {self.address}: {self.detail}"


@attrs.frozen(kw_only=True)
class Adoption:
    """What ``import`` adds to the plan and the vault."""

    subaccounts: tuple[NewSubaccount, ...] = ()
    keys: tuple[NewKey, ...] = ()
    notes: tuple[Note, ...] = ()
    #: The vault records of every adopted key the vault did not know (no secret).
    records: tuple[VaultRecord, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.subaccounts or self.keys)


def _unplanned_keys(
    planned: SubaccountSpec, live: Sequence[m.VirtualSubaccountAPIKey]
) -> list[m.VirtualSubaccountAPIKey]:
    """
    The live keys no planned key of ``planned`` stands for: as the diff matches them, by
    label, the first planned key also by its sub-account's label (batch-create's).
    """
    labels = {key.label for key in live}
    claimed: set[str] = set()
    for index, key in enumerate(planned.keys):
        if key.label in labels:
            claimed.add(key.label)
        elif index == 0 and planned.label in labels:
            claimed.add(planned.label)
    # A neutralised key was revoked: nothing to plan.
    return [key for key in live if key.label not in claimed and not is_neutralised(key)]


def _stand_in(shown: str, uid: str, taken: Collection[str]) -> str:
    """
    A name for a sub-account whose name Bitget masks: the letters it shows, completed
    from its UID to 8 letters, different from every name in ``taken``.
    """
    prefix = "".join(ch for ch in shown.split("*", 1)[0].split("@", 1)[0] if ch.isalpha())
    prefix = prefix.lower()[: _STAND_IN_LENGTH - 1]
    letters = uid.translate(_DIGIT_LETTERS) or "x"
    room = _STAND_IN_LENGTH - len(prefix)
    for shift in range(len(letters) + 1):
        tail = (letters[::-1][shift:] + letters[::-1][:shift])[:room].ljust(room, "x")
        name = prefix + tail
        if name not in taken:
            return name
    return prefix + "x" * room  # the plan's duplicate-name check names it


def _shown_name(live: m.VirtualSubaccount, family: Family) -> str | None:
    """The sub-account's name in clear, or ``None`` when Bitget masks it."""
    shown = live.subaccount_name
    if "*" in shown or not shown:
        return None
    if family == "v2":
        return clear_name(shown)
    local = shown.split("@", 1)[0].lower()
    return local if local.isascii() and local.isalpha() else None


@attrs.define
class _Adopter:
    """Builds the adoption of one plan: the rules of each account, names and labels used."""

    defaults_perm_type: str | None
    vault_keys: Collection[str]
    names: set[str] = attrs.field(factory=set)
    notes: list[Note] = attrs.field(factory=list)
    records: list[VaultRecord] = attrs.field(factory=list)

    def note(self, account: AccountSpec, address: str, detail: str) -> None:
        self.notes.append(Note(account.name, address, detail))

    def key_entry(
        self,
        account: AccountSpec,
        family: Family,
        live: m.VirtualSubaccountAPIKey,
        *,
        first: bool,
    ) -> tuple[KeyEntry | None, list[str]]:
        """``live`` as a plan key of ``account`` (its ``first`` or a further one), or why not."""
        live_type = live.perm_type
        if family == "v3" and live_type is None:
            # Read as read_write, a read-only key would be planned as one that may write.
            return None, ["Bitget's list does not show whether it is read-only"]
        if family == "v3":
            permissions, perm_type = plan_permissions_of_unified(
                live.permissions, live_type, classic_names=account.mode is not PlanMode.UNIFIED
            )
        else:
            permissions = live.permissions
            perm_type = None if live_type is None else m.PermType(live_type)
        # A classic account's first key is made by batch-create: no permission type, and
        # [defaults] perm_type does not apply to it; elsewhere the default would, so a
        # unified key that may write says so (a classic key's type, when its list does
        # not show it, is not known either way).
        batch = first and account.mode is not PlanMode.UNIFIED
        written = None if batch else perm_type
        if (
            written is None
            and not batch
            and family == "v3"
            and self.defaults_perm_type is not None
            and permissions != (m.Permission.READ,)
        ):
            written = m.PermType.READ_AND_WRITE
        entry = KeyEntry(
            label=live.label,
            permissions=tuple(str(p) for p in permissions),
            ip_list=live.ip_list,
            perm_type=None if written is None else str(written),
            live=live,
        )
        spec = KeySpec(
            label=live.label,
            permissions=permissions,
            ip_list=live.ip_list,
            perm_type=written if written is not None else self._default_for(batch=batch),
        )
        problems = [
            f"{p.field}: {p.rule}" for p in self.problems(spec, account, family, first=first)
        ]
        if batch and family == "v2" and perm_type is not None:
            problems.append(
                f"perm_type {perm_type}: a classic sub-account's first key takes none in a plan"
            )
        if not problems and family == "v3":
            problems += _maps_back(spec, live, live_type)
        return (None if problems else entry), problems

    def _default_for(self, *, batch: bool) -> m.PermType | None:
        if batch or self.defaults_perm_type is None:
            return None
        return m.PermType(self.defaults_perm_type)

    @staticmethod
    def problems(spec: KeySpec, account: AccountSpec, family: Family, *, first: bool) -> list[Any]:
        """The rules ``spec`` breaks as a key of ``account`` (loaded, then on its master)."""
        found = key_problems(spec, account.mode, "", first=first)
        if account.mode is PlanMode.AUTO and family == "v3":
            found += key_problems(spec, PlanMode.UNIFIED, "", first=first)
        return found

    def record(
        self,
        holdings: MasterHoldings,
        account: AccountSpec,
        sub: m.VirtualSubaccount,
        label: str,
        key: m.VirtualSubaccountAPIKey,
    ) -> None:
        if key.api_key in self.vault_keys:
            return
        self.records.append(
            VaultRecord(
                kind="virtual_subaccount_key",
                account=account.name,
                master_uid=holdings.master_uid,
                api_key=key.api_key,
                secret_key=None,
                label=key.label,
                subaccount_uid=sub.subaccount_uid,
                subaccount_name=sub.subaccount_name,
                subaccount_label=label,
                permissions=key.permissions,
                ip_list=key.ip_list,
                api_family=holdings.family or "v2",
                perm_type=key.perm_type,
                stage=Stage.CURRENT,
            )
        )

    def further_keys(
        self,
        holdings: MasterHoldings,
        owner: tuple[AccountSpec, int, SubaccountSpec],
        live: m.VirtualSubaccount,
    ) -> list[NewKey]:
        """The unplanned keys of a planned sub-account, as further keys of it."""
        account, index, planned = owner
        family = holdings.family or "v2"
        if name_contradicts(live.subaccount_name, planned.name):
            return []  # plan reports the conflict; nothing here can settle it
        keys = _unplanned_keys(planned, holdings.keys.get(live.subaccount_uid, ()))
        labels = {key.label for key in planned.keys}
        room = m.MAX_SUBACCOUNT_KEYS - len(planned.keys)
        added: list[NewKey] = []
        for key in keys:
            address = f"{planned.label}/{key.label}"
            if key.label in labels:
                self.note(account, address, "another key has this label; rename one on Bitget")
                continue
            if room <= 0:
                self.note(account, address, "the sub-account's plan names 10 keys already")
                continue
            entry, problems = self.key_entry(account, family, key, first=False)
            if entry is None:
                self.note(account, address, "not imported: " + "; ".join(problems))
                continue
            labels.add(key.label)
            room -= 1
            added.append(
                NewKey(account=account, subaccount_index=index, subaccount=planned, key=entry)
            )
            self.record(holdings, account, live, planned.label, key)
        return added

    def new_subaccount(
        self, holdings: MasterHoldings, live: m.VirtualSubaccount, labels: set[str]
    ) -> NewSubaccount | None:
        """An unplanned sub-account and its keys, under the master's first plan account."""
        account = holdings.account
        family = holdings.family or "v2"
        address = live.label or live.subaccount_uid
        keys = [k for k in holdings.keys.get(live.subaccount_uid, ()) if not is_neutralised(k)]
        if not keys:
            self.note(account, address, "has no key; a plan's sub-account names at least one")
            return None
        if live.label in labels:
            self.note(account, address, "another sub-account has this label; rename one")
            return None
        shown = _shown_name(live, family)
        name = (
            shown
            if shown is not None
            else _stand_in(live.subaccount_name, live.subaccount_uid, self.names)
        )
        pinned = account.mode is PlanMode.UNIFIED
        problems = [
            f"{p.field}: {p.rule}"
            for p in name_and_label_problems(name, live.label, account.mode, "", pinned=pinned)
        ]
        if account.mode is PlanMode.AUTO and family == "v3":
            problems += [
                f"{p.field}: {p.rule}"
                for p in name_and_label_problems(
                    name, live.label, PlanMode.UNIFIED, "", pinned=False
                )
            ]
        if shown is not None and m.subaccount_name_key(name) in self.names:
            problems.append(f"name {name!r} is planned for another sub-account")
        if problems:
            self.note(account, address, "not imported: " + "; ".join(dict.fromkeys(problems)))
            return None
        entries = self._sub_keys(account, family, address, keys)
        if not entries:
            return None
        self.names.add(m.subaccount_name_key(name))
        labels.add(live.label)
        for entry in entries:
            self.record(holdings, account, live, live.label, entry.live)
        return NewSubaccount(
            account=account,
            name=name,
            label=live.label,
            uid=live.subaccount_uid,
            keys=tuple(entries),
            masked_name=None if shown is not None else live.subaccount_name,
            frozen=live.status is not None and live.status.frozen,
        )

    def _sub_keys(
        self,
        account: AccountSpec,
        family: Family,
        address: str,
        keys: Sequence[m.VirtualSubaccountAPIKey],
    ) -> list[KeyEntry]:
        """A new sub-account's keys, led by one its first-key rules accept."""
        labels = [key.label for key in keys]
        unique = [key for key in keys if labels.count(key.label) == 1]
        for key in keys:
            if labels.count(key.label) > 1:
                where = f"{address}/{key.label}"
                self.note(account, where, "another key has this label; rename one on Bitget")
        first = next(
            (key for key in unique if self.key_entry(account, family, key, first=True)[0]), None
        )
        if first is None:
            why = self.key_entry(account, family, unique[0], first=True)[1] if unique else []
            detail = "; ".join(why) or "its keys' labels are not unique"
            self.note(account, address, f"not imported: no key can be its first ({detail})")
            return []
        entries: list[KeyEntry] = []
        for key in [first, *(key for key in unique if key is not first)]:
            entry, problems = self.key_entry(account, family, key, first=key is first)
            if entry is None:
                self.note(account, f"{address}/{key.label}", "not imported: " + "; ".join(problems))
                continue
            entries.append(entry)
        return entries


def _maps_back(spec: KeySpec, live: m.VirtualSubaccountAPIKey, live_type: str | None) -> list[str]:
    """Why the plan key ``spec`` would not be made as ``live`` on a unified master."""
    try:
        settings = unified_key(spec)
    except ValidationError as exc:
        return [f"{p.field}: {p.rule}" for p in exc.problems]
    wanted_type = live_type or str(m.UTAKeyType.READ_WRITE)
    if set(settings.permissions) != set(live.permissions) or str(settings.type) != wanted_type:
        return [
            (
                f"its permissions {sorted(map(str, live.permissions))} ({wanted_type}) have no "
                "plan equivalent"
            )
        ]
    return []


def adopt(
    holdings: Sequence[MasterHoldings],
    *,
    defaults: Mapping[str, Any],
    vault_keys: Collection[str],
) -> Adoption:
    """
    What to add to the plan (and the vault) so it names everything ``holdings`` shows.

    ``defaults``: the plan's ``[defaults]`` table as written; ``vault_keys``: the API
    keys the vault has records of (their records are not written again). Masters whose
    family is not known (their read failed) are left out.
    """
    default_type = defaults.get("perm_type")
    adopter = _Adopter(
        defaults_perm_type=default_type if isinstance(default_type, str) else None,
        vault_keys=vault_keys,
    )
    for master in holdings:
        for account in master.accounts:
            adopter.names.update(m.subaccount_name_key(sub.name) for sub in account.subaccounts)
    subaccounts: list[NewSubaccount] = []
    keys: list[NewKey] = []
    for master in holdings:
        if master.family is None:
            continue
        planned = {
            sub.label: (account, index, sub)
            for account in reversed(master.accounts)
            for index, sub in enumerate(account.subaccounts)
        }
        labels = {sub.label for sub in master.account.subaccounts}
        room = MAX_SUBACCOUNTS - len(master.account.subaccounts)
        for live in master.subaccounts:
            owner = planned.get(live.label)
            if owner is not None:
                # A sub-account the plan marks absent is being retired: nothing to adopt.
                if owner[2].state is not State.ABSENT:
                    keys += adopter.further_keys(master, owner, live)
                continue
            if room <= 0:
                adopter.note(master.account, live.label, "the account's plan names 20 sub-accounts")
                continue
            new = adopter.new_subaccount(master, live, labels)
            if new is not None:
                subaccounts.append(new)
                room -= 1
    return Adoption(
        subaccounts=tuple(subaccounts),
        keys=tuple(keys),
        notes=tuple(adopter.notes),
        records=tuple(adopter.records),
    )
