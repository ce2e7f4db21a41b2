"""
Virtual sub-accounts: create them (alone or with a first key each), list them, and
freeze or unfreeze one (modify-virtual-subaccount, which also sets its rights).

A master holds at most ``Limits.max_subaccounts``; a name is unique across the whole
exchange, compared without case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys.testing._accounts import EmulatorAccount
from bitget_keys.testing._routes import Routes, mask
from bitget_keys.testing._store import Subaccount
from bitget_keys.testing._wire import Refused, structure

__all__ = ["SubaccountRoutes"]


class SubaccountRoutes(Routes):
    """``batch_create_virtual_subaccounts``, ``create_virtual_subaccounts``, the list."""

    endpoints = (
        ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS,
        ep.CREATE_VIRTUAL_SUBACCOUNTS,
        ep.LIST_VIRTUAL_SUBACCOUNTS,
        ep.MODIFY_VIRTUAL_SUBACCOUNT,
    )

    def _add(self, account: EmulatorAccount, name: str, label: str, wall_ms: int) -> Subaccount:
        self.store.names.add(name.lower())
        sub = Subaccount(uid=self.store.new_uid(), name=name, label=label, created_ms=wall_ms)
        self.store.subaccounts[account.uid].append(sub)
        return sub

    def batch_create_virtual_subaccounts(
        self, account: EmulatorAccount, payload: Any, wall_ms: int
    ) -> Any:
        """All the named sub-accounts with a first key each, or none of them."""
        if not isinstance(payload, list):
            raise Refused("40017", "Parameter verification failed (the body must be a list)")
        request = structure(payload, m.BatchCreateVirtualSubaccountsRequest)
        existing = self.store.subaccounts[account.uid]
        if len(existing) + len(request.items) > self.limits.max_subaccounts:
            raise Refused("40069", "The maximum number of sub-accounts created has been reached")
        for item in request.items:
            if item.name.lower() in self.store.names:
                raise Refused("40060", "subNames already exists")
        masked = self.limits.mask_batch_names
        rows = []
        for item in request.items:
            sub = self._add(account, item.name, item.label, wall_ms)
            # The first key carries the sub-account's label.
            key = self.store.key_for(item)
            key.created_ms = wall_ms
            sub.keys.append(key)
            rows.append(
                {
                    "subAccountUid": "*" * 11 if masked else sub.uid,
                    "subAccountName": mask(sub.name) if masked else sub.name,
                    "label": sub.label,
                    "subAccountApiKey": key.api_key,
                    "secretKey": key.secret_key,
                    "permList": key.permissions,
                    "ipList": key.ip_list,
                }
            )
        return rows

    def create_virtual_subaccounts(
        self, account: EmulatorAccount, payload: Any, wall_ms: int
    ) -> Any:
        """Each named sub-account that can be made; the others are listed as failures."""
        request = structure(payload, m.CreateVirtualSubaccountsRequest)
        existing = self.store.subaccounts[account.uid]
        successes, failures = [], []
        for name in request.names:
            if name.lower() in self.store.names or len(existing) >= self.limits.max_subaccounts:
                failures.append({"subaAccountName": name})
                continue
            sub = self._add(account, name, "", wall_ms)
            successes.append(
                {
                    "subaAccountUid": sub.uid,
                    "subaAccountName": sub.name,
                    "status": sub.status,
                    "label": sub.label,
                    "permList": [],
                    "cTime": str(wall_ms),
                    "uTime": str(wall_ms),
                }
            )
        return {"successList": successes, "failureList": failures}

    def list_virtual_subaccounts(
        self, account: EmulatorAccount, params: Mapping[str, str], _wall_ms: int
    ) -> Any:
        """One page of the master's sub-accounts, newest (largest UID) first."""
        request = structure(dict(params), m.ListVirtualSubaccountsRequest)
        subs = sorted(
            self.store.subaccounts[account.uid], key=lambda sub: int(sub.uid), reverse=True
        )
        if request.id_less_than is not None:
            subs = [sub for sub in subs if int(sub.uid) < int(request.id_less_than)]
        if request.status is not None:
            subs = [sub for sub in subs if sub.status == request.status]
        page = subs[: request.limit]
        masked = self.limits.mask_list_names
        return {
            "endId": page[-1].uid if page else None,
            "subAccountList": [
                {
                    "subAccountUid": sub.uid,
                    "subAccountName": mask(sub.name) if masked else sub.name,
                    "label": sub.label,
                    "status": sub.status,
                    "permList": sub.permissions,
                    "cTime": str(sub.created_ms),
                    "uTime": str(sub.updated_ms or sub.created_ms),
                }
                for sub in page
            ],
        }

    def modify_virtual_subaccount(
        self, account: EmulatorAccount, payload: Any, wall_ms: int
    ) -> Any:
        """
        Freeze (``freeze``) or unfreeze (``normal``) one of the master's sub-accounts;
        its rights become the ``permList`` sent (Bitget requires it with every call).
        """
        request = structure(payload, m.ModifyVirtualSubaccountRequest)
        sub = self.own_subaccount(account, request.subaccount_uid)
        sub.status = str(request.status)
        sub.permissions = [str(p) for p in request.permissions]
        sub.updated_ms = wall_ms
        return {"result": "success"}
