"""
Drift, revokes, prune and freezes applied over loopback, for classic (v2) and unified
(v3) masters: what changed behind the plan's back is restored, what the plan marks
absent (or, with prune, no longer names) is revoked (deleted, or neutralised where
Bitget can't delete), and each failure is retried and reported.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from bitget_keys import Client, ClientConfig, Secret
from bitget_keys import models as m
from bitget_keys.provision.apply import ItemResult, Status, apply_plan
from bitget_keys.provision.audit_log import scan_audit_log
from bitget_keys.provision.drift import RevokeReason
from bitget_keys.provision.family import Family, api_of_family
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.key_ops import NEUTRAL_IP_LIST
from bitget_keys.provision.plan import AccountSpec, KeySpec, parse_plan
from bitget_keys.provision.revoke_flows import NOT_HELD_DETAIL
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.provision.vault_records import Stage
from bitget_keys.testing import Emulator, EmulatorAccount, Faults, Limits
from tests.provision.test_apply import ENV, MASTERS

VAULT_KEY = "a long vault passphrase"
IP = "203.0.113.7"
FAMILIES: list[Family] = ["v2", "v3"]


def master(family: Family, index: int = 0) -> EmulatorAccount:
    found = MASTERS[index]
    return found if family == "v2" else attrs.evolve(found, mode="unified")


def subaccount(letter: str, *keys: dict[str, Any], **more: Any) -> dict[str, Any]:
    keys = keys or (
        {"label": "first", "permissions": ["spot_trade"]},
        {"label": "extra", "permissions": ["spot_trade"]},
    )
    return {"name": f"{letter * 3}subac", "label": f"sub{letter}", "keys": list(keys), **more}


#: Sub-account keys with "extra" marked absent.
EXTRA_ABSENT = (
    {"label": "first", "permissions": ["spot_trade"]},
    {"label": "extra", "permissions": ["spot_trade"], "state": "absent"},
)


def plan_data(*subs: dict[str, Any], desks: int = 1) -> dict[str, Any]:
    """``subs`` under desk1; each further desk has its own sub-account ``c``, ``d``..."""
    accounts = [{"name": "desk1", "credentials": "env:DESK1", "subaccounts": list(subs)}]
    accounts += [
        {
            "name": f"desk{d}",
            "credentials": f"env:DESK{d}",
            "subaccounts": [subaccount("cdefgh"[d - 2])],
        }
        for d in range(2, desks + 1)
    ]
    return {"defaults": {"ip_list": [IP]}, "accounts": accounts}


class Run:
    """Applies plans to one emulator over HTTP on 127.0.0.1, with one vault and journal."""

    def __init__(self, emulator: Emulator, tmp_path: Path) -> None:
        self.emulator = emulator
        self.tmp_path = tmp_path
        self.clients: dict[str, Client] = {}

    def client(self, account: AccountSpec) -> Client:
        if account.name not in self.clients:
            self.clients[account.name] = Client(
                account.credentials,
                base_url=self.emulator.base_url,
                config=ClientConfig(sync_clock=False),
            )
        return self.clients[account.name]

    @property
    def audit_path(self) -> Path:
        return self.tmp_path / "state.db.audit.jsonl"

    def audited(self) -> list[tuple[str, str, str]]:
        """The audit log's (operation, target, outcome) entries, its chain checked."""
        scan = scan_audit_log(self.audit_path)
        assert scan.check.problems == ()
        return [(e.operation, e.target, e.outcome) for _, e in scan.entries]

    def vault(self) -> SecretsVault:
        return SecretsVault.open(self.tmp_path / "vault.bkv", VAULT_KEY)

    async def apply(
        self, data: dict[str, Any], *, prune: bool = False, max_rounds: int = 4
    ) -> list[ItemResult]:
        plan = parse_plan(data, environ=ENV)
        with Journal(self.tmp_path / "state.db") as journal:
            return await apply_plan(
                plan,
                clients=self.client,
                vault=self.vault(),
                journal=journal,
                prune=prune,
                max_rounds=max_rounds,
                audit_log=self.audit_path,
            )

    async def keys(self, family: Family, desk: int, uid: str) -> list[m.VirtualSubaccountAPIKey]:
        plan = parse_plan(plan_data(desks=desk), environ=ENV)
        api = api_of_family(self.client(plan.accounts[desk - 1]), family)
        return list(await api.list_keys(uid))

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()


@contextlib.asynccontextmanager
async def running(tmp_path: Path, *owners: EmulatorAccount) -> AsyncIterator[Run]:
    """An emulator of ``owners`` over loopback, and a `Run` against it."""
    async with Emulator(list(owners), limits=Limits(ip_limit=None)) as emulator:
        run = Run(emulator, tmp_path)
        try:
            yield run
        finally:
            await run.aclose()


def sub_uid(emulator: Emulator, owner: EmulatorAccount, label: str) -> str:
    (uid,) = [s["uid"] for s in emulator.exchange.subaccounts(owner.uid) if s["label"] == label]
    return str(uid)


def tamper(
    run: Run, key: m.VirtualSubaccountAPIKey, permissions: list[str], ips: list[str]
) -> None:
    """A change made behind the plan's back (in Bitget's web UI)."""
    run.emulator.exchange.tamper_key(key.api_key, permissions=permissions, ip_list=ips)


async def frozen(run: Run, family: Family, label: str) -> bool:
    """Whether the master's sub-account ``label`` is frozen, as its list shows."""
    api = api_of_family(run.client(parse_plan(plan_data(), environ=ENV).accounts[0]), family)
    (sub,) = [sub for sub in await api.list_subaccounts() if sub.label == label]
    return sub.status is not None and sub.status.frozen


def by_status(results: list[ItemResult]) -> dict[Status, list[str]]:
    found: dict[Status, list[str]] = {}
    for result in results:
        found.setdefault(result.status, []).append(result.target)
    return found


@pytest.mark.parametrize("family", FAMILIES)
async def test_drift_behind_the_plans_back_is_restored_by_apply(
    tmp_path: Path, family: Family
) -> None:
    owner = master(family)
    data = plan_data(subaccount("a"))
    async with running(tmp_path, owner) as run:
        emulator = run.emulator
        assert {r.status for r in await run.apply(data)} == {Status.CREATED}
        uid = sub_uid(emulator, owner, "suba")
        keys = {k.label: k for k in await run.keys(family, 1, uid)}
        first = keys["suba" if family == "v2" else "first"]
        added = ["spot_trade", "contract_trade"] if family == "v2" else ["uta_trade", "uta_mgt"]
        tamper(run, first, added, [IP])
        extra = keys["extra"]
        tamper(run, extra, [str(p) for p in extra.permissions], ["198.51.100.9"])
        results = await run.apply(data)
        assert sorted(by_status(results)[Status.MODIFIED]) == ["suba/extra", "suba/first"]
        after = {k.label: k for k in await run.keys(family, 1, uid)}
        assert set(after[first.label].permissions) == set(keys[first.label].permissions)
        assert after["extra"].ip_list == (IP,)
        assert sorted(run.audited()) == [
            ("modify", "suba/extra", "ok"),
            ("modify", "suba/first", "ok"),
        ]
        # As planned now: nothing to do.
        assert {r.status for r in await run.apply(data)} == {Status.UNCHANGED}


@pytest.mark.parametrize("family", FAMILIES)
async def test_an_absent_key_is_revoked_and_staged_revoked_in_the_vault(
    tmp_path: Path, family: Family
) -> None:
    owner = master(family)
    async with running(tmp_path, owner) as run:
        emulator = run.emulator
        await run.apply(plan_data(subaccount("a")))
        uid = sub_uid(emulator, owner, "suba")
        (extra,) = [k for k in await run.keys(family, 1, uid) if k.label == "extra"]
        gone = subaccount("a", *EXTRA_ABSENT)
        results = await run.apply(plan_data(gone))
        (revoked,) = [r for r in results if r.kind == "revoke"]
        assert revoked.api_key == extra.api_key
        listed = {k.api_key: k for k in await run.keys(family, 1, uid)}
        record = {r.api_key: r for r in run.vault().records()}[extra.api_key]
        assert record.stage is Stage.REVOKED
        if family == "v3":
            assert revoked.status is Status.REVOKED
            assert extra.api_key not in listed
            assert record.revoked_how == "deleted"
        else:
            assert revoked.status is Status.NEUTRALISED
            assert listed[extra.api_key].permissions == ()
            assert listed[extra.api_key].ip_list == NEUTRAL_IP_LIST
            assert record.revoked_how == "neutralised"
        assert run.audited() == [("revoke", "suba/extra", "ok")]
        # Revoked already: a re-run revokes nothing and creates nothing.
        again = await run.apply(plan_data(gone))
        assert {r.status for r in again} == {Status.UNCHANGED}


@pytest.mark.parametrize("family", FAMILIES)
async def test_prune_revokes_exactly_the_unplanned_keys(tmp_path: Path, family: Family) -> None:
    """
    Under the named master: a key with a label no plan key has, and every key of a
    sub-account the plan no longer names. A rotation's PREVIOUS key with a planned label
    survives, and so does everything under a master the plan does not name.
    """
    owners = [master(family, 0), master(family, 1)]
    async with running(tmp_path, *owners) as run:
        emulator = run.emulator
        both = plan_data(subaccount("a"), subaccount("b"), desks=2)
        await run.apply(both)
        a_uid = sub_uid(emulator, owners[0], "suba")
        b_uid = sub_uid(emulator, owners[0], "subb")
        # A key made by hand with a label no plan key has, in the vault so that a
        # classic master can neutralise it.
        planless = subaccount(
            "a",
            {"label": "first", "permissions": ["spot_trade"]},
            {"label": "extra", "permissions": ["spot_trade"]},
            {"label": "handmade", "permissions": ["spot_trade"]},
        )
        await run.apply(plan_data(planless, subaccount("b")))
        (handmade,) = [k for k in await run.keys(family, 1, a_uid) if k.label == "handmade"]
        # A rotation of "extra" under way: the old key PREVIOUS, a new one CURRENT.
        vault = run.vault()
        records = {r.api_key: r for r in vault.records()}
        (extra,) = [k for k in await run.keys(family, 1, a_uid) if k.label == "extra"]
        vault.append(records[extra.api_key].staged(Stage.PREVIOUS))
        api = api_of_family(run.client(parse_plan(plan_data(), environ=ENV).accounts[0]), family)
        spec = KeySpec(label="extra", permissions=(m.Permission.SPOT_TRADE,), ip_list=(IP,))
        rotated = await api.create_key(a_uid, spec, Secret("Rotated12345"))
        vault.append(
            attrs.evolve(
                records[extra.api_key], api_key=rotated.api_key, secret_key=rotated.secret_key
            )
        )
        before_b = {k.api_key for k in await run.keys(family, 1, b_uid)}
        other_master = copy.deepcopy(emulator.exchange.subaccounts(owners[1].uid))
        # desk1 alone now names only "suba": prune.
        results = await run.apply(plan_data(subaccount("a")), prune=True)
        revoked = sorted(r.api_key or "" for r in results if r.kind == "revoke")
        assert revoked == sorted({handmade.api_key, *before_b})
        assert all(
            r.status in {Status.REVOKED, Status.NEUTRALISED} for r in results if r.kind == "revoke"
        )
        survivors = {k.api_key for k in await run.keys(family, 1, a_uid)}
        assert {extra.api_key, rotated.api_key} <= survivors  # the rotation's keys
        if family == "v3":
            assert handmade.api_key not in survivors
        assert emulator.exchange.subaccounts(owners[1].uid) == other_master
        # Pruned: a second prune has nothing left to do.
        again = await run.apply(plan_data(subaccount("a")), prune=True)
        assert not [r for r in again if r.kind == "revoke"]


@pytest.mark.parametrize("family", FAMILIES)
async def test_an_absent_subaccount_loses_its_keys_and_is_frozen(
    tmp_path: Path, family: Family
) -> None:
    owner = master(family)
    async with running(tmp_path, owner) as run:
        emulator = run.emulator
        await run.apply(plan_data(subaccount("a"), subaccount("b")))
        results = await run.apply(plan_data(subaccount("a"), subaccount("b", state="absent")))
        statuses = by_status(results)
        assert statuses[Status.FROZEN] == ["subb"]
        revoked = [r for r in results if r.kind == "revoke"]
        assert len(revoked) == 2
        assert all(str(RevokeReason.SUBACCOUNT_ABSENT) in r.detail for r in revoked)
        uid = sub_uid(emulator, owner, "subb")
        left = await run.keys(family, 1, uid)
        if family == "v3":
            assert left == []
        else:
            assert all(k.permissions == () and k.ip_list == NEUTRAL_IP_LIST for k in left)
        assert await frozen(run, family, "subb")


async def test_a_failed_revocation_is_retried_and_then_reported(tmp_path: Path) -> None:
    owner = master("v3")
    async with running(tmp_path, owner) as run:
        emulator = run.emulator
        await run.apply(plan_data(subaccount("a")))
        gone = subaccount("a", *EXTRA_ABSENT)
        emulator.faults = Faults(
            server_error=1.0, endpoints=frozenset({"delete_uta_subaccount_api_key"})
        )
        results = await run.apply(plan_data(gone), max_rounds=3)
        (revoke,) = [r for r in results if r.kind == "revoke"]
        assert revoke.status is Status.UNKNOWN
        # Every round tried it again.
        assert emulator.server_errors.count("delete_uta_subaccount_api_key") == 3
        with Journal(tmp_path / "state.db") as journal:
            attempts = [e for e in journal.entries() if e.kind == "revoke"]
        assert len(attempts) == 3
        assert run.audited() == [("revoke", "suba/extra", "unknown")] * 3
        emulator.faults = Faults()
        results = await run.apply(plan_data(gone))
        (revoke,) = [r for r in results if r.kind == "revoke"]
        assert revoke.status is Status.REVOKED
        assert run.audited()[-1] == ("revoke", "suba/extra", "ok")


async def test_a_classic_key_whose_passphrase_is_not_held_is_reported(tmp_path: Path) -> None:
    owner = master("v2")
    async with running(tmp_path, owner) as run:
        emulator = run.emulator
        await run.apply(plan_data(subaccount("a")))
        uid = sub_uid(emulator, owner, "suba")
        plan = parse_plan(plan_data(), environ=ENV)
        # A key made in the web UI: its passphrase is no one's here.
        await run.client(plan.accounts[0]).create_virtual_subaccount_api_key(
            m.CreateVirtualSubaccountAPIKeyRequest(
                subaccount_uid=uid,
                passphrase="ByHand12345",
                label="byhand",
                ip_list=(IP,),
                permissions=(m.Permission.READ,),
            )
        )
        results = await run.apply(plan_data(subaccount("a")), prune=True)
        (revoke,) = [r for r in results if r.kind == "revoke"]
        assert revoke.status is Status.FAILED
        assert revoke.detail == NOT_HELD_DETAIL
        assert run.audited() == [("revoke", "suba/byhand", "refused")]
        # Nothing about it changed, and the planned keys are as they were.
        (byhand,) = [k for k in await run.keys("v2", 1, uid) if k.label == "byhand"]
        assert byhand.permissions == (m.Permission.READ,)
        assert {r.status for r in results if r.kind != "revoke"} == {Status.UNCHANGED}


async def test_an_absent_broker_key_is_deleted(tmp_path: Path) -> None:
    broker = attrs.evolve(MASTERS[0], broker=True)
    data: dict[str, Any] = {
        "defaults": {"ip_list": [IP]},
        "accounts": [
            {
                "name": "desk1",
                "credentials": "env:DESK1",
                "broker_keys": [
                    {
                        "sub_uid": "5550001",
                        "api_key": "bg_broker_sub",
                        "passphrase": "env:DESK1_PASSPHRASE",
                        "permissions": ["spot_trade"],
                        "perm_type": "readonly",
                        "state": "absent",
                    }
                ],
            }
        ],
    }
    async with running(tmp_path, broker) as run:
        key = {
            "api_key": "bg_broker_sub",
            "passphrase": "BrokerSub11",
            "permissions": ["spot_trade"],
        }
        run.emulator.exchange.add_broker_subaccount(broker.uid, "5550001", key)
        (result,) = await run.apply(data)
        assert (result.kind, result.status, result.detail) == (
            "broker_key",
            Status.REVOKED,
            "deleted",
        )
        client = run.client(parse_plan(data, environ=ENV).accounts[0])
        assert await client.list_broker_subaccount_api_keys("5550001") == ()
        assert run.audited() == [("revoke", "5550001/bg_broker_sub", "ok")]
        # Gone, as planned: nothing more to do.
        (again,) = await run.apply(data)
        assert (again.status, again.detail) == (Status.UNCHANGED, "absent")
        assert len(run.audited()) == 1


@pytest.mark.parametrize("family", FAMILIES)
async def test_frozen_freezes_and_unfreezes_only_when_the_plan_says_so(
    tmp_path: Path, family: Family
) -> None:
    owner = master(family)
    async with running(tmp_path, owner) as run:
        await run.apply(plan_data(subaccount("a")))
        results = await run.apply(plan_data(subaccount("a", frozen=True)))
        assert by_status(results)[Status.FROZEN] == ["suba"]
        assert await frozen(run, family, "suba")
        # Not managed: a sub-account frozen is left frozen.
        assert {r.status for r in await run.apply(plan_data(subaccount("a")))} == {Status.UNCHANGED}
        assert await frozen(run, family, "suba")
        results = await run.apply(plan_data(subaccount("a", frozen=False)))
        assert by_status(results)[Status.UNFROZEN] == ["suba"]
        assert not await frozen(run, family, "suba")
        assert [entry[0] for entry in run.audited()] == ["freeze", "unfreeze"]
