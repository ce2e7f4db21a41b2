"""Virtual sub-accounts (v2 user endpoints): creating, batch-creating and listing them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import cast

import attrs

from bitget_keys._secret import Secret, to_secret
from bitget_keys.errors import Problem
from bitget_keys.models import _convert as c
from bitget_keys.models._matching import match_names
from bitget_keys.models._rules import (
    BATCH_KEY_PERMISSIONS,
    MAX_BATCH_ITEMS,
    MAX_LIST_LIMIT,
    SUBACCOUNT_PERMISSIONS,
    Checked,
    Problems,
    check_ip_list,
    check_label,
    check_name,
    check_passphrase,
    check_permissions,
    check_uid,
    subaccount_name_key,
)
from bitget_keys.models.common import Permission, SubaccountStatus

__all__ = [
    "BatchCreateVirtualSubaccountsRequest",
    "CreateVirtualSubaccountsRequest",
    "CreatedVirtualSubaccount",
    "CreatedVirtualSubaccounts",
    "ListVirtualSubaccountsRequest",
    "ModifyVirtualSubaccountRequest",
    "ModifyVirtualSubaccountResult",
    "NewVirtualSubaccount",
    "VirtualSubaccount",
    "VirtualSubaccountPage",
]


@attrs.frozen(kw_only=True)
class NewVirtualSubaccount(Checked):
    """One item of a batch-create: a virtual sub-account and its first key."""

    #: The sub-account's alias: exactly 8 English letters, unique across Bitget.
    name: str
    passphrase: Secret = attrs.field(converter=to_secret, repr=False)
    #: The key's note; the batch response is matched back to items by this label.
    label: str
    permissions: tuple[Permission, ...] = attrs.field(converter=c.permissions)
    ip_list: tuple[str, ...] = attrs.field(converter=c.strings)

    def _check(self, out: Problems) -> None:
        check_name(out, "name", self.name)
        check_passphrase(out, "passphrase", self.passphrase)
        check_label(out, "label", self.label)
        check_permissions(
            out, "permissions", self.permissions, BATCH_KEY_PERMISSIONS, required=True
        )
        check_ip_list(out, "ip_list", self.ip_list)


def _items(values: Iterable[NewVirtualSubaccount]) -> tuple[NewVirtualSubaccount, ...]:
    return tuple(values)


@attrs.frozen(kw_only=True)
class BatchCreateVirtualSubaccountsRequest(Checked):
    """
    batch-create-subaccount-and-apikey: 1 to 5 virtual sub-accounts, each with a key.

    Labels must be unique within the batch: Bitget masks names and UIDs in the
    response, so the label is what ties each row back to its item.
    """

    items: tuple[NewVirtualSubaccount, ...] = attrs.field(converter=_items)

    def _check(self, out: Problems) -> None:
        if not 1 <= len(self.items) <= MAX_BATCH_ITEMS:
            out.append(
                Problem("items", f"must hold 1-{MAX_BATCH_ITEMS} items (got {len(self.items)})")
            )
        names: set[str] = set()
        labels: set[str] = set()
        for index, entry in enumerate(self.items):
            item: object = entry  # callers without type checking can pass anything
            if not isinstance(item, NewVirtualSubaccount):
                out.append(Problem(f"items[{index}]", "must be a NewVirtualSubaccount"))
                continue
            if subaccount_name_key(item.name) in names:
                out.append(
                    Problem(f"items[{index}].name", f"{item.name!r} appears twice in the batch")
                )
            if item.label in labels:
                out.append(
                    Problem(
                        f"items[{index}].label",
                        f"{item.label!r} appears twice; labels must be unique within a batch",
                    )
                )
            names.add(subaccount_name_key(item.name))
            labels.add(item.label)


@attrs.frozen(kw_only=True)
class CreateVirtualSubaccountsRequest(Checked):
    """create-virtual-subaccount: virtual sub-accounts without keys."""

    names: tuple[str, ...] = attrs.field(converter=c.strings)

    def _check(self, out: Problems) -> None:
        if not self.names:
            out.append(Problem("names", "must name at least one sub-account"))
        seen: set[str] = set()
        for index, name in enumerate(self.names):
            check_name(out, f"names[{index}]", name)
            if subaccount_name_key(name) in seen:
                out.append(Problem(f"names[{index}]", f"{name!r} appears twice"))
            seen.add(subaccount_name_key(name))


@attrs.frozen(kw_only=True)
class ListVirtualSubaccountsRequest(Checked):
    """virtual-subaccount-list: one page, newest first; page on with ``id_less_than``."""

    limit: int = 100
    id_less_than: str | None = None
    status: SubaccountStatus | None = attrs.field(default=None, converter=c.optional_status)

    def _check(self, out: Problems) -> None:
        if not 1 <= self.limit <= MAX_LIST_LIMIT:
            out.append(Problem("limit", f"must be 1-{MAX_LIST_LIMIT} (got {self.limit})"))
        if self.id_less_than is not None:
            check_uid(out, "id_less_than", self.id_less_than)
        if self.status is not None and self.status not in (
            SubaccountStatus.NORMAL,
            SubaccountStatus.FREEZE,
        ):
            out.append(Problem("status", "must be normal or freeze"))


def _status(value: SubaccountStatus | str) -> SubaccountStatus:
    checked: object = value
    if not isinstance(checked, str):
        # Kept as given, for the model's check to refuse with the field's name.
        return cast("SubaccountStatus", checked)
    return SubaccountStatus(value)


@attrs.frozen(kw_only=True)
class ModifyVirtualSubaccountRequest(Checked):
    """
    modify-virtual-subaccount: freeze (``status="freeze"``) or unfreeze (``"normal"``) a
    virtual sub-account of a classic master.

    Bitget requires the sub-account's rights (``permList``: ``spot_trade``,
    ``contract_trade``, ``read``) with every call and sets them to what is sent, so send
    the ones the sub-account's list row shows to change only its status. What an empty
    list would do is undocumented, so one is refused.
    """

    subaccount_uid: str
    permissions: tuple[Permission, ...] = attrs.field(converter=c.permissions)
    status: SubaccountStatus = attrs.field(converter=_status)

    def _check(self, out: Problems) -> None:
        check_uid(out, "subaccount_uid", self.subaccount_uid)
        check_permissions(
            out, "permissions", self.permissions, SUBACCOUNT_PERMISSIONS, required=True
        )
        status: object = self.status  # callers without type checking can pass anything
        if status not in (SubaccountStatus.NORMAL, SubaccountStatus.FREEZE):
            out.append(Problem("status", f"must be normal or freeze (got {self.status!s})"))


@attrs.frozen(kw_only=True)
class ModifyVirtualSubaccountResult:
    """
    What modify-virtual-subaccount answers: ``result`` is ``success`` or ``failure``.

    Bitget can answer ``failure`` under a success code; `Client.modify_virtual_subaccount`
    raises then, so a caller never takes a refused freeze for a done one.
    """

    result: str

    @property
    def succeeded(self) -> bool:
        """Whether Bitget carried the change out."""
        return self.result == "success"


@attrs.frozen(kw_only=True)
class CreatedVirtualSubaccount:
    """
    One row of a batch-create: a new virtual sub-account and its first key.

    Bitget may mask ``subaccount_name`` and ``subaccount_uid`` here; match rows to
    requests by ``label`` and read UIDs from the sub-account list.
    """

    subaccount_uid: str
    subaccount_name: str
    label: str
    api_key: str
    secret_key: Secret = attrs.field(repr=False)
    permissions: tuple[Permission, ...] = ()
    ip_list: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class VirtualSubaccount:
    """A virtual sub-account as listed."""

    subaccount_uid: str
    subaccount_name: str = ""
    label: str = ""
    status: SubaccountStatus | None = None
    permissions: tuple[Permission, ...] = ()
    created_time: dt.datetime | None = None
    updated_time: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class VirtualSubaccountPage:
    """One page of virtual-subaccount-list; ``end_id`` is the cursor for the next one."""

    subaccounts: tuple[VirtualSubaccount, ...] = ()
    end_id: str | None = None


@attrs.frozen(kw_only=True)
class CreatedVirtualSubaccounts:
    """
    The outcome of create-virtual-subaccount, per name.

    Bitget may mask the names it answers with; `Client.create_virtual_subaccounts`
    matches them back to the names requested (`matched_to`): ``refused_names`` tells
    which requested name was refused, whatever the answer showed of it.
    """

    successes: tuple[VirtualSubaccount, ...] = ()
    #: Names Bitget refused (alias taken, or the sub-account cap reached), as answered:
    #: maybe masked (``abc****@virtual-bitget.com``).
    failures: tuple[str, ...] = ()
    #: The requested names that were created, refused, or that the answer's masked
    #: rows leave open (list the sub-accounts to settle them); each in request order.
    created_names: tuple[str, ...] = ()
    refused_names: tuple[str, ...] = ()
    unsettled_names: tuple[str, ...] = ()

    def matched_to(self, request: CreateVirtualSubaccountsRequest) -> CreatedVirtualSubaccounts:
        """
        This answer with each of ``request``'s names placed as created, refused or
        unsettled: each row stands for one requested name, a masked row for any name
        whose letters it shows (the rows and names pair up one to one).
        """
        created, refused, unsettled = match_names(
            request.names, [row.subaccount_name for row in self.successes], self.failures
        )
        return attrs.evolve(
            self, created_names=created, refused_names=refused, unsettled_names=unsettled
        )
