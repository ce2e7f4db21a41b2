"""The changes plan shows and a saved plan keeps: pure, from plan specs and live state."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import attrs
import pytest

from bitget_keys import models as m
from bitget_keys.errors import PlanError
from bitget_keys.provision.diff import LiveState
from bitget_keys.provision.plan import AccountSpec, BrokerKeySpec, KeySpec, SubaccountSpec
from bitget_keys.provision.plan_changes import Action, Summary, account_changes, summarize
from bitget_keys.provision.plan_render import render, summary_lines
from bitget_keys.provision.saved_plan import (
    is_saved_plan,
    read_saved_plan,
    snapshot,
    stale,
    write_saved_plan,
)
from bitget_keys.testing import EmulatorAccount

CREDENTIALS = EmulatorAccount(
    uid="1000000001", api_key="bg_x", secret_key="s", passphrase="Passphrase1"
).credentials
READ = KeySpec(label="read", permissions=(m.Permission.READ,), ip_list=("203.0.113.7",))
TRADE = KeySpec(
    label="trade",
    permissions=(m.Permission.SPOT_TRADE,),
    ip_list=("203.0.113.7",),
    perm_type=m.PermType.READ_AND_WRITE,
)
ALPHA = SubaccountSpec(name="AlphaBot", label="alpha", keys=(READ, TRADE))
BROKER = BrokerKeySpec(
    sub_uid="5550001",
    api_key="bg_sub",
    passphrase="SubPass1",
    permissions=(m.Permission.SPOT_TRADE,),
    perm_type=m.PermType.READONLY,
)
ACCOUNT = AccountSpec(name="desk", credentials=CREDENTIALS, subaccounts=(ALPHA,))
LIVE_SUB = m.VirtualSubaccount(
    subaccount_uid="7000000001", subaccount_name="alphabot", label="alpha"
)
LIVE_KEY = m.VirtualSubaccountAPIKey(
    subaccount_uid="7000000001",
    api_key="bg_live_read",
    label="read",
    permissions=(m.Permission.READ,),
)


def test_a_unified_master_shows_what_create_sub_api_takes() -> None:
    """Through v3 the username is the lower-cased name and the key type is v3's."""
    changes = account_changes(ACCOUNT, "v3", LiveState(), copy_key=False)
    sub, read, trade = changes.changes
    assert {a.name: a.new for a in sub.attributes} == {"name": "alphabot", "label": "alpha"}
    assert {a.name: a.new for a in read.attributes}["perm_type"] == "read_only"
    assert {a.name: a.new for a in trade.attributes}["perm_type"] == "read_write"
    assert summarize([changes]) == Summary(create=3)


def test_a_broker_key_not_listed_is_a_change_from_nothing() -> None:
    account = attrs.evolve(ACCOUNT, subaccounts=(), broker_keys=(BROKER,))
    (change,) = account_changes(account, "v2", LiveState(), copy_key=False).changes
    assert change.action is Action.CHANGE
    assert [(a.name, a.old, a.new) for a in change.attributes] == [
        ("permissions", None, ["spot_trade"]),
        ("perm_type", None, "readonly"),
    ]
    assert [
        line.text for line in render([account_changes(account, "v2", LiveState(), copy_key=False)])
    ] == [
        "desk:",
        "  ~ broker key 5550001/bg_sub",
        '      permissions = (not listed) -> ["spot_trade"]',
        '      perm_type   = (not listed) -> "readonly"',
    ]


def test_orphans_are_foreseen_only_with_the_vault_keys() -> None:
    live = LiveState(subaccounts=(LIVE_SUB,), keys={"7000000001": (LIVE_KEY,)})
    without = account_changes(ACCOUNT, "v2", live, copy_key=False)
    assert without.notices == ()
    with_vault = account_changes(ACCOUNT, "v2", live, copy_key=False, vault_keys=set())
    (orphan,) = with_vault.notices
    assert (orphan.kind, orphan.address, orphan.api_key) == ("orphan", "alpha/read", "bg_live_read")
    held = account_changes(ACCOUNT, "v2", live, copy_key=False, vault_keys={"bg_live_read"})
    assert held.notices == ()
    # The missing key is still a create either way.
    assert [c.address for c in with_vault.changes] == ["alpha/trade"]


def test_summary_lines() -> None:
    assert Summary().line() == "No changes. Live state matches the plan."
    assert Summary(create=2, change=1).line() == "Plan: 2 to create, 1 to change, 0 to revoke."
    assert [line.text for line in summary_lines(Summary(orphans=1))] == [
        "Plan: 0 to create, 0 to change, 0 to revoke.",
        (
            "Attention: 1 orphan key(s), 0 conflict(s); apply reports them and changes nothing "
            "about them."
        ),
    ]


def _save(path: Path, live: LiveState) -> None:
    changes = account_changes(ACCOUNT, "v2", live, copy_key=False)
    write_saved_plan(
        path,
        plan_text="[[accounts]]\n",
        source="plan.toml",
        base_url="http://127.0.0.1:1",
        live={"desk": snapshot("v2", live)},
        accounts=[changes],
        summary=summarize([changes]),
    )


def test_a_saved_plan_reads_back_and_names_what_moved(tmp_path: Path) -> None:
    path = tmp_path / "saved"
    live = LiveState(subaccounts=(LIVE_SUB,), keys={"7000000001": (LIVE_KEY,)})
    _save(path, live)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert is_saved_plan(path)
    saved = read_saved_plan(path)
    changes = [c.to_json() for c in account_changes(ACCOUNT, "v2", live, copy_key=False).changes]
    assert stale(saved, {"desk": snapshot("v2", live)}, changes) == []
    whitelisted = attrs.evolve(LIVE_KEY, ip_list=("198.51.100.1",))
    frozen = attrs.evolve(LIVE_SUB, status=m.SubaccountStatus.FREEZE)
    moved = LiveState(subaccounts=(frozen,), keys={"7000000001": (whitelisted,)})
    assert stale(saved, {"desk": snapshot("v3", moved)}, changes) == [
        "desk: its master is served by v3 (was v2)",
        "desk: sub-account 'alpha' (7000000001) changed: status",
        "desk: key of 7000000001 'read' (bg_live_read) changed: ip_list",
    ]
    assert stale(saved, {"desk": snapshot("v2", live)}, []) == [
        (
            "the changes apply would make now differ from the saved ones (the vault holds other "
            "copy keys than when the plan was saved?)"
        )
    ]
    assert stale(saved, {"other": snapshot("v2", live)}, []) == ["other: not in the saved plan"]


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda text: text.replace('"v2"', '"v3"', 1), id="edited"),
        pytest.param(lambda text: text[: len(text) // 2], id="torn"),
        pytest.param(lambda text: text.replace("bitget-keys saved plan", "other"), id="foreign"),
    ],
)
def test_a_damaged_saved_plan_is_refused(tmp_path: Path, edit: object) -> None:
    path = tmp_path / "saved"
    _save(path, LiveState())
    assert callable(edit)
    path.write_text(edit(path.read_text()))
    with pytest.raises(PlanError, match="damaged saved plan"):
        read_saved_plan(path)


def test_a_toml_plan_is_not_a_saved_plan(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text('[[accounts]]\nname = "desk"\n')
    assert not is_saved_plan(path)
    saved = tmp_path / "saved.toml"
    _save(saved, LiveState())
    assert is_saved_plan(saved)
    assert json.loads(saved.read_text())["body"]["plan"]["source"] == "plan.toml"
