"""
Applying one plan to classic and unified (UTA) masters at once, over loopback: each
master's mode is told by Bitget (or pinned by the plan), its keys are made through its
API family, and the vault says which family made each key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from bitget_keys import Client, ClientConfig
from bitget_keys import models as m
from bitget_keys._client import AccountModes
from bitget_keys.errors import AccountInTransitionError, PlanError
from bitget_keys.provision.apply import ItemResult, Status, apply_plan
from bitget_keys.provision.family import api_of_mode
from bitget_keys.provision.journal import Journal
from bitget_keys.provision.plan import AccountSpec, parse_plan
from bitget_keys.provision.vault import SecretsVault
from bitget_keys.testing import Emulator, EmulatorAccount, Faults, Limits
from tests.provision.test_apply import ENV, MASTERS, created_keys, plan_data

VAULT_KEY = "a long vault passphrase"
#: desk1 classic, desk2 unified, desk3 unified.
MIXED = [MASTERS[0], *(attrs.evolve(master, mode="unified") for master in MASTERS[1:])]
V3_CREATES = ("create_uta_subaccount", "create_uta_subaccount_api_key")
V2_CREATES = ("batch_create_virtual_subaccounts", "create_virtual_subaccount_api_key")


async def apply_over_loopback(
    emulator: Emulator,
    tmp_path: Path,
    data: dict[str, Any],
    *,
    account_modes: AccountModes | None = None,
    max_rounds: int = 4,
) -> list[ItemResult]:
    """`apply_plan` as the CLI runs it: real clients over HTTP on 127.0.0.1."""
    plan = parse_plan(data, environ=ENV)
    clients: dict[str, Client] = {}

    def client_for(account: AccountSpec) -> Client:
        if account.name not in clients:
            clients[account.name] = Client(
                account.credentials,
                base_url=emulator.base_url,
                config=ClientConfig(sync_clock=False),
                account_modes=account_modes,
            )
        return clients[account.name]

    vault = SecretsVault.open(tmp_path / "vault.bkv", VAULT_KEY)
    try:
        with Journal(tmp_path / "state.db") as journal:
            return await apply_plan(
                plan, clients=client_for, vault=vault, journal=journal, max_rounds=max_rounds
            )
    finally:
        for client in clients.values():
            await client.aclose()


def creates(emulator: Emulator, names: tuple[str, ...]) -> int:
    return sum(
        len(lane.accepted) for (_, name), lane in emulator.audit.lanes.items() if name in names
    )


def exchange_keys(emulator: Emulator, masters: list[EmulatorAccount]) -> dict[str, set[str]]:
    """Each master's sub-accounts' key labels (the v3 note is the label), by sub label."""
    return {
        f"{master.uid}/{sub['label']}": {label for label, _ in sub["keys"]}
        for master in masters
        for sub in emulator.exchange.subaccounts(master.uid)
    }


async def test_a_plan_for_classic_masters_applies_to_unified_ones_unchanged(
    tmp_path: Path,
) -> None:
    """
    One plan, written with classic vocabulary, over one classic and two unified masters:
    everything is created through the right family, every secret is in the vault with
    its family, and a re-run sends no create.
    """
    data = plan_data(accounts=3, subaccounts=4, keys=2)
    async with Emulator(MIXED, limits=Limits(ip_limit=None)) as emulator:
        results = await apply_over_loopback(emulator, tmp_path, data)
        assert {r.status for r in results} == {Status.CREATED}, results
        assert sum(r.kind == "key" for r in results) == 3 * 4 * 2
        # desk1 went through v2 only; desk2 and desk3 through v3 only.
        lanes = {(uid, name) for (uid, name), lane in emulator.audit.lanes.items() if lane.accepted}
        assert {name for uid, name in lanes if uid == MASTERS[0].uid} & set(V3_CREATES) == set()
        for master in MIXED[1:]:
            used = {name for uid, name in lanes if uid == master.uid}
            assert set(V3_CREATES) <= used
            assert not used & set(V2_CREATES)
        # Every key the exchange holds is in the vault with its secret, and its family.
        keys = created_keys(emulator)
        vault = SecretsVault.open(tmp_path / "vault.bkv", VAULT_KEY)
        stored = {record.api_key: record for record in vault.records()}
        assert {k: r.secret().reveal() for k, r in stored.items()} == keys
        families = {record.master_uid: record.api_family for record in stored.values()}
        assert families == {MASTERS[0].uid: "v2", MASTERS[1].uid: "v3", MASTERS[2].uid: "v3"}
        # The unified keys are what the plan's classic vocabulary maps to.
        unified = [r for r in stored.values() if r.api_family == "v3"]
        assert {r.label for r in unified} == {"first", "extra0"}
        assert all(set(r.permissions) == {"uta_trade"} for r in unified)
        # Names became lowercase usernames, labels notes: the plan's labels on Bitget.
        assert exchange_keys(emulator, MIXED[1:2]) == {
            f"{MASTERS[1].uid}/sub1x{s}": {"first", "extra0"} for s in range(4)
        }
        before = creates(emulator, V2_CREATES + V3_CREATES)
        again = await apply_over_loopback(emulator, tmp_path, data)
        assert {r.status for r in again} == {Status.UNCHANGED}
        assert creates(emulator, V2_CREATES + V3_CREATES) == before
        # The mode is asked once per master (the classic one gets 40084), then cached for
        # the process: the second run asks nothing.
        settings = sum(
            len(lane.accepted) + lane.rejected
            for (_, name), lane in emulator.audit.lanes.items()
            if name == "account_settings"
        )
        assert settings == 3


async def test_a_unified_plan_may_use_unified_vocabulary(tmp_path: Path) -> None:
    """Pinned to unified: 20-letter names and uta_* permissions; nothing asks the mode."""
    data: dict[str, Any] = {
        "defaults": {"ip_list": ["203.0.113.7"]},
        "accounts": [
            {
                "name": "desk2",
                "credentials": "env:DESK2",
                "mode": "unified",
                "subaccounts": [
                    {
                        "name": "marketmakingdeskone",
                        "label": "a label of more than twenty characters",
                        "keys": [
                            {"label": "mgt-key", "permissions": ["uta_mgt", "uta_trade"]},
                            {"label": "reader", "permissions": ["read"]},
                        ],
                    }
                ],
            }
        ],
    }
    async with Emulator(MIXED, limits=Limits(ip_limit=None)) as emulator:
        results = await apply_over_loopback(emulator, tmp_path, data)
        assert {r.status for r in results} == {Status.CREATED}
        assert creates(emulator, ("account_settings",)) == 0
        (sub,) = emulator.exchange.subaccounts(MASTERS[1].uid)
        assert sub["name"] == "marketmakingdeskone"
        vault = SecretsVault.open(tmp_path / "vault.bkv", VAULT_KEY)
        rights = {r.label: (set(r.permissions), r.perm_type) for r in vault.records()}
        assert rights == {
            "mgt-key": ({"uta_mgt", "uta_trade"}, "read_write"),
            "reader": ({"uta_trade"}, "read_only"),
        }


async def test_what_unified_masters_cannot_do_stops_the_plan_before_any_create(
    tmp_path: Path,
) -> None:
    """
    An auto account whose master turns out unified, with a permission that has no unified
    equivalent: the plan fails, located, and no master (not even the classic one) got a
    create.
    """
    data = plan_data(accounts=2, subaccounts=2, keys=2)
    data["accounts"][1]["subaccounts"][1]["keys"][1]["permissions"] = ["spot_trade", "transfer"]
    data["accounts"][1]["copy_api_key"] = True
    async with Emulator(MIXED, limits=Limits(ip_limit=None)) as emulator:
        with pytest.raises(PlanError) as info:
            await apply_over_loopback(emulator, tmp_path, data)
        assert creates(emulator, V2_CREATES + V3_CREATES) == 0
    fields = info.value.fields
    assert "accounts[1].subaccounts[1].keys[1].permissions[1]" in fields
    assert "accounts[1].copy_api_key" in fields
    assert "transfer" in str(info.value)


async def test_a_plan_pinned_to_the_wrong_mode_fails_its_account_alone(tmp_path: Path) -> None:
    """
    Pinned unified over a classic master: the first v3 read gets 40084; that account fails
    with what to do, nothing is created there, and the other master is provisioned.
    """
    data = plan_data(accounts=2, subaccounts=2, keys=1)
    data["accounts"][0]["mode"] = "unified"
    async with Emulator(MIXED, limits=Limits(ip_limit=None)) as emulator:
        results = await apply_over_loopback(emulator, tmp_path, data)
        failed = [r for r in results if r.status is Status.FAILED]
        assert [(r.account, r.kind) for r in failed] == [("desk1", "account")]
        assert "40084" in failed[0].detail
        assert "Classic Account mode" in failed[0].detail
        # The plan's pin is what is wrong: the detail says so and what to write instead.
        assert 'the plan pins mode = "unified" for desk1' in failed[0].detail
        assert 'pin mode = "classic" or leave mode out' in failed[0].detail
        assert emulator.exchange.subaccounts(MASTERS[0].uid) == []
        assert len(emulator.exchange.subaccounts(MASTERS[1].uid)) == 2


@pytest.mark.parametrize("seed", [1, 2])
async def test_unified_answers_lost_become_orphans_never_duplicates(
    tmp_path: Path, seed: int
) -> None:
    """
    With answers of v3 creates lost after they took effect and 5xx answers before, the
    exchange ends with exactly the plan, every key whose answer arrived is in the vault,
    and every other is reported as an orphan.
    """
    faults = Faults(
        drop_after_commit=0.25,
        server_error=0.1,
        endpoints=frozenset(V3_CREATES),
        seed=seed,
    )
    data = plan_data(accounts=3, subaccounts=6, keys=2)
    async with Emulator(MIXED, limits=Limits(ip_limit=None), faults=faults) as emulator:
        # At these fault rates a sub-account's create fails or loses its answer in about
        # one round of three, and its keys come after it: over 12 sub-accounts the
        # default 4 rounds run out now and then (the run then reports the rest failed,
        # as it should). The property here is what the rounds leave behind, so the run
        # gets enough of them for its result not to depend on the faults' order.
        results = await apply_over_loopback(emulator, tmp_path, data, max_rounds=12)
        plan_keys = exchange_keys(emulator, MIXED[1:])
    statuses = sorted(
        {
            (r.kind, r.status.value, r.detail)
            for r in results
            if r.status not in (Status.CREATED, Status.ORPHAN)
        }
    )
    assert plan_keys == {
        f"{MASTERS[a].uid}/sub{a}x{s}": {"first", "extra0"} for a in (1, 2) for s in range(6)
    }, statuses
    keys = created_keys(emulator)
    vault = SecretsVault.open(tmp_path / "vault.bkv", VAULT_KEY)
    stored = {record.api_key for record in vault.records()}
    orphans = {r.api_key for r in results if r.status is Status.ORPHAN}
    assert orphans, "the seed drops some answers"
    assert stored | orphans == set(keys), (sorted(set(keys) - stored - orphans), statuses)
    # A unified master can delete a key: the orphan's report says how.
    assert all(
        "delete_uta_subaccount_api_key" in r.detail
        for r in results
        if r.status is Status.ORPHAN and r.account != "desk1"
    )
    assert not stored & orphans
    assert all(keys[record.api_key] == record.secret().reveal() for record in vault.records())


async def test_a_master_whose_mode_changed_is_read_again_through_the_other_family(
    tmp_path: Path,
) -> None:
    """
    The mode known for a master is stale (it was classic, it is unified now): the first
    read gets 40085, which carried nothing out, so the account is read once more through
    v3 and provisioned there; only that one refusal was spent.
    """
    modes = AccountModes()
    modes.record(MASTERS[1].uid, m.AccountMode.CLASSIC)
    data = plan_data(accounts=2, subaccounts=2, keys=2)
    async with Emulator(MIXED, limits=Limits(ip_limit=None)) as emulator:
        results = await apply_over_loopback(emulator, tmp_path, data, account_modes=modes)
        assert {r.status for r in results} == {Status.CREATED}, results
        refused = {
            name: lane.rejected
            for (uid, name), lane in emulator.audit.lanes.items()
            if uid == MASTERS[1].uid and lane.rejected
        }
        assert refused == {"list_virtual_subaccounts": 1}
        accepted = {
            name
            for (uid, name), lane in emulator.audit.lanes.items()
            if uid == MASTERS[1].uid and lane.accepted
        }
        assert set(V3_CREATES) <= accepted
        assert not accepted & set(V2_CREATES)
        assert len(emulator.exchange.subaccounts(MASTERS[1].uid)) == 2
    assert modes.get(MASTERS[1].uid) is m.AccountMode.UNIFIED


@pytest.mark.parametrize("mode", [m.AccountMode.UPGRADING, m.AccountMode.SWITCHING])
async def test_a_master_between_modes_is_served_by_neither_family(mode: m.AccountMode) -> None:
    """Upgrading or switching (about a minute): no family is picked, nothing is sent."""
    async with Client(MASTERS[0].credentials, base_url="http://127.0.0.1:9") as client:
        with pytest.raises(AccountInTransitionError) as info:
            api_of_mode(client, mode)
    assert f"is {mode.value} between classic and unified" in str(info.value)
    assert "nothing was sent" in str(info.value)
