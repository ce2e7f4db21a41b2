"""
Drift and revocation: what differs between planned keys and live ones, and what should
not exist any more. Pure: no I/O, no clock.

Which live key is *the* planned key of a label: the one the vault records as
``CURRENT`` when there is one (keys in the middle of a rotation share a label, and the
``PENDING`` and ``PREVIOUS`` ones belong to the rotation, never to drift or prune),
else the only usable live key with that label. Neutralised keys (no permission, a
whitelist no caller can match) were revoked already and count for nothing; several
usable keys with the label and none current leave the label alone, as no one can tell
which is planned.

A planned key found live is compared with the plan: its permissions (a unified key's
as the plan maps them, `unified_key`), its whitelist (both as sets), a unified key's
permission type where the list shows one (a classic key's can't be modified), and for a
sub-account whose plan sets ``frozen`` its frozen state. Revokes: every live key of a
sub-account marked absent (which is frozen too, as Bitget deletes no sub-account), keys
marked absent, broker keys marked absent, a key the vault records as revoked that carries
a planned label and is usable again, and with ``prune`` what the plan no longer
names under the master: keys of planned sub-accounts whose label no planned key has, and
every key of a live sub-account no account of the plan names for that master. Prune
never freezes a sub-account (a freeze stops its owner's use of its funds: only ``frozen =
true`` or ``state = "absent"`` asks for it), and never revokes a rotation's key or a
copy key.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from bitget_keys import models as m
from bitget_keys.errors import ValidationError
from bitget_keys.provision.key_ops import is_neutralised
from bitget_keys.provision.plan import AccountSpec, BrokerKeySpec, KeySpec, State, SubaccountSpec
from bitget_keys.provision.plan_modes import unified_key
from bitget_keys.provision.vault_records import Stage

if TYPE_CHECKING:
    from bitget_keys.provision.diff import LiveState

__all__ = [
    "Difference",
    "DriftContext",
    "FreezeChange",
    "KeyChange",
    "KeyRevoke",
    "Lifecycle",
    "RevokeReason",
    "lifecycle",
    "planned_key",
]

#: Vault stages whose keys belong to a rotation in progress.
_ROTATION: Final = frozenset({Stage.PENDING, Stage.PREVIOUS})


class RevokeReason(enum.StrEnum):
    """Why a live key is to be revoked."""

    ABSENT = "absent in the plan"
    SUBACCOUNT_ABSENT = "its sub-account is absent in the plan"
    PRUNE = "not in the plan"
    REARMED = "revoked before, usable again"


@attrs.frozen(kw_only=True)
class DriftContext:
    """What drift and revocation need besides the plan and live state."""

    #: ``v2`` (classic) or ``v3`` (unified): how the plan's rights map to the live ones.
    family: str
    #: The vault's stage of each key it holds, by API key.
    stages: Mapping[str, Stage] = attrs.field(factory=dict)
    #: Revoke what the plan no longer names (``--prune``).
    prune: bool = False
    #: Sub-account labels other plan accounts of the same master name: never pruned.
    planned_elsewhere: frozenset[str] = frozenset()
    #: API keys never revoked by prune (the traders' copy keys the vault holds).
    protected: frozenset[str] = frozenset()
    #: API keys whose passphrase the vault holds; ``None``: not known (no vault read).
    passphrases: frozenset[str] | None = None

    def passphrase_missing(self, api_key: str, planned: KeySpec | None) -> bool:
        """Whether neither the vault nor the plan is known to hold the key's passphrase."""
        if self.passphrases is None or (planned is not None and planned.passphrase):
            return False
        return api_key not in self.passphrases


@attrs.frozen
class Difference:
    """One attribute of a live item that differs from the plan (plain JSON values)."""

    name: str
    live: str | list[str] | bool | None
    planned: str | list[str] | bool | None


@attrs.frozen(kw_only=True)
class KeyChange:
    """A planned key that exists but differs: the modify that restores the plan."""

    subaccount: SubaccountSpec
    subaccount_uid: str
    key: KeySpec
    live: m.VirtualSubaccountAPIKey
    differences: tuple[Difference, ...]


@attrs.frozen(kw_only=True)
class FreezeChange:
    """A sub-account to freeze or unfreeze."""

    #: The sub-account's label (the plan's, or the live one's).
    label: str
    subaccount_uid: str
    frozen: bool
    live: m.VirtualSubaccount


@attrs.frozen(kw_only=True)
class KeyRevoke:
    """A live sub-account key to revoke (delete, or neutralise where Bitget can't)."""

    #: The sub-account's label (the plan's, or the live one's for a sub-account the plan
    #: does not name).
    subaccount: str
    subaccount_uid: str
    live: m.VirtualSubaccountAPIKey
    reason: RevokeReason
    #: The plan's spec of the key, when the plan names it (its passphrase may serve).
    key: KeySpec | None = None


@attrs.frozen(kw_only=True)
class Lifecycle:
    """Everything beyond creates that one master account needs to match its plan."""

    key_changes: tuple[KeyChange, ...] = ()
    freezes: tuple[FreezeChange, ...] = ()
    revokes: tuple[KeyRevoke, ...] = ()
    broker_revokes: tuple[BrokerKeySpec, ...] = ()


def _labels(sub: SubaccountSpec, index: int, key: KeySpec) -> set[str]:
    """The labels a planned key may carry live: a classic first key has its sub-account's."""
    return {key.label, sub.label} if index == 0 else {key.label}


def _usable(key: m.VirtualSubaccountAPIKey, stages: Mapping[str, Stage]) -> bool:
    """Neither revoked already nor a rotation's."""
    return not is_neutralised(key) and stages.get(key.api_key) not in _ROTATION


def planned_key(
    candidates: Iterable[m.VirtualSubaccountAPIKey], stages: Mapping[str, Stage]
) -> m.VirtualSubaccountAPIKey | None:
    """
    The live key that is the planned one among ``candidates`` (the live keys carrying
    its label): the vault's current one, else the only usable one; ``None`` otherwise.
    """
    live = [key for key in candidates if not is_neutralised(key)]
    current = [key for key in live if stages.get(key.api_key) is Stage.CURRENT]
    if current:
        return current[0]
    usable = [key for key in live if _usable(key, stages)]
    return usable[0] if len(usable) == 1 else None


def _sorted(values: Iterable[object]) -> list[str]:
    return sorted({str(value) for value in values})


def _differences(
    key: KeySpec, live: m.VirtualSubaccountAPIKey, family: str
) -> tuple[Difference, ...]:
    permissions: Sequence[object] = key.permissions
    # A classic key's permission type can't be changed by a modify (only its rights and
    # whitelist can), so it is not drift apply could repair: it is left out.
    perm_type: str | None = None
    if family == "v3":
        try:
            mapped = unified_key(key)
        except ValidationError:  # the mode check refuses such a plan before this runs
            return ()
        permissions, perm_type = mapped.permissions, str(mapped.type)
    found = []
    if _sorted(permissions) != _sorted(live.permissions):
        found.append(Difference("permissions", _sorted(live.permissions), _sorted(permissions)))
    if _sorted(key.ip_list) != _sorted(live.ip_list):
        found.append(Difference("ip_list", _sorted(live.ip_list), _sorted(key.ip_list)))
    # The list shows a permission type only where Bitget gives one.
    live_type = live.perm_type
    if perm_type is not None and live_type is not None and str(live_type) != perm_type:
        found.append(Difference("perm_type", str(live_type), perm_type))
    return tuple(found)


def _frozen(sub: m.VirtualSubaccount) -> bool:
    return sub.status is not None and sub.status.frozen


class _Finder:
    """The lifecycle of one account, collected (see `lifecycle`)."""

    def __init__(self, live: LiveState, context: DriftContext) -> None:
        self.live = live
        self.context = context
        self.changes: list[KeyChange] = []
        self.freezes: list[FreezeChange] = []
        self.revokes: list[KeyRevoke] = []

    def keys_of(self, uid: str) -> tuple[m.VirtualSubaccountAPIKey, ...]:
        return tuple(self.live.keys.get(uid, ()))

    def revoke(
        self,
        label: str,
        key: m.VirtualSubaccountAPIKey,
        reason: RevokeReason,
        spec: KeySpec | None = None,
    ) -> None:
        uid = key.subaccount_uid
        made = KeyRevoke(subaccount=label, subaccount_uid=uid, live=key, reason=reason, key=spec)
        self.revokes.append(made)

    def freeze(self, label: str, sub: m.VirtualSubaccount, *, frozen: bool) -> None:
        if _frozen(sub) != frozen:
            self.freezes.append(
                FreezeChange(
                    label=label, subaccount_uid=sub.subaccount_uid, frozen=frozen, live=sub
                )
            )

    def absent_subaccount(self, label: str, sub: m.VirtualSubaccount) -> None:
        """Every key revoked (a rotation's too: the whole sub-account goes), and frozen."""
        for key in self.keys_of(sub.subaccount_uid):
            if not is_neutralised(key):
                self.revoke(label, key, RevokeReason.SUBACCOUNT_ABSENT)
        self.freeze(label, sub, frozen=True)

    def present_subaccount(self, planned: SubaccountSpec, sub: m.VirtualSubaccount) -> None:
        keys = self.keys_of(sub.subaccount_uid)
        stages = self.context.stages
        named: set[str] = set()
        for index, key in enumerate(planned.keys):
            labels = _labels(planned, index, key)
            named |= labels
            carrying = [live for live in keys if live.label in labels]
            if key.state is State.ABSENT:
                for live in carrying:
                    if _usable(live, stages):
                        self.revoke(planned.label, live, RevokeReason.ABSENT, key)
                continue
            found = planned_key(carrying, stages)
            for live in carrying:
                # Revoked (a rotation's predecessor keeps the label) yet usable again:
                # given its rights back behind the plan's back.
                rearmed = stages.get(live.api_key) is Stage.REVOKED and not is_neutralised(live)
                if rearmed and live is not found:
                    self.revoke(planned.label, live, RevokeReason.REARMED)
            differences = () if found is None else _differences(key, found, self.context.family)
            if found is not None and differences:
                self.changes.append(
                    KeyChange(
                        subaccount=planned,
                        subaccount_uid=sub.subaccount_uid,
                        key=key,
                        live=found,
                        differences=differences,
                    )
                )
        if planned.frozen is not None:
            self.freeze(planned.label, sub, frozen=planned.frozen)
        if self.context.prune:
            self.prune(planned.label, [key for key in keys if key.label not in named])

    def prune(self, label: str, keys: Iterable[m.VirtualSubaccountAPIKey]) -> None:
        for key in keys:
            if _usable(key, self.context.stages) and key.api_key not in self.context.protected:
                self.revoke(label, key, RevokeReason.PRUNE)

    def unplanned(self, planned_labels: set[str]) -> None:
        """With prune: the keys of live sub-accounts no account of the master names."""
        named = planned_labels | self.context.planned_elsewhere
        for sub in self.live.subaccounts:
            if sub.status is m.SubaccountStatus.DELETED or sub.label in named:
                continue
            self.prune(sub.label or sub.subaccount_uid, self.keys_of(sub.subaccount_uid))


def _broker_revokes(account: AccountSpec, live: LiveState) -> tuple[BrokerKeySpec, ...]:
    return tuple(
        spec
        for spec in account.broker_keys
        if spec.state is State.ABSENT
        and any(key.api_key == spec.api_key for key in live.broker_keys.get(spec.sub_uid, ()))
    )


def lifecycle(
    account: AccountSpec,
    live: LiveState,
    matched: Mapping[str, str],
    context: DriftContext,
) -> Lifecycle:
    """
    The modifies, freezes and revokes that ``account`` needs (see the module).

    ``matched``: the plan's sub-accounts found live (present or absent, not in
    conflict), by label, with their UIDs.
    """
    finder = _Finder(live, context)
    by_uid = {sub.subaccount_uid: sub for sub in live.subaccounts}
    for planned in account.subaccounts:
        uid = matched.get(planned.label)
        sub = by_uid.get(uid) if uid is not None else None
        if sub is None:
            continue
        if planned.state is State.ABSENT:
            finder.absent_subaccount(planned.label, sub)
        else:
            finder.present_subaccount(planned, sub)
    if context.prune:
        finder.unplanned({sub.label for sub in account.subaccounts})
    return Lifecycle(
        key_changes=tuple(finder.changes),
        freezes=tuple(finder.freezes),
        revokes=tuple(finder.revokes),
        broker_revokes=_broker_revokes(account, live),
    )
