"""The pure diff between a plan and live state."""

from __future__ import annotations

import attrs
import pytest

from bitget_keys import Credentials
from bitget_keys import models as m
from bitget_keys.provision.diff import LiveState, clear_name, diff_account, name_contradicts
from bitget_keys.provision.key_ops import NEUTRAL_IP_LIST
from bitget_keys.provision.plan import AccountSpec, BrokerKeySpec, KeySpec, SubaccountSpec

IPS = ("203.0.113.7",)


def key(label: str, *perms: str) -> KeySpec:
    return KeySpec(
        label=label, permissions=tuple(m.Permission(p) for p in perms or ("read",)), ip_list=IPS
    )


def sub(name: str, label: str, *keys: KeySpec) -> SubaccountSpec:
    return SubaccountSpec(name=name, label=label, keys=keys or (key("trade"),))


def account(*subs: SubaccountSpec, broker: tuple[BrokerKeySpec, ...] = ()) -> AccountSpec:
    return AccountSpec(
        name="desk-a",
        credentials=Credentials("bg_a", "secret", "pass1234"),
        subaccounts=subs,
        broker_keys=broker,
    )


def live_sub(uid: str, label: str, name: str = "****@****.com") -> m.VirtualSubaccount:
    return m.VirtualSubaccount(
        subaccount_uid=uid, subaccount_name=name, label=label, status=m.SubaccountStatus.NORMAL
    )


def live_key(uid: str, label: str) -> m.VirtualSubaccountAPIKey:
    return m.VirtualSubaccountAPIKey(subaccount_uid=uid, api_key=f"bg_{uid}_{label}", label=label)


def test_nothing_live_means_everything_is_created() -> None:
    """With no live state, every sub-account is new and no key is separate."""
    plan = account(sub("alphabot", "alpha", key("trade"), key("read")), sub("betabots", "beta"))
    diff = diff_account(plan, LiveState())
    assert [s.name for s in diff.new_subaccounts] == ["alphabot", "betabots"]
    assert diff.new_keys == ()
    assert diff.creates == 2


def test_matching_by_label_with_masked_names() -> None:
    """A masked live sub-account matches its planned label; its first key counts by the sub's label."""
    plan = account(sub("alphabot", "alpha", key("trade"), key("read")))
    live = LiveState(
        subaccounts=(live_sub("11", "alpha"),), keys={"11": (live_key("11", "alpha"),)}
    )
    diff = diff_account(plan, live)
    assert diff.new_subaccounts == ()
    assert [(k.subaccount_uid, k.key.label) for k in diff.new_keys] == [("11", "read")]
    assert diff.matched == {"alpha": "11"}


def test_complete_account_is_empty() -> None:
    """When everything exists the diff is empty: a re-run sends no create."""
    plan = account(sub("alphabot", "alpha", key("trade"), key("read")))
    live = LiveState(
        subaccounts=(live_sub("11", "alpha", name="alphabot"),),
        keys={"11": (live_key("11", "alpha"), live_key("11", "read"))},
    )
    assert diff_account(plan, live).empty


def test_clear_name_with_suffix_is_compared() -> None:
    """A clear name (maybe with an e-mail suffix) must agree with the plan, else a conflict."""
    assert clear_name("alphabot@virtual-bitget.com") == "alphabot"
    assert clear_name("ALPHABOT") == "alphabot"
    assert clear_name("****@*****.com") is None
    plan = account(sub("alphabot", "alpha"))
    live = LiveState(subaccounts=(live_sub("11", "alpha", name="gammabot@x.com"),))
    diff = diff_account(plan, live)
    assert diff.new_subaccounts == ()
    assert diff.new_keys == ()
    assert len(diff.conflicts) == 1
    assert "gammabot" in diff.conflicts[0].detail
    assert diff.conflicts[0].label == "alpha"


@pytest.mark.parametrize(
    ("live", "planned", "contradicts"),
    [
        # Unified usernames in clear (create-sub's answer): the local part is the name.
        ("marketmakingdeskone@virtual-bitget.com", "MarketMakingDeskOne", False),
        ("othername@virtual-bitget.com", "dupnamex", True),
        # Masked unified names (sub-list) show their first letters.
        ("mar****@virtual-bitget.com", "marketmakingdeskone", False),
        ("oth****@virtual-bitget.com", "dupnamex", True),
        # A fully masked name says nothing; classic names as before.
        ("*****@*******.com", "dupnamex", False),
        ("alphabot", "ALPHABOT", False),
        ("gammabot@x.com", "alphabot", True),
    ],
)
def test_what_a_live_name_shows_must_agree_with_the_plan(
    live: str, planned: str, *, contradicts: bool
) -> None:
    assert name_contradicts(live, planned) is contradicts


def test_a_unified_subaccount_with_the_label_but_another_name_is_a_conflict() -> None:
    """The note matches, the masked username does not: reported, never taken over."""
    plan = account(sub("dupnamex", "u1dup", key("trade")))
    live = LiveState(subaccounts=(live_sub("11", "u1dup", name="oth****@virtual-bitget.com"),))
    diff = diff_account(plan, live)
    assert diff.new_keys == ()
    assert [conflict.label for conflict in diff.conflicts] == ["u1dup"]


def test_deleted_subaccounts_do_not_match() -> None:
    """A deleted live sub-account with the planned label doesn't satisfy the plan."""
    plan = account(sub("alphabot", "alpha"))
    gone = m.VirtualSubaccount(
        subaccount_uid="11", label="alpha", status=m.SubaccountStatus.DELETED
    )
    assert [s.name for s in diff_account(plan, LiveState(subaccounts=(gone,))).new_subaccounts] == [
        "alphabot"
    ]


def test_broker_keys_change_only_when_different() -> None:
    """A broker key is modified only when permissions, type, whitelist or label differ."""
    spec = BrokerKeySpec(
        sub_uid="55",
        api_key="bg_b",
        passphrase="Passw0rd1234",
        permissions=(m.Permission.SPOT_TRADE,),
        perm_type=m.PermType.READONLY,
        ip_list=IPS,
    )
    same = m.BrokerSubaccountAPIKey(
        sub_uid="55",
        api_key="bg_b",
        perm_type=m.PermType.READONLY,
        permissions=(m.Permission.SPOT_TRADE,),
        ip_list=IPS,
    )
    other = m.BrokerSubaccountAPIKey(
        sub_uid="55",
        api_key="bg_b",
        perm_type=m.PermType.READ_AND_WRITE,
        permissions=(m.Permission.SPOT_TRADE,),
        ip_list=IPS,
    )
    plan = account(broker=(spec,))
    assert diff_account(plan, LiveState(broker_keys={"55": (same,)})).broker_changes == ()
    assert diff_account(plan, LiveState(broker_keys={"55": (other,)})).broker_changes == (spec,)
    assert diff_account(plan, LiveState()).broker_changes == (spec,)


def test_keys_a_full_sub_account_has_no_slot_for_are_a_conflict_not_a_create() -> None:
    """Every listed key takes one of 10 slots, neutralised classic keys too: no 40063 later."""
    neutral = [attrs.evolve(live_key("1", f"old{i}"), ip_list=NEUTRAL_IP_LIST) for i in range(7)]
    keys = (live_key("1", "alpha"), live_key("1", "b"), *neutral)
    plan = account(sub("alphabot", "alpha", key("trade"), key("b"), key("c"), key("d")))
    diff = diff_account(plan, LiveState(subaccounts=(live_sub("1", "alpha"),), keys={"1": keys}))
    # 9 listed: one slot left, for "c"; "d" has none.
    assert [missing.key.label for missing in diff.new_keys] == ["c"]
    (conflict,) = diff.conflicts
    assert conflict.label == "alpha"
    assert "'d' not created" in conflict.detail
    assert "holds 9 keys (7 of them neutralised" in conflict.detail
    assert "Bitget allows 10" in conflict.detail
