"""Plan files: parsing, and every problem reported at once with its location."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bitget_keys import models as m
from bitget_keys.errors import PlanError, Problem
from bitget_keys.provision.plan import load_plan, parse_plan

ENV = {
    "DESK_A_API_KEY": "bg_a",
    "DESK_A_SECRET_KEY": "secret-a-000000",
    "DESK_A_PASSPHRASE": "PassA1234",
    "DESK_B_API_KEY": "bg_b",
    "DESK_B_SECRET_KEY": "secret-b-000000",
    "DESK_B_PASSPHRASE": "PassB1234",
    "BROKER_KEY_PASS": "BrokerPass1",
}

PLAN_TOML = """
[defaults]
ip_list = ["203.0.113.7"]
perm_type = "read_and_write"

[[accounts]]
name = "desk-a"
credentials = "env:DESK_A"
copy_api_key = false

[[accounts.subaccounts]]
name = "alphabot"
label = "alpha"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["spot_trade", "contract_trade"]

[[accounts.subaccounts.keys]]
label = "read"
permissions = ["read"]

[[accounts.broker_keys]]
sub_uid = "1234567890"
api_key = "bg_broker"
passphrase = "env:BROKER_KEY_PASS"
permissions = ["spot_trade"]
perm_type = "readonly"
ip_list = ["203.0.113.7"]

[[accounts]]
name = "desk-b"
credentials = "env:DESK_B"
copy_api_key = true
"""


def base() -> dict[str, Any]:
    return {
        "defaults": {"ip_list": ["203.0.113.7"], "perm_type": "read_and_write"},
        "accounts": [
            {
                "name": "desk-a",
                "credentials": "env:DESK_A",
                "subaccounts": [
                    {
                        "name": "alphabot",
                        "label": "alpha",
                        "keys": [
                            {"label": "trade", "permissions": ["spot_trade"]},
                            {"label": "read", "permissions": ["read"]},
                        ],
                    }
                ],
            }
        ],
    }


def test_load_a_valid_plan(tmp_path: Path) -> None:
    """A valid TOML plan loads with defaults applied and secrets resolved from env."""
    path = tmp_path / "plan.toml"
    path.write_text(PLAN_TOML)
    plan = load_plan(path, environ=ENV)
    desk_a, desk_b = plan.accounts
    assert desk_a.credentials.api_key == "bg_a"
    (sub,) = desk_a.subaccounts
    assert [key.label for key in sub.keys] == ["trade", "read"]
    assert sub.keys[0].ip_list == ("203.0.113.7",)
    assert sub.keys[0].perm_type is None  # made by batch-create: no permission type
    assert sub.keys[1].perm_type is m.PermType.READ_AND_WRITE
    (broker,) = desk_a.broker_keys
    assert broker.passphrase.reveal() == "BrokerPass1"
    assert broker.perm_type is m.PermType.READONLY
    assert desk_b.copy_api_key
    assert plan.key_count == 2
    assert "BrokerPass1" not in repr(plan)


def mutate(path: list[Any], value: Any) -> dict[str, Any]:
    data = base()
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()
SUB = ["accounts", 0, "subaccounts", 0]
KEY0 = [*SUB, "keys", 0]
KEY1 = [*SUB, "keys", 1]

BAD_PLANS: list[tuple[str, dict[str, Any], str, str]] = [
    ("name-short", mutate([*SUB, "name"], "alpha"), "accounts[0].subaccounts[0].name", "exactly 8"),
    (
        "name-digit",
        mutate([*SUB, "name"], "alphab0t"),
        "accounts[0].subaccounts[0].name",
        "English letters",
    ),
    (
        "sub-label-long",
        mutate([*SUB, "label"], "x" * 21),
        "accounts[0].subaccounts[0].label",
        "1-20",
    ),
    (
        "key-label-long",
        mutate([*KEY1, "label"], "y" * 21),
        "accounts[0].subaccounts[0].keys[1].label",
        "1-20",
    ),
    (
        "first-key-perm",
        mutate([*KEY0, "permissions"], ["transfer"]),
        "accounts[0].subaccounts[0].keys[0].permissions[0]",
        "not valid",
    ),
    (
        "key-perm",
        mutate([*KEY1, "permissions"], ["withdraw"]),
        "accounts[0].subaccounts[0].keys[1].permissions[0]",
        "not valid",
    ),
    (
        "key-private-ip",
        mutate([*KEY1, "ip_list"], ["10.0.0.1"]),
        "accounts[0].subaccounts[0].keys[1].ip_list[0]",
        "private",
    ),
    (
        "default-loopback",
        mutate(["defaults", "ip_list"], ["127.0.0.1"]),
        "defaults.ip_list[0]",
        "loopback",
    ),
    (
        "key-no-permissions",
        mutate([*KEY1, "permissions"], _DELETE),
        "accounts[0].subaccounts[0].keys[1].permissions",
        "is required",
    ),
    ("no-keys", mutate([*SUB, "keys"], []), "accounts[0].subaccounts[0].keys", "at least one key"),
    (
        "eleven-keys",
        mutate([*SUB, "keys"], [{"label": f"k{i}", "permissions": ["read"]} for i in range(11)]),
        "accounts[0].subaccounts[0].keys",
        "at most 10",
    ),
    (
        "duplicate-key-label",
        mutate([*KEY1, "label"], "trade"),
        "accounts[0].subaccounts[0].keys[1].label",
        "used twice",
    ),
    (
        "unknown-credentials",
        mutate(["accounts", 0, "credentials"], "env:NOPE"),
        "accounts[0].credentials",
        "NOPE_API_KEY",
    ),
    (
        "credentials-not-env",
        mutate(["accounts", 0, "credentials"], "bg_plain"),
        "accounts[0].credentials",
        "env:PREFIX",
    ),
    (
        "unknown-setting",
        mutate(["accounts", 0, "colour"], "red"),
        "accounts[0].colour",
        "unknown setting",
    ),
    (
        "copy-not-bool",
        mutate(["accounts", 0, "copy_api_key"], "yes"),
        "accounts[0].copy_api_key",
        "true or false",
    ),
    (
        "plain-passphrase",
        mutate([*KEY1, "passphrase"], "Passw0rd1234"),
        "accounts[0].subaccounts[0].keys[1].passphrase",
        "env:NAME",
    ),
    (
        "perm-type",
        mutate([*KEY1, "perm_type"], "admin"),
        "accounts[0].subaccounts[0].keys[1].perm_type",
        "not valid",
    ),
    ("no-accounts", {"accounts": []}, "accounts", "names no account"),
    (
        "twenty-one-subaccounts",
        mutate(
            [*SUB[:-1]],
            [
                {
                    "name": "abcdefg" + chr(97 + i),
                    "label": f"s{i}",
                    "keys": [{"label": "k", "permissions": ["read"]}],
                }
                for i in range(21)
            ],
        ),
        "accounts[0].subaccounts",
        "at most 20",
    ),
    (
        "no-ip-anywhere",
        mutate(["defaults"], {}),
        "accounts[0].subaccounts[0].keys[0].ip_list",
        "is required",
    ),
    (
        "first-key-perm-type",
        mutate([*KEY0, "perm_type"], "readonly"),
        "accounts[0].subaccounts[0].keys[0].perm_type",
        "batch-create, which takes no permission type",
    ),
    (
        "first-key-perm-type-int",
        mutate([*KEY0, "perm_type"], 5),
        "accounts[0].subaccounts[0].keys[0].perm_type",
        "batch-create",
    ),
    (
        "perm-type-int",
        mutate([*KEY1, "perm_type"], 5),
        "accounts[0].subaccounts[0].keys[1].perm_type",
        "must be a string, not int",
    ),
    (
        "default-perm-type-int",
        mutate(["defaults", "perm_type"], 5),
        "defaults.perm_type",
        "must be a string, not int",
    ),
    (
        "default-perm-type-unknown",
        mutate(["defaults", "perm_type"], "admin"),
        "defaults.perm_type",
        "not valid; one of: read_and_write, readonly",
    ),
    (
        "default-ip-list-string",
        mutate(["defaults", "ip_list"], "203.0.113.7"),
        "defaults.ip_list",
        "list of strings",
    ),
    (
        "default-link-local",
        mutate(["defaults", "ip_list"], ["169.254.1.1"]),
        "defaults.ip_list[0]",
        "link-local",
    ),
    (
        "key-multicast-ip",
        mutate([*KEY1, "ip_list"], ["224.0.0.251"]),
        "accounts[0].subaccounts[0].keys[1].ip_list[0]",
        "multicast",
    ),
    (
        "sub-label-slash",
        mutate([*SUB, "label"], "x/y"),
        "accounts[0].subaccounts[0].label",
        "'/'",
    ),
    (
        "sub-label-newline",
        mutate([*SUB, "label"], "alpha\nbeta"),
        "accounts[0].subaccounts[0].label",
        "U+000A",
    ),
    (
        "sub-label-bidi",
        mutate([*SUB, "label"], "alpha\u202e"),
        "accounts[0].subaccounts[0].label",
        "U+202E",
    ),
    (
        "sub-label-nul",
        mutate([*SUB, "label"], "a\x00"),
        "accounts[0].subaccounts[0].label",
        "U+0000",
    ),
    (
        "first-key-label-slash",
        mutate([*KEY0, "label"], "y/z"),
        "accounts[0].subaccounts[0].keys[0].label",
        "'/'",
    ),
    (
        "key-label-esc",
        mutate([*KEY1, "label"], "r\x1b[1A"),
        "accounts[0].subaccounts[0].keys[1].label",
        "U+001B",
    ),
    (
        "key-label-not-a-string",
        mutate([*KEY1, "label"], 7),
        "accounts[0].subaccounts[0].keys[1].label",
        "must be a string",
    ),
    ("accounts-not-tables", {"accounts": "desk-a"}, "accounts", "array of tables"),
    ("top-level-unknown", mutate(["colour"], "red"), "colour", "unknown setting"),
]

BROKER = {
    "sub_uid": "1234567890",
    "api_key": "bg_broker",
    "passphrase": "env:BROKER_KEY_PASS",
    "permissions": ["spot_trade"],
    "perm_type": "readonly",
    "ip_list": ["203.0.113.7"],
}
BROKER_KEY = ["accounts", 0, "broker_keys", 0]


def with_broker(field: str, value: Any) -> dict[str, Any]:
    data = mutate(["accounts", 0, "broker_keys"], [dict(BROKER)])
    data["accounts"][0]["broker_keys"][0][field] = value
    return data


BAD_PLANS += [
    (
        "broker-perm-type-int",
        with_broker("perm_type", 5),
        "accounts[0].broker_keys[0].perm_type",
        "must be a string, not int",
    ),
    (
        "broker-perm-type-unknown",
        with_broker("perm_type", "writeonly"),
        "accounts[0].broker_keys[0].perm_type",
        "not valid",
    ),
    (
        "broker-label-slash",
        with_broker("label", "a/b"),
        "accounts[0].broker_keys[0].label",
        "'/'",
    ),
    (
        "broker-label-newline",
        with_broker("label", "a\nb"),
        "accounts[0].broker_keys[0].label",
        "U+000A",
    ),
    (
        "broker-shared-ip",
        with_broker("ip_list", ["100.100.0.1"]),
        "accounts[0].broker_keys[0].ip_list[0]",
        "shared",
    ),
]


@pytest.mark.parametrize(
    ("data", "location", "rule"),
    [pytest.param(data, location, rule, id=case) for case, data, location, rule in BAD_PLANS],
)
def test_bad_plan(data: dict[str, Any], location: str, rule: str) -> None:
    """Each broken rule is reported at its location in the file."""
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    matching = [p for p in info.value.problems if p.field == location]
    assert matching, [str(p) for p in info.value.problems]
    assert any(rule in p.rule for p in matching)


def test_at_least_fifteen_cases() -> None:
    """The table covers at least fifteen distinct invalid plans."""
    assert len(BAD_PLANS) >= 15


def test_every_problem_is_reported_together() -> None:
    """Problems across accounts, sub-accounts and keys come back in one error."""
    data = base()
    second = copy.deepcopy(data["accounts"][0])
    second["name"] = "desk-a"  # duplicate account name
    second["credentials"] = "env:DESK_B"
    data["accounts"].append(second)  # the same sub-account name under another master
    data["accounts"][0]["subaccounts"][0]["name"] = "bad"
    data["accounts"][0]["subaccounts"][0]["keys"][1]["ip_list"] = ["192.168.1.1"]
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV, source="plan.toml")
    fields = {p.field for p in info.value.problems}
    assert {
        "accounts[0].subaccounts[0].name",
        "accounts[0].subaccounts[0].keys[1].ip_list[0]",
        "accounts[1].name",
    } <= fields
    text = str(info.value)
    assert text.startswith("plan.toml: ")
    assert "accounts[0].subaccounts[0].name: must be exactly 8 English letters" in text


def test_same_subaccount_name_under_two_masters() -> None:
    """Names are unique across Bitget, so a plan can't use one twice."""
    data = base()
    other = copy.deepcopy(data["accounts"][0])
    other["name"] = "desk-b"
    other["credentials"] = "env:DESK_B"
    data["accounts"].append(other)
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert any(
        p.field == "accounts[1].subaccounts[0].name" and "also planned" in p.rule
        for p in info.value.problems
    )


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    """A missing file or broken TOML is a PlanError too."""
    with pytest.raises(PlanError, match="cannot read"):
        load_plan(tmp_path / "missing.toml", environ=ENV)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[accounts]\nname = ")
    with pytest.raises(PlanError, match="not valid TOML"):
        load_plan(broken, environ=ENV)


def test_plan_errors_never_show_secrets() -> None:
    """A broken passphrase reference is described, never echoed."""
    data = mutate([*KEY1, "passphrase"], "MySecretPass99")
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert "MySecretPass99" not in str(info.value)


def test_a_valid_broker_key_loads() -> None:
    """The broker table the bad cases above start from is itself valid."""
    plan = parse_plan(with_broker("label", "desk"), environ=ENV)
    (broker,) = plan.accounts[0].broker_keys
    assert (broker.perm_type, broker.label) == (m.PermType.READONLY, "desk")


def test_default_perm_type_applies_to_further_keys_only() -> None:
    """[defaults] perm_type reaches the keys made one by one, never the batch-made first key."""
    plan = parse_plan(mutate(["defaults", "perm_type"], "readonly"), environ=ENV)
    first, further = plan.accounts[0].subaccounts[0].keys
    assert first.perm_type is None
    assert further.perm_type is m.PermType.READONLY
    data = mutate([*KEY1, "perm_type"], "read_and_write")
    data["defaults"]["perm_type"] = "readonly"
    assert parse_plan(data, environ=ENV).accounts[0].subaccounts[0].keys[1].perm_type is (
        m.PermType.READ_AND_WRITE
    )


def test_a_bad_default_perm_type_is_reported_once() -> None:
    """A broken default is reported where it is written, not again at every key using it."""
    with pytest.raises(PlanError) as info:
        parse_plan(mutate(["defaults", "perm_type"], "admin"), environ=ENV)
    assert [p.field for p in info.value.problems] == ["defaults.perm_type"]


def test_slash_labels_cannot_make_two_keys_share_a_name() -> None:
    """`x/y` + `z` and `x` + `y/z` would both be the key x/y/z: both are refused."""
    for sub_label, key_label in (("x/y", "z"), ("x", "y/z")):
        data = mutate([*SUB, "label"], sub_label)
        data["accounts"][0]["subaccounts"][0]["keys"][1]["label"] = key_label
        with pytest.raises(PlanError) as info:
            parse_plan(data, environ=ENV)
        assert any("'/'" in p.rule for p in info.value.problems)


def test_a_label_cannot_forge_a_line_of_the_error() -> None:
    """Problems print one per line, whatever the plan's values and keys hold."""
    data = mutate([*SUB, "label"], "a\nb: fine")
    data["accounts"][0]["evil\nkey"] = 1
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV, source="plan\n.toml")
    lines = str(info.value).splitlines()
    assert len(lines) == 1 + len(info.value.problems)
    assert "  accounts[0].evil\\nkey: unknown setting" in lines
    assert lines[0].startswith("plan\\n.toml: ")


def test_top_level_locations_have_no_leading_dot() -> None:
    """Problems at the top of the file are named `accounts`, never `.accounts`."""
    for data in ({"accounts": 5}, {"accounts": "x", "colour": 1}, {"accounts": [1]}):
        with pytest.raises(PlanError) as info:
            parse_plan(data, environ=ENV)
        assert info.value.problems
        assert not any(p.field.startswith(".") for p in info.value.problems)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a parsed plan, containers included."""
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


WRONG_VALUES: list[Any] = [5, 1.5, True, "x", [], [5], {}, {"a": 1}, None]


def test_any_wrong_type_anywhere_is_a_plan_error() -> None:
    """Every value of a valid plan, replaced by each wrong type, gives a PlanError or a plan."""
    data = mutate(["accounts", 0, "broker_keys"], [dict(BROKER)])
    data["accounts"][0]["copy_passphrase"] = "env:BROKER_KEY_PASS"
    checked = 0
    for path in _paths(data):
        for value in WRONG_VALUES:
            broken = copy.deepcopy(data)
            target: Any = broken
            for step in path[:-1]:
                target = target[step]
            if value is None:
                del target[path[-1]]
            else:
                target[path[-1]] = value
            problems: tuple[Problem, ...] = ()
            try:
                parse_plan(broken, environ=ENV)
            except PlanError as exc:
                problems = exc.problems
            assert not any(p.field.startswith(".") for p in problems)
            checked += 1
    assert checked >= 250  # the walk reached every place of the plan


def test_a_plan_that_is_not_utf8(tmp_path: Path) -> None:
    """A plan in another encoding is a PlanError naming the file, not a traceback."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(PLAN_TOML.replace('"alpha"', '"alpha\xe9"').encode("latin-1"))
    with pytest.raises(PlanError, match="not UTF-8") as info:
        load_plan(path, environ=ENV)
    assert info.value.problems[0].field == str(path)


UNKNOWN_KEYS: list[tuple[list[Any], str]] = [
    ([], "colour"),
    (["defaults"], "defaults.colour"),
    (["accounts", 0], "accounts[0].colour"),
    (SUB, "accounts[0].subaccounts[0].colour"),
    (KEY1, "accounts[0].subaccounts[0].keys[1].colour"),
]


@pytest.mark.parametrize(("table", "location"), UNKNOWN_KEYS, ids=[u[1] for u in UNKNOWN_KEYS])
def test_unknown_keys_are_refused_where_they_stand(table: list[Any], location: str) -> None:
    """A misspelt or misplaced key is an error naming the key and its table, never ignored."""
    data = base()
    target: Any = data
    for step in table:
        target = target[step]
    target["colour"] = "red"
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert [(p.field, p.rule) for p in info.value.problems] == [(location, "unknown setting")]


def test_an_unknown_broker_key_setting_is_refused() -> None:
    """Broker keys' tables refuse unknown keys too."""
    data = with_broker("colour", "red")
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert [p.field for p in info.value.problems] == ["accounts[0].broker_keys[0].colour"]


def test_every_structural_problem_is_reported_together() -> None:
    """Wrong types, missing and unknown keys anywhere come back in one error, each located."""
    data = base()
    data["accounts"][0]["credentials"] = 5
    data["accounts"][0]["subaccounts"][0]["keys"][1]["label"] = 7
    del data["accounts"][0]["subaccounts"][0]["name"]
    data["accounts"][0]["subaccounts"][0]["keys"][0]["permission"] = ["read"]
    data["accounts"].append({"name": "desk-b", "credentials": "env:DESK_B", "copy_api_key": 1})
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert {(p.field, p.rule) for p in info.value.problems} == {
        ("accounts[0].credentials", "must be a string, not int"),
        ("accounts[0].subaccounts[0].keys[1].label", "must be a string, not int"),
        ("accounts[0].subaccounts[0].name", "is required"),
        ("accounts[0].subaccounts[0].keys[0].permission", "unknown setting"),
        ("accounts[1].copy_api_key", "must be true or false"),
    }


def test_tables_and_arrays_of_tables_are_located() -> None:
    """A value where a table belongs is named at its own index, not only at its array."""
    data = base()
    data["accounts"][0]["subaccounts"][0]["keys"][1] = "read"
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert [(p.field, p.rule) for p in info.value.problems] == [
        ("accounts[0].subaccounts[0].keys[1]", "must be a table")
    ]


def test_a_structural_error_next_to_a_secret_never_shows_it() -> None:
    """A misspelt passphrase key holding a secret, and a secret of the wrong type, stay hidden."""
    data = base()
    data["accounts"][0]["subaccounts"][0]["keys"][1]["pasphrase"] = "MySecretPass99"
    data["accounts"][0]["subaccounts"][0]["keys"][0]["passphrase"] = ["MySecretPass98"]
    data["accounts"][0]["copy_passphrase"] = 918273645
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    shown = str(info.value) + repr(info.value) + repr(info.value.problems)
    assert "accounts[0].subaccounts[0].keys[1].pasphrase: unknown setting" in shown
    assert "accounts[0].subaccounts[0].keys[0].passphrase: must be a string" in shown
    for secret in ("MySecretPass99", "MySecretPass98", "918273645"):
        assert secret not in shown


def test_unknown_keys_and_broken_rules_are_reported_together() -> None:
    """A misspelt key does not hide the rules the plan's other values break."""
    data = mutate([*SUB, "name"], "bad")
    data["accounts"][0]["subaccounts"][0]["keys"][1]["lable"] = "read"
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert {p.field for p in info.value.problems} == {
        "accounts[0].subaccounts[0].keys[1].lable",
        "accounts[0].subaccounts[0].name",
    }


def test_a_broker_keys_passphrase_is_checked() -> None:
    """A passphrase Bitget would refuse is a plan problem, not a silently skipped broker key."""
    env = {**ENV, "BROKER_KEY_PASS": "short"}
    with pytest.raises(PlanError) as info:
        parse_plan(with_broker("label", "desk"), environ=env)
    assert [(p.field, p.rule) for p in info.value.problems] == [
        (
            "accounts[0].broker_keys[0].passphrase",
            "must be 8-32 characters, English letters and digits only",
        )
    ]
    assert "short" not in str(info.value)


def _with_second_account(name: str) -> dict[str, Any]:
    """base() and a second, valid account whose one sub-account is called ``name``."""
    data = base()
    data["accounts"].append(
        {
            "name": "desk-b",
            "credentials": "env:DESK_B",
            "subaccounts": [
                {"name": name, "label": "beta", "keys": [{"label": "k", "permissions": ["read"]}]}
            ],
        }
    )
    return data


def _delete_a_keys_label(data: dict[str, Any]) -> None:
    del data["accounts"][0]["subaccounts"][0]["keys"][0]["label"]


def _copy_api_key_yes(data: dict[str, Any]) -> None:
    data["accounts"][0]["copy_api_key"] = "yes"


@pytest.mark.parametrize(
    ("breaks", "structural"),
    [
        (_delete_a_keys_label, ("accounts[0].subaccounts[0].keys[0].label", "is required")),
        (_copy_api_key_yes, ("accounts[0].copy_api_key", "must be true or false")),
    ],
    ids=["missing-label", "wrong-type"],
)
def test_a_structural_problem_does_not_hide_another_accounts_broken_rules(
    breaks: Callable[[dict[str, Any]], None], structural: tuple[str, str]
) -> None:
    """A missing or mistyped value, and a bad name under another account, come in one error."""
    data = _with_second_account("alpha")
    breaks(data)
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert [(p.field, p.rule) for p in info.value.problems] == [
        structural,
        ("accounts[1].subaccounts[0].name", "must be exactly 8 English letters (got 'alpha')"),
    ]


def test_an_unreadable_account_adds_no_problem_of_its_own() -> None:
    """Nothing is inferred from an unreadable account: no "names no account", no duplicate."""
    data = _with_second_account("alphabot")  # the name base() uses: a duplicate once read
    data["accounts"][0]["credentials"] = 5
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert [(p.field, p.rule) for p in info.value.problems] == [
        ("accounts[0].credentials", "must be a string, not int")
    ]
    with pytest.raises(PlanError) as info:
        parse_plan({"accounts": [{"name": "desk-a"}]}, environ=ENV)
    assert [p.field for p in info.value.problems] == ["accounts[0].credentials"]


def test_an_unreadable_default_waits_only_for_what_uses_it() -> None:
    """Keys taking [defaults] wait for it; the values that don't are still checked."""
    data = _with_second_account("alpha")
    data["defaults"]["ip_list"] = "203.0.113.7"
    data["accounts"][1]["subaccounts"][0]["keys"][0]["ip_list"] = ["192.168.1.1"]
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert [p.field for p in info.value.problems] == [
        "defaults.ip_list",
        "accounts[1].subaccounts[0].name",
        "accounts[1].subaccounts[0].keys[0].ip_list[0]",
    ]
    assert "private" in info.value.problems[2].rule


def test_problems_of_readable_accounts_name_their_lines(tmp_path: Path) -> None:
    """Beside a structural problem, a broken rule is located by its line too."""
    text = PLAN_TOML.replace("copy_api_key = false", 'copy_api_key = "yes"') + (
        '\n[[accounts.subaccounts]]\nname = "beta"\nlabel = "beta"\n'
        '\n[[accounts.subaccounts.keys]]\nlabel = "k"\npermissions = ["read"]\n'
    )
    path = tmp_path / "plan.toml"
    path.write_text(text)
    with pytest.raises(PlanError) as info:
        load_plan(path, environ=ENV)
    lines = text.splitlines()
    assert [(p.field, p.line) for p in info.value.problems] == [  # type: ignore[attr-defined]
        ("accounts[0].copy_api_key", lines.index('copy_api_key = "yes"') + 1),
        ("accounts[1].subaccounts[0].name", lines.index('name = "beta"') + 1),
    ]
