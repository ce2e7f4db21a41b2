"""
The pure parts of import: which live items a plan lacks, their entries (checked by the
plan's rules, unified permissions mapped back), and adding them to the plan's text.
"""

from __future__ import annotations

import tomllib

import attrs
import pytest

from bitget_keys import models as m
from bitget_keys.lifecycle.adopt import adopt
from bitget_keys.lifecycle.plan_text import PlanTextError, entries_text, insert_entries
from bitget_keys.lifecycle.survey import MasterHoldings
from bitget_keys.provision.family import Family
from bitget_keys.provision.plan import KeySpec, loads_plan
from bitget_keys.provision.plan_modes import plan_permissions_of_unified, unified_key

ENV = {"DESK_API_KEY": "bg_desk", "DESK_SECRET_KEY": "desk-secret", "DESK_PASSPHRASE": "DeskPass1"}
PLAN = """\
# the desks
[[accounts]]
name = "desk"
credentials = "env:DESK"

[[accounts.subaccounts]]
name = "alphabot"
label = "alpha"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["spot_trade"]
ip_list = ["203.0.113.7"]

# the second sub-account
[[accounts.subaccounts]]
name = "betabots"
label = "beta"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["spot_trade"]
ip_list = ["203.0.113.7"]

# defaults come last in this file
[defaults]
perm_type = "readonly"
"""


def key(
    uid: str, api_key: str, label: str, *permissions: str, **more: object
) -> m.VirtualSubaccountAPIKey:
    values: dict[str, object] = {"ip_list": ("198.51.100.1",)} | more
    return m.VirtualSubaccountAPIKey(
        subaccount_uid=uid,
        api_key=api_key,
        label=label,
        permissions=tuple(m.permission(p) for p in permissions),
        **values,  # type: ignore[arg-type]
    )


def holdings(family: Family, plan_text: str = PLAN) -> MasterHoldings:
    plan = loads_plan(plan_text, environ=ENV)
    subs = (
        m.VirtualSubaccount(subaccount_uid="11", subaccount_name="alphabot", label="alpha"),
        m.VirtualSubaccount(subaccount_uid="12", subaccount_name="betabots", label="beta"),
        m.VirtualSubaccount(subaccount_uid="13", subaccount_name="gam****@x.com", label="gamma"),
        m.VirtualSubaccount(subaccount_uid="14", subaccount_name="deltabot", label="delta"),
    )
    keys = {
        "11": (key("11", "k1", "alpha", "spot_trade"), key("11", "k2", "extra", "spot_trade")),
        "12": (key("12", "k3", "trade", "spot_trade"),),
        "13": (
            key("13", "k4", "transfer", "transfer"),
            key("13", "k5", "gamma", "read"),
        ),
        "14": (),
    }
    return MasterHoldings(
        accounts=plan.accounts,
        family=family,
        master_uid="1",
        subaccounts=subs,
        keys=keys,
    )


def test_classic_entries_and_their_place_in_the_text() -> None:
    adoption = adopt([holdings("v2")], defaults={"perm_type": "readonly"}, vault_keys={"k5"})
    assert [(k.address, k.key.table()) for k in adoption.keys] == [
        (
            "alpha/extra",
            {"label": "extra", "permissions": ["spot_trade"], "ip_list": ["198.51.100.1"]},
        )
    ]
    (gamma,) = adoption.subaccounts
    # The first key is one batch-create could have made; the masked name a stand-in.
    assert [k.label for k in gamma.keys] == ["gamma", "transfer"]
    # A classic list does not show a key's type: none is written.
    assert gamma.keys[1].perm_type is None
    assert gamma.masked_name == "gam****@x.com"
    assert gamma.name.startswith("gam")
    assert len(gamma.name) == 8
    assert [n.address for n in adoption.notes] == ["delta"]  # no key
    # k5 is in the vault already: only the others get a record.
    assert sorted(r.api_key for r in adoption.records) == ["k2", "k4"]
    assert all(not r.held for r in adoption.records)
    text = insert_entries(PLAN, adoption, "plan.toml")
    kept = iter(text.splitlines())
    assert all(line in kept for line in PLAN.splitlines())
    data = tomllib.loads(text)
    alpha, beta, new = data["accounts"][0]["subaccounts"]
    assert [k["label"] for k in alpha["keys"]] == ["trade", "extra"]
    assert [k["label"] for k in beta["keys"]] == ["trade"]
    assert new["label"] == "gamma"
    # Added above the comment that leads into the next table.
    assert text.index('label = "extra"') < text.index("# the second sub-account")
    assert loads_plan(text, environ=ENV).accounts[0].subaccounts[2].label == "gamma"
    printed = entries_text(adoption)
    assert "# desk: add to sub-account alpha (accounts[0].subaccounts[0]), after its last key" in (
        printed
    )
    assert "# desk: add to account accounts[0], after its last sub-account" in printed


def test_a_layout_that_cannot_take_entries_is_refused() -> None:
    inline = (
        'accounts = [{name = "desk", credentials = "env:DESK", subaccounts = [\n'
        '{name = "alphabot", label = "alpha", keys = [{label = "trade", '
        'permissions = ["spot_trade"], ip_list = ["203.0.113.7"]}]}]}]\n'
    )
    adoption = adopt([holdings("v2", inline)], defaults={}, vault_keys=set())
    assert not adoption.empty
    with pytest.raises(PlanTextError, match="unchanged"):
        insert_entries(inline, adoption, "plan.toml")


@pytest.mark.parametrize("key_type", ["read_only", "read_write"])
@pytest.mark.parametrize(
    "permissions",
    [("uta_trade",), ("uta_mgt",), ("uta_trade", "uta_mgt"), ("uta_mgt", "uta_trade")],
)
@pytest.mark.parametrize("classic_names", [True, False])
def test_unified_permissions_map_back_to_themselves(
    permissions: tuple[str, ...], key_type: str, classic_names: bool
) -> None:
    live = tuple(m.permission(p) for p in permissions)
    planned, perm_type = plan_permissions_of_unified(live, key_type, classic_names=classic_names)
    spec = KeySpec(label="k", permissions=planned, ip_list=(), perm_type=perm_type)
    settings = unified_key(spec)
    assert set(settings.permissions) == set(live)
    assert str(settings.type) == key_type
    if classic_names and live == (m.Permission.UTA_TRADE,):
        assert set(planned) <= {m.Permission.READ, m.Permission.SPOT_TRADE}


def test_unified_entries_write_the_type_the_default_would_change() -> None:
    """
    Under ``[defaults] perm_type = "readonly"``, a unified key that may write says so;
    a read-only ``uta_trade`` key is ``read``; a key whose type is not listed is named.
    """
    plan = PLAN.replace('name = "desk"\n', 'name = "desk"\nmode = "unified"\n')
    plan = plan.replace('"alphabot"', '"alphabot"').replace('["spot_trade"]', '["uta_trade"]')
    master = holdings("v3", plan)
    keys = {
        "11": (
            key("11", "k1", "alpha", "uta_trade", perm_type="read_write"),
            key("11", "k2", "writer", "uta_trade", perm_type="read_write"),
            key("11", "k3", "reader", "uta_trade", perm_type="read_only"),
            key("11", "k4", "admin", "uta_mgt", perm_type="read_only"),
            key("11", "k5", "untyped", "uta_trade"),
        ),
    }
    master = attrs.evolve(master, subaccounts=master.subaccounts[:1], keys=keys)
    adoption = adopt([master], defaults={"perm_type": "readonly"}, vault_keys=set())
    tables = {k.key.label: k.key.table() for k in adoption.keys}
    assert tables == {
        "writer": {
            "label": "writer",
            "permissions": ["uta_trade"],
            "ip_list": ["198.51.100.1"],
            "perm_type": "read_and_write",
        },
        "reader": {"label": "reader", "permissions": ["read"], "ip_list": ["198.51.100.1"]},
        "admin": {
            "label": "admin",
            "permissions": ["uta_mgt"],
            "ip_list": ["198.51.100.1"],
            "perm_type": "readonly",
        },
    }
    assert [(n.address, n.detail) for n in adoption.notes] == [
        ("alpha/untyped", "not imported: Bitget's list does not show whether it is read-only")
    ]
    # The unplanned first key (label "alpha") stands for the planned "trade".
    text = insert_entries(plan, adoption, "plan.toml")
    assert [k.label for k in loads_plan(text, environ=ENV).accounts[0].subaccounts[0].keys] == [
        "trade",
        "writer",
        "reader",
        "admin",
    ]
