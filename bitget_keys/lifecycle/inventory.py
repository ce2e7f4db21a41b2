"""
The inventory: every key the plan's masters hold, what it may do, how old it is,
whether its secret is held, and what breaks the key policy.

`build_inventory` is pure: from each master's holdings (`bitget_keys.lifecycle.survey`),
the vault's records (or ``None`` when the vault was not read), the first sightings
(`bitget_keys.lifecycle.first_seen`) and the current time, it makes one `KeyRow` per
key, and one per sub-account without keys, each with its findings:

- ``withdraw_permission``: the key may withdraw (``wallet_withdraw``, ``withdraw``);
- ``empty_whitelist``: any address may use the key;
- ``too_old``: older than the maximum age;
- ``secret_not_held``: the vault holds no secret for it (imported, or not in the vault
  at all), so only rotating it gives this tool a key it can hand out;
- ``previous_not_revoked``: a key a rotation replaced (the vault's ``previous``) whose
  grace, as the rotation journal records it, is over, and which still works;
- ``revoked_but_usable``: see below.

A key's age counts from its creation where Bitget tells it (a unified key's listed
``ts``), else from the first time this tool listed it: a lower bound, so each age says
its source. A neutralised key (a classic key with no permissions, bound to an address
no one can call from) can do nothing and has no findings; a key the vault records as
revoked that Bitget still lists otherwise has one:

- ``revoked_but_usable``: re-armed behind the plan's back, or a delete that did not take.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from bitget_keys import models as m
from bitget_keys.lifecycle.survey import MasterHoldings
from bitget_keys.provision.key_ops import is_neutralised
from bitget_keys.provision.vault_records import Stage, VaultRecord

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_MAX_AGE",
    "FINDINGS",
    "MAX_AGE_ENV",
    "Inventory",
    "KeyRow",
    "build_inventory",
    "inventory_csv",
]

#: Where ``inventory --max-age`` comes from when it is not given.
MAX_AGE_ENV: Final = "BITGET_KEYS_MAX_KEY_AGE"
#: The maximum age when neither ``--max-age`` nor ``$BITGET_KEYS_MAX_KEY_AGE`` is given.
DEFAULT_MAX_AGE: Final = "90d"
#: Every finding, with what it means.
FINDINGS: Final = {
    "withdraw_permission": "may withdraw",
    "empty_whitelist": "no IP whitelist",
    "too_old": "older than the maximum age",
    "secret_not_held": "secret not held",
    "previous_not_revoked": "replaced, grace over, not revoked",
    "revoked_but_usable": "revoked in the vault, usable at Bitget",
}
_WITHDRAW: Final = frozenset({m.Permission.WALLET_WITHDRAW, m.Permission.WITHDRAW})

CSV_COLUMNS: Final = (
    "account",
    "family",
    "master_uid",
    "subaccount_uid",
    "subaccount_name",
    "subaccount_label",
    "frozen",
    "api_key",
    "label",
    "permissions",
    "ip_list",
    "perm_type",
    "state",
    "created",
    "age_days",
    "age_source",
    "secret",
    "vault_stage",
    "findings",
)


@attrs.frozen(kw_only=True)
class KeyRow:
    """One key (or a sub-account without keys: ``api_key`` is ``None``) and its findings."""

    account: str
    family: str
    master_uid: str
    subaccount_uid: str
    subaccount_name: str
    subaccount_label: str
    frozen: bool
    api_key: str | None = None
    label: str | None = None
    permissions: tuple[str, ...] = ()
    ip_list: tuple[str, ...] = ()
    perm_type: str | None = None
    #: ``active``, ``neutralised`` or ``revoked`` (``None``: no key).
    state: str | None = None
    #: When it was made (a sub-account's row: the sub-account), else first seen (UTC).
    created: dt.datetime | None = None
    age_seconds: float | None = None
    #: ``bitget`` (Bitget's creation time) or ``first_seen`` (this tool's first sighting).
    age_source: str | None = None
    #: ``held``, ``imported`` (the vault's record has no secret), ``absent`` (no
    #: record) or ``unknown`` (the vault was not read).
    secret: str | None = None
    vault_stage: str | None = None
    findings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The row as ``inventory --json`` shows it (stable keys)."""
        data = attrs.asdict(self, recurse=False)
        data["permissions"] = list(self.permissions)
        data["ip_list"] = list(self.ip_list)
        data["findings"] = list(self.findings)
        data["created"] = None if self.created is None else self.created.isoformat()
        data["age_seconds"] = None if self.age_seconds is None else int(self.age_seconds)
        return data

    @property
    def age_days(self) -> int | None:
        return None if self.age_seconds is None else int(self.age_seconds // 86_400)

    def csv_row(self) -> dict[str, str]:
        """The row as ``inventory --csv`` writes it: lists joined by spaces."""
        values = self.to_json()
        row = {name: values.get(name) for name in CSV_COLUMNS}
        row["age_days"] = self.age_days
        return {
            name: " ".join(value)
            if isinstance(value, list)
            else (
                ""
                if value is None
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
            for name, value in row.items()
        }


@attrs.frozen(kw_only=True)
class Inventory:
    """Every row, in plan order, and when and under which maximum age it was taken."""

    rows: tuple[KeyRow, ...]
    taken: dt.datetime
    max_age_seconds: float
    #: Whether the vault was read (else every key's secret is ``unknown``).
    vault_read: bool

    @property
    def findings(self) -> list[tuple[KeyRow, str]]:
        return [(row, finding) for row in self.rows for finding in row.findings]

    def to_json(self) -> dict[str, Any]:
        """``inventory --json``'s document."""
        counts = dict.fromkeys(FINDINGS, 0)
        for _, finding in self.findings:
            counts[finding] += 1
        return {
            "format_version": 1,
            "taken": self.taken.isoformat(),
            "max_age_seconds": int(self.max_age_seconds),
            "vault_read": self.vault_read,
            "keys": [row.to_json() for row in self.rows],
            "summary": {
                "subaccounts": len({(r.master_uid, r.subaccount_uid) for r in self.rows}),
                "keys": sum(row.api_key is not None for row in self.rows),
                "findings": counts,
            },
        }


def inventory_csv(inventory: Inventory) -> str:
    """``inventory --csv``: a header row, then one row per key (or key-less sub-account)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in inventory.rows:
        writer.writerow(row.csv_row())
    return out.getvalue()


def _ms(value: int | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromtimestamp(value / 1000, dt.UTC)


def _secret(record: VaultRecord | None, *, vault_read: bool) -> str:
    if not vault_read:
        return "unknown"
    if record is None:
        return "absent"
    return "held" if record.held else "imported"


def _stored_at(record: VaultRecord) -> dt.datetime | None:
    """When the vault stored the key (an aware time), ``None`` if it can't be read."""
    try:
        when = dt.datetime.fromisoformat(record.created_at)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


@attrs.frozen(kw_only=True)
class _Context:
    records: Mapping[str, VaultRecord] | None
    first_seen: Mapping[str, float]
    now: dt.datetime
    max_age: float
    grace_until: Mapping[str, float]


def _created(
    key: m.VirtualSubaccountAPIKey, record: VaultRecord | None, context: _Context
) -> tuple[dt.datetime | None, str]:
    """When the key was made, and who says so: ``bitget``, or ``first_seen`` by this tool."""
    created = _ms(key.created_time)
    if created is not None:
        return created, "bitget"
    # Both are lower bounds of the key's age; the vault's is the creation itself for a
    # key this tool made, so a first inventory long after apply still sees its age.
    stored = None if record is None else _stored_at(record)
    seen = [] if stored is None else [stored]
    if key.api_key in context.first_seen:
        seen.append(dt.datetime.fromtimestamp(context.first_seen[key.api_key], dt.UTC))
    return (min(seen) if seen else None), "first_seen"


def _key_row(base: dict[str, Any], key: m.VirtualSubaccountAPIKey, context: _Context) -> KeyRow:
    record = None if context.records is None else context.records.get(key.api_key)
    created, source = _created(key, record, context)
    age = None if created is None else max(0.0, (context.now - created).total_seconds())
    state = "active"
    if record is not None and record.stage is Stage.REVOKED:
        state = "revoked"
    if is_neutralised(key):
        state = "neutralised"
    secret = _secret(record, vault_read=context.records is not None)
    findings: list[str] = []
    if state == "revoked":
        # The vault recorded a revoke, yet Bitget lists the key with rights and a
        # whitelist a caller can match: re-armed behind the plan's back, or a delete
        # that did not take.
        findings.append("revoked_but_usable")
    if state == "active":
        if set(key.permissions) & _WITHDRAW:
            findings.append("withdraw_permission")
        if not key.ip_list:
            findings.append("empty_whitelist")
        if age is not None and age > context.max_age:
            findings.append("too_old")
        if secret in {"imported", "absent"}:
            findings.append("secret_not_held")
        deadline = context.grace_until.get(key.api_key)
        previous = record is not None and record.stage is Stage.PREVIOUS
        if previous and deadline is not None and context.now.timestamp() > deadline:
            findings.append("previous_not_revoked")
    return KeyRow(
        **base,
        api_key=key.api_key,
        label=key.label,
        permissions=tuple(str(p) for p in key.permissions),
        ip_list=tuple(key.ip_list),
        perm_type=key.perm_type,
        state=state,
        created=created,
        age_seconds=age,
        age_source=None if created is None else source,
        secret=secret,
        vault_stage=None if record is None else str(record.stage),
        findings=tuple(findings),
    )


def build_inventory(
    holdings: Sequence[MasterHoldings],
    *,
    records: Sequence[VaultRecord] | None,
    first_seen: Mapping[str, float],
    now: dt.datetime,
    max_age_seconds: float,
    grace_until: Mapping[str, float] | None = None,
) -> Inventory:
    """
    The inventory of ``holdings`` (masters that could not be read are left out).

    ``records``: the vault's records, ``None`` when it was not read; ``first_seen``:
    when each API key was first listed (epoch seconds); ``now``: an aware time;
    ``grace_until``: when the grace of each key a rotation replaced ends.
    """
    context = _Context(
        records=None if records is None else {r.api_key: r for r in records},
        first_seen=first_seen,
        now=now,
        max_age=max_age_seconds,
        grace_until=grace_until or {},
    )
    rows: list[KeyRow] = []
    for master in holdings:
        if master.family is None:
            continue
        for sub in master.subaccounts:
            base: dict[str, Any] = {
                "account": master.account.name,
                "family": master.family,
                "master_uid": master.master_uid,
                "subaccount_uid": sub.subaccount_uid,
                "subaccount_name": sub.subaccount_name,
                "subaccount_label": sub.label,
                "frozen": sub.status is not None and sub.status.frozen,
            }
            keys = master.keys.get(sub.subaccount_uid, ())
            if not keys:
                created = sub.created_time
                rows.append(
                    KeyRow(
                        **base,
                        created=created,
                        age_seconds=None
                        if created is None
                        else max(0.0, (now - created).total_seconds()),
                        age_source=None if created is None else "bitget",
                    )
                )
            rows += [_key_row(base, key, context) for key in keys]
    return Inventory(
        rows=tuple(rows),
        taken=now,
        max_age_seconds=max_age_seconds,
        vault_read=records is not None,
    )
