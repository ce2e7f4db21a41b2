"""The pure drift and revoke diff: which live key is planned, what differs, what goes."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from bitget_keys import models as m
from bitget_keys.errors import PlanError
from bitget_keys.provision.diff import DriftContext, LiveState, diff_account
from bitget_keys.provision.drift import RevokeReason, planned_key
from bitget_keys.provision.family import Family
from bitget_keys.provision.key_ops import NEUTRAL_IP_LIST
from bitget_keys.provision.plan import AccountSpec, parse_plan
from bitget_keys.provision.plan_changes import account_changes, summarize
from bitget_keys.provision.vault_records import Stage
from tests.provision.test_apply import ENV

IP = "203.0.113.7"
UID = "7000001"


def account(**sub: Any) -> AccountSpec:
    keys = sub.pop(
        "keys",
        [
            {"label": "first", "permissions": ["spot_trade"]},
            {"label": "trade", "permissions": ["spot_trade", "contract_trade"]},
        ],
    )
    data = {
        "defaults": {"ip_list": [IP]},
        "accounts": [
            {
                "name": "desk1",
                "credentials": "env:DESK1",
                "subaccounts": [{"name": "alphaabc", "label": "alpha", "keys": keys, **sub}],
            }
        ],
    }
    return parse_plan(data, environ=ENV).accounts[0]


def key(
    api_key: str, label: str, permissions: tuple[str, ...] = ("spot_trade",), ips: Any = (IP,)
) -> m.VirtualSubaccountAPIKey:
    return m.VirtualSubaccountAPIKey(
        subaccount_uid=UID,
        api_key=api_key,
        label=label,
        permissions=tuple(m.permission(p) for p in permissions),
        ip_list=tuple(ips),
    )


def live(*keys: m.VirtualSubaccountAPIKey, status: str = "normal", **more: Any) -> LiveState:
    sub = m.VirtualSubaccount(
        subaccount_uid=UID,
        subaccount_name="alphaabc@virtual-bitget.com",
        label="alpha",
        status=m.SubaccountStatus(status),
    )
    return LiveState(
        subaccounts=(sub, *more.get("others", ())), keys={UID: keys, **more.get("keys", {})}
    )


TRADE = ("spot_trade", "contract_trade")


def test_a_key_as_planned_has_no_drift() -> None:
    diff = diff_account(
        account(), live(key("k1", "alpha"), key("k2", "trade", TRADE)), DriftContext(family="v2")
    )
    assert diff.empty


def test_a_permission_added_and_a_whitelist_changed_are_drift() -> None:
    state = live(
        key("k1", "alpha", ("spot_trade", "wallet_transfer")),
        key("k2", "trade", TRADE, ips=("198.51.100.1", IP)),
    )
    diff = diff_account(account(), state, DriftContext(family="v2"))
    assert not diff.new_keys
    found = {c.key.label: c.differences for c in diff.key_changes}
    assert {d.name: (d.live, d.planned) for d in found["first"]} == {
        "permissions": (["spot_trade", "wallet_transfer"], ["spot_trade"])
    }
    assert {d.name: (d.live, d.planned) for d in found["trade"]} == {
        "ip_list": (["198.51.100.1", IP], [IP])
    }
    # Without a context, the diff is the creates' diff, as before.
    assert diff_account(account(), state).empty


def test_unified_keys_compare_the_mapped_rights() -> None:
    """spot_trade and contract_trade are uta_trade on a unified key: no drift."""
    state = live(key("k1", "alpha", ("uta_trade",)), key("k2", "trade", ("uta_trade",)))
    assert diff_account(account(), state, DriftContext(family="v3")).empty
    drifted = live(key("k1", "alpha", ("uta_trade", "uta_mgt")), key("k2", "trade", ("uta_trade",)))
    diff = diff_account(account(), drifted, DriftContext(family="v3"))
    (change,) = diff.key_changes
    assert change.differences[0].live == ["uta_mgt", "uta_trade"]
    assert change.differences[0].planned == ["uta_trade"]


def test_the_vault_current_key_is_the_planned_one_and_rotation_keys_are_left_alone() -> None:
    stages = {"old": Stage.PREVIOUS, "new": Stage.CURRENT, "next": Stage.PENDING}
    state = live(
        key("k1", "alpha"),
        key("old", "trade", ("read",)),
        key("new", "trade", TRADE),
        key("next", "trade", ("read",)),
    )
    diff = diff_account(account(), state, DriftContext(family="v2", stages=stages, prune=True))
    assert diff.empty, diff
    # Two usable keys with the label and none current: no one can tell which is planned.
    assert planned_key([key("a", "trade"), key("b", "trade")], {}) is None
    assert planned_key([key("a", "trade"), key("b", "trade")], {"b": Stage.PREVIOUS}) == key(
        "a", "trade"
    )


def test_a_neutralised_key_counts_for_nothing() -> None:
    gone = key("k2", "trade", (), ips=NEUTRAL_IP_LIST)
    diff = diff_account(account(), live(key("k1", "alpha"), gone), DriftContext(family="v2"))
    assert [missing.key.label for missing in diff.new_keys] == ["trade"]
    assert not diff.revokes
    assert not diff.key_changes


def test_absent_keys_are_revoked_and_never_created() -> None:
    plan = account(
        keys=[
            {"label": "first", "permissions": ["spot_trade"]},
            {"label": "trade", "permissions": ["spot_trade"], "state": "absent"},
            {"label": "gone", "permissions": ["read"], "state": "absent"},
        ]
    )
    state = live(key("k1", "alpha"), key("k2", "trade"), key("k3", "trade", ("read",)))
    stages = {"k3": Stage.PREVIOUS}
    diff = diff_account(plan, state, DriftContext(family="v2", stages=stages))
    assert not diff.new_keys
    assert [(r.live.api_key, r.reason) for r in diff.revokes] == [("k2", RevokeReason.ABSENT)]


def test_an_absent_subaccount_loses_every_key_and_is_frozen() -> None:
    plan = account(state="absent")
    state = live(key("k1", "alpha"), key("k2", "other"), key("k3", "x", (), ips=NEUTRAL_IP_LIST))
    diff = diff_account(plan, state, DriftContext(family="v3", stages={"k2": Stage.PREVIOUS}))
    assert not diff.new_subaccounts
    assert not diff.new_keys
    assert sorted(r.live.api_key for r in diff.revokes) == ["k1", "k2"]
    assert [(f.label, f.frozen) for f in diff.freezes] == [("alpha", True)]
    # Frozen already: only the keys.
    frozen = diff_account(plan, live(status="freeze"), DriftContext(family="v3"))
    assert frozen.empty
    # Absent and not there: nothing to do, and nothing created.
    assert diff_account(plan, LiveState(), DriftContext(family="v3")).empty


def test_frozen_is_managed_only_when_the_plan_says_so() -> None:
    keys = (key("k1", "alpha"), key("k2", "trade", TRADE))
    assert diff_account(account(), live(*keys, status="freeze"), DriftContext(family="v2")).empty
    diff = diff_account(account(frozen=True), live(*keys), DriftContext(family="v2"))
    assert [(f.frozen, f.live.status) for f in diff.freezes] == [(True, m.SubaccountStatus.NORMAL)]
    thaw = diff_account(
        account(frozen=False), live(*keys, status="freeze"), DriftContext(family="v2")
    )
    assert [f.frozen for f in thaw.freezes] == [False]


def test_prune_revokes_exactly_what_the_plan_no_longer_names() -> None:
    other = m.VirtualSubaccount(
        subaccount_uid="7000002", label="stray", status=m.SubaccountStatus.NORMAL
    )
    shared = m.VirtualSubaccount(subaccount_uid="7000003", label="theirs")
    state = live(
        key("k1", "alpha"),
        key("k2", "trade", TRADE),
        key("k3", "legacy"),
        key("k4", "legacy2"),
        key("k5", "dead", (), ips=NEUTRAL_IP_LIST),
        others=(other, shared),
        keys={
            "7000002": (
                m.VirtualSubaccountAPIKey(subaccount_uid="7000002", api_key="s1", label="a"),
            ),
            "7000003": (
                m.VirtualSubaccountAPIKey(subaccount_uid="7000003", api_key="t1", label="b"),
            ),
        },
    )
    context = DriftContext(
        family="v2",
        prune=True,
        stages={"k4": Stage.PENDING},
        planned_elsewhere=frozenset({"theirs"}),
    )
    diff = diff_account(account(), state, context)
    assert sorted((r.subaccount, r.live.api_key) for r in diff.revokes) == [
        ("alpha", "k3"),
        ("stray", "s1"),
    ]
    assert {r.reason for r in diff.revokes} == {RevokeReason.PRUNE}
    assert not diff.freezes  # prune never freezes
    # Not asked to prune: nothing revoked.
    assert not diff_account(account(), state, DriftContext(family="v2")).revokes


def test_plan_changes_show_drift_and_revokes_and_count_them() -> None:
    plan = account(
        frozen=True,
        keys=[
            {"label": "first", "permissions": ["spot_trade"]},
            {"label": "trade", "permissions": ["spot_trade"], "state": "absent"},
        ],
    )
    state = live(key("k1", "alpha", ("spot_trade", "read")), key("k2", "trade"))
    ways: tuple[tuple[Family, str], ...] = (
        ("v2", "neutralise (classic keys cannot be deleted)"),
        ("v3", "delete"),
    )
    for family, how in ways:
        changes = account_changes(
            plan, family, state, copy_key=False, context=DriftContext(family=family)
        )
        shown = {(c.action.value, c.address): c.to_json()["attributes"] for c in changes.changes}
        if family == "v2":
            assert shown[("change", "alpha/first")]["permissions"] == {
                "old": ["read", "spot_trade"],
                "new": ["spot_trade"],
            }
        assert shown[("change", "alpha")] == {"frozen": {"old": False, "new": True}}
        assert shown[("revoke", "alpha/trade")]["how"] == how
        assert shown[("revoke", "alpha/trade")]["api_key"] == "k2"
    summary = summarize([changes])
    assert (summary.create, summary.revoke) == (0, 1)
    assert summary.line().endswith("1 to revoke.")


@pytest.mark.parametrize(
    ("where", "value", "rule"),
    [
        (
            "keys",
            [{"label": "first", "permissions": ["read"], "state": "gone"}],
            "subaccounts[0].keys[0].state",
        ),
        ("state", "deleted", "subaccounts[0].state"),
        ("frozen", "yes", "subaccounts[0].frozen"),
    ],
)
def test_state_and_frozen_are_checked_where_they_are_written(
    where: str, value: Any, rule: str
) -> None:
    with pytest.raises(PlanError) as caught:
        account(**{where: value})
    fields = {problem.field: problem.rule for problem in caught.value.problems}
    assert fields[f"accounts[0].{rule}"] in {
        'must be "present" or "absent"',
        "must be true or false",
    }


def test_an_absent_subaccount_may_list_no_key_but_may_not_be_unfrozen() -> None:
    assert account(state="absent", keys=[]).subaccounts[0].keys == ()
    with pytest.raises(PlanError) as caught:
        account(state="absent", frozen=False)
    (problem,) = caught.value.problems
    assert problem.field == "accounts[0].subaccounts[0].frozen"
    assert problem.rule.startswith('false contradicts state = "absent"')


def test_plan_says_when_a_classic_revoke_or_a_modify_lacks_its_passphrase() -> None:
    plan = account(
        keys=[
            {"label": "first", "permissions": ["spot_trade"]},
            {"label": "trade", "permissions": ["spot_trade"], "state": "absent"},
        ]
    )
    state = live(key("k1", "alpha", ("spot_trade", "read")), key("k2", "trade"))

    def shown(family: Family, passphrases: frozenset[str] | None) -> dict[str, Any]:
        context = DriftContext(family=family, passphrases=passphrases)
        changes = account_changes(plan, family, state, copy_key=False, context=context)
        return {c.address: c.to_json()["attributes"] for c in changes.changes}

    held = shown("v2", frozenset({"k1", "k2"}))
    assert "passphrase" not in held["alpha/first"]
    assert "passphrase" not in held["alpha/trade"]
    unheld = shown("v2", frozenset())
    assert unheld["alpha/first"]["passphrase"].startswith("not held")
    assert unheld["alpha/trade"]["passphrase"].startswith("not held")
    # A unified key is deleted without its passphrase; no vault read: nothing known.
    assert "passphrase" not in shown("v3", frozenset())["alpha/trade"]
    assert "passphrase" not in shown("v2", None)["alpha/trade"]


def test_a_unified_keys_permission_type_is_drift_and_a_classic_ones_is_not() -> None:
    """A classic key's type can't be modified, so it is not drift apply could repair."""
    plan = account(
        keys=[
            {"label": "first", "permissions": ["spot_trade"]},
            {"label": "trade", "permissions": ["spot_trade"], "perm_type": "read_and_write"},
        ]
    )
    readonly = attrs.evolve(key("k2", "trade", ("uta_trade",)), perm_type="read_only")
    unified = live(key("k1", "alpha", ("uta_trade",)), readonly)
    (change,) = diff_account(plan, unified, DriftContext(family="v3")).key_changes
    assert [(d.name, d.live, d.planned) for d in change.differences] == [
        ("perm_type", "read_only", "read_write")
    ]
    classic = live(key("k1", "alpha"), attrs.evolve(key("k2", "trade"), perm_type="readonly"))
    assert diff_account(plan, classic, DriftContext(family="v2")).empty


def test_a_revoked_key_with_a_planned_label_usable_again_is_revoked_again() -> None:
    """A rotation neutralised "old"; given rights back behind the plan's back, it is revoked."""
    stages = {"old": Stage.REVOKED, "new": Stage.CURRENT}
    neutral = key("old", "trade", (), ips=NEUTRAL_IP_LIST)
    context = DriftContext(family="v2", stages=stages)
    as_left = live(key("k1", "alpha"), neutral, key("new", "trade", TRADE))
    assert diff_account(account(), as_left, context).empty
    rearmed = live(key("k1", "alpha"), key("old", "trade", TRADE), key("new", "trade", TRADE))
    diff = diff_account(account(), rearmed, context)
    assert not diff.key_changes
    ((api_key, reason),) = [(r.live.api_key, r.reason) for r in diff.revokes]
    assert (api_key, reason) == ("old", RevokeReason.REARMED)
