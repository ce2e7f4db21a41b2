"""A plan account's ``egress``: the rules of the field, and how apply's egresses follow it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bitget_keys.cli._egress import assign_egresses, build_egresses, check_planned_egresses
from bitget_keys.errors import ConfigurationError, PlanError
from bitget_keys.provision.plan import Plan, load_plan, parse_plan

#: Five masters; desk0 and desk2 are one master UID, desk3 gives no UID.
UIDS = ["1000000001", "1000000002", "1000000001", None, "1000000003"]
ENV: dict[str, str] = {}
for _i, _uid in enumerate(UIDS):
    ENV |= {
        f"A{_i}_API_KEY": f"bg_key_{_i}",
        f"A{_i}_SECRET_KEY": f"secret-{_i}",
        f"A{_i}_PASSPHRASE": f"Passphrase{_i}",
    }
    if _uid is not None:
        ENV[f"A{_i}_UID"] = _uid


def plan_data(**egresses: Any) -> dict[str, Any]:
    """One account per entry of `UIDS` (``desk0``...), ``deskN=VALUE`` naming its egress."""
    rows = []
    for i in range(len(UIDS)):
        row: dict[str, Any] = {"name": f"desk{i}", "credentials": f"env:A{i}"}
        if f"desk{i}" in egresses:
            row["egress"] = egresses[f"desk{i}"]
        rows.append(row)
    return {"accounts": rows}


def problems(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    return {p.field: p.rule for p in info.value.problems}


def assigned(plan: Plan, *names: str) -> list[str]:
    egresses = build_egresses(
        [(name, f"http://10.0.0.{i}:3128") for i, name in enumerate(names, 1)],
        redis=None,
        budget=None,
    )
    chosen = assign_egresses(plan, egresses)
    return [chosen[f"desk{i}"].name for i in range(len(UIDS))]


def test_an_account_may_name_its_egress() -> None:
    plan = parse_plan(plan_data(desk1="eu-2.proxy:a_1"), environ=ENV)
    assert [account.egress for account in plan.accounts] == [None, "eu-2.proxy:a_1", *[None] * 3]


@pytest.mark.parametrize("name", ["", "eu 1", "eu/1", "x" * 65, "é"])
def test_an_egress_is_named_as_apply_names_them(name: str) -> None:
    assert problems(plan_data(desk1=name)) == {
        "accounts[1].egress": "must name an egress: up to 64 letters, digits and . _ : -"
    }


def test_an_egress_is_a_string() -> None:
    assert problems(plan_data(desk1=2)) == {"accounts[1].egress": "must be a string, not int"}


def test_accounts_of_one_master_may_not_name_two_egresses() -> None:
    found = problems(plan_data(desk0="eu-1", desk2="eu-2"))
    assert found == {
        "accounts[2].egress": "desk2 names egress 'eu-2' but desk0 (accounts[0]) names 'eu-1' "
        "for the same master UID 1000000001: the accounts of one master leave through one egress"
    }
    # The same name twice, or one account naming it, is one egress.
    parse_plan(plan_data(desk0="eu-1", desk2="eu-1"), environ=ENV)
    parse_plan(plan_data(desk2="eu-1"), environ=ENV)


def test_a_master_without_a_uid_is_told_apart_by_its_key() -> None:
    """desk3 gives no UID: its egress is its own, whatever the others name."""
    plan = parse_plan(plan_data(desk3="eu-2", desk4="eu-1"), environ=ENV)
    assert assigned(plan, "eu-1", "eu-2") == ["eu-1", "eu-2", "eu-1", "eu-2", "eu-1"]


def test_the_field_is_located_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    rows = "".join(
        f'[[accounts]]\nname = "desk{i}"\ncredentials = "env:A{i}"\negress = "{egress}"\n\n'
        for i, egress in ((0, "eu-1"), (2, "eu 2"))
    )
    path.write_text(rows)
    with pytest.raises(PlanError) as info:
        load_plan(path, environ=ENV)
    (problem,) = info.value.problems
    assert problem.field == "accounts[1].egress"
    assert "line 9" in str(info.value)


def test_accounts_of_one_master_uid_share_an_egress() -> None:
    """Round-robin by master: a second account on the same UID keeps its master's egress."""
    unnamed = parse_plan(plan_data(), environ=ENV)
    assert assigned(unnamed, "eu-1", "eu-2") == ["eu-1", "eu-2", "eu-1", "eu-1", "eu-2"]


def test_a_named_egress_takes_its_master_out_of_the_round_robin() -> None:
    """
    desk1 names eu-1; desk0 and desk2 (one master) keep the round-robin, which goes on
    over the masters that name none: desk0/desk2, desk3, desk4.
    """
    plan = parse_plan(plan_data(desk1="eu-1"), environ=ENV)
    assert assigned(plan, "eu-1", "eu-2") == ["eu-1", "eu-1", "eu-1", "eu-2", "eu-1"]
    # One account of a master naming it moves the master's every account.
    plan = parse_plan(plan_data(desk2="eu-2"), environ=ENV)
    assert assigned(plan, "eu-1", "eu-2") == ["eu-2", "eu-1", "eu-2", "eu-2", "eu-1"]


def test_an_egress_apply_was_not_given_is_refused_naming_the_accounts() -> None:
    plan = parse_plan(plan_data(desk1="eu-3", desk4="asia"), environ=ENV)
    with pytest.raises(ConfigurationError) as info:
        check_planned_egresses(plan, ["eu-1", "eu-2"])
    assert str(info.value) == (
        "desk1 (accounts[1]) names egress 'eu-3'; desk4 (accounts[4]) names egress 'asia': "
        "apply's egresses are eu-1, eu-2; give each with --egress NAME=PROXY_URL, or change "
        "the plan's egress"
    )
    with pytest.raises(ConfigurationError, match=r"desk1 \(accounts\[1\]\) names egress 'eu-3'"):
        assigned(plan, "eu-1", "eu-2")
    check_planned_egresses(plan, ["eu-3", "asia"])
