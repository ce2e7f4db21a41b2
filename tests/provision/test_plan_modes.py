"""A plan's mode: the classic and unified rules, and how plan keys map to unified (v3) keys."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from bitget_keys import models as m
from bitget_keys.errors import PlanError, ValidationError
from bitget_keys.provision import PlanMode
from bitget_keys.provision.plan import (
    KeySpec,
    SubaccountSpec,
    load_plan,
    parse_plan,
    plan_error,
    shard_plan,
)
from bitget_keys.provision.plan_lines import locate
from bitget_keys.provision.plan_modes import (
    UnifiedKey,
    mode_problems,
    unified_key,
    unified_subaccount,
)
from tests.provision.test_plan import ENV

IP = "203.0.113.7"
P = m.Permission


def key(*permissions: str, perm_type: str | None = None, label: str = "trade") -> KeySpec:
    return KeySpec(
        label=label,
        permissions=tuple(m.permission(value) for value in permissions),
        ip_list=(IP,),
        perm_type=None if perm_type is None else m.PermType(perm_type),
    )


@pytest.mark.parametrize(
    "permission",
    [
        "spot_trade",
        "margin_trade",
        "contract_trade",
        "contract_order",
        "contract_position",
        "copytrading_trade",
        "uta_trade",
    ],
)
def test_every_trading_permission_is_uta_trade(permission: str) -> None:
    """A v2 trading permission, and uta_trade itself, map to one read-write uta_trade."""
    assert unified_key(key(permission)) == UnifiedKey(
        note="trade", type=m.UTAKeyType.READ_WRITE, permissions=(P.UTA_TRADE,), ips=(IP,)
    )


def test_uta_mgt_stays() -> None:
    assert unified_key(key("uta_mgt")).permissions == (P.UTA_MGT,)


@pytest.mark.parametrize("perm_type", [None, "readonly", "read_and_write"])
def test_a_key_with_only_read_is_a_read_only_uta_trade_key(perm_type: str | None) -> None:
    """Only ``read``: read-only on trading data, whatever its perm_type (it could write nothing)."""
    mapped = unified_key(key("read", perm_type=perm_type))
    assert (mapped.type, mapped.permissions) == (m.UTAKeyType.READ_ONLY, (P.UTA_TRADE,))


@pytest.mark.parametrize(
    ("perm_type", "expected"),
    [
        (None, m.UTAKeyType.READ_WRITE),
        ("read_and_write", m.UTAKeyType.READ_WRITE),
        ("readonly", m.UTAKeyType.READ_ONLY),
    ],
)
def test_perm_type_is_the_key_type(perm_type: str | None, expected: m.UTAKeyType) -> None:
    assert unified_key(key("spot_trade", perm_type=perm_type)).type is expected


def test_permissions_mapping_to_one_are_merged_and_read_adds_nothing() -> None:
    """Several trading permissions are one uta_trade; read beside others changes nothing."""
    assert unified_key(key("spot_trade", "contract_trade", "margin_trade")).permissions == (
        P.UTA_TRADE,
    )
    mapped = unified_key(key("uta_mgt", "read", "spot_trade", "contract_order"))
    assert (mapped.type, mapped.permissions) == (m.UTAKeyType.READ_WRITE, (P.UTA_MGT, P.UTA_TRADE))


@pytest.mark.parametrize("permission", ["transfer", "wallet_transfer", "wallet_withdraw"])
def test_a_permission_without_unified_equivalent_is_refused(permission: str) -> None:
    """Refused, never dropped: the key would otherwise lack what the plan asks for."""
    with pytest.raises(ValidationError) as info:
        unified_key(key("spot_trade", permission))
    assert [(p.field, p.rule) for p in info.value.problems] == [
        (
            "permissions[1]",
            (
                f"{permission!r} has no unified-account (v3) equivalent; "
                'remove it or pin mode = "classic"'
            ),
        )
    ]


def test_an_unknown_permission_or_perm_type_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        unified_key(key("admin_rights", perm_type="admin"))
    assert info.value.fields == ("permissions[0]", "perm_type")
    assert "admin_rights is not valid here; one of: " in info.value.problems[0].rule
    assert "admin is not valid" in info.value.problems[1].rule
    with pytest.raises(ValidationError) as info:
        unified_key(key("read", perm_type="admin"))  # read-only or not, "admin" is no type
    assert info.value.fields == ("perm_type",)


def test_a_subaccount_is_its_lowercase_username_and_its_label_note() -> None:
    sub = SubaccountSpec(name="AlphaBot", label="alpha desk", keys=(key("read"),))
    assert unified_subaccount(sub) == ("alphabot", "alpha desk")


def classic_plan() -> dict[str, Any]:
    return {
        "defaults": {"ip_list": [IP], "perm_type": "read_and_write"},
        "accounts": [
            {
                "name": "desk-a",
                "credentials": "env:DESK_A",
                "subaccounts": [
                    {
                        "name": "AlphaBot",
                        "label": "alpha",
                        "keys": [
                            {"label": "trade", "permissions": ["spot_trade", "contract_trade"]},
                            {"label": "reader", "permissions": ["read"]},
                            {
                                "label": "futures",
                                "permissions": ["contract_order", "contract_position"],
                                "perm_type": "readonly",
                            },
                        ],
                    }
                ],
            }
        ],
    }


def test_a_classic_plan_under_auto_maps_cleanly_to_unified() -> None:
    """A plan written for classic masters loads as auto, and meets the unified rules too."""
    (account,) = parse_plan(classic_plan(), environ=ENV).accounts
    assert account.mode is PlanMode.AUTO
    assert mode_problems(account, PlanMode.UNIFIED, "accounts[0]") == []
    assert mode_problems(account, PlanMode.CLASSIC, "accounts[0]") == []
    keys = [unified_key(k) for k in account.subaccounts[0].keys]
    assert [(k.type, k.permissions) for k in keys] == [
        (m.UTAKeyType.READ_WRITE, (P.UTA_TRADE,)),
        (m.UTAKeyType.READ_ONLY, (P.UTA_TRADE,)),
        (m.UTAKeyType.READ_ONLY, (P.UTA_TRADE,)),
    ]


def test_an_auto_account_meets_the_unified_rules_once_its_master_is_known() -> None:
    """Valid for classic masters, refused for unified ones, each at its plan field."""
    data = classic_plan()
    sub = data["accounts"][0]["subaccounts"][0]
    sub["keys"][0]["label"] = "spot desk"
    sub["keys"][1]["permissions"] = ["read", "transfer"]
    (account,) = parse_plan(data, environ=ENV).accounts
    assert mode_problems(account, PlanMode.CLASSIC, "accounts[3]") == []
    problems = mode_problems(account, PlanMode.UNIFIED, "accounts[3]")
    assert [p.field for p in problems] == [
        "accounts[3].subaccounts[0].keys[0].label",
        "accounts[3].subaccounts[0].keys[1].permissions[1]",
    ]


def test_auto_is_no_masters_mode() -> None:
    (account,) = parse_plan(classic_plan(), environ=ENV).accounts
    with pytest.raises(ValueError, match="not auto"):
        mode_problems(account, PlanMode.AUTO, "accounts[0]")


def unified_plan() -> dict[str, Any]:
    return {
        "defaults": {"ip_list": [IP], "perm_type": "readonly"},
        "accounts": [
            {
                "name": "desk-a",
                "credentials": "env:DESK_A",
                "mode": "unified",
                "subaccounts": [
                    {
                        "name": "marketmakerbots",  # 15 lowercase letters
                        "label": "market making, all venues (desk A)",
                        "keys": [
                            {"label": "trade-1", "permissions": ["uta_trade", "uta_mgt"]},
                            {
                                "label": "Reader_2",
                                "permissions": ["uta_trade"],
                                "perm_type": "read_and_write",
                            },
                        ],
                    }
                ],
            }
        ],
    }


def test_a_unified_plan_takes_the_unified_rules() -> None:
    """Long lowercase names, long labels, uta_* permissions, a first key's perm_type."""
    (account,) = parse_plan(unified_plan(), environ=ENV).accounts
    assert account.mode is PlanMode.UNIFIED
    first, second = account.subaccounts[0].keys
    # No batch-create: [defaults] perm_type reaches the first key too.
    assert first.perm_type is m.PermType.READONLY
    assert second.perm_type is m.PermType.READ_AND_WRITE
    assert mode_problems(account, PlanMode.UNIFIED, "accounts[0]") == []
    # Under a classic master the same account breaks the classic rules.
    fields = [p.field for p in mode_problems(account, PlanMode.CLASSIC, "accounts[0]")]
    assert fields == [
        "accounts[0].subaccounts[0].name",
        "accounts[0].subaccounts[0].label",
        "accounts[0].subaccounts[0].keys[0].perm_type",
        "accounts[0].subaccounts[0].keys[0].permissions[0]",
        "accounts[0].subaccounts[0].keys[0].permissions[1]",
        "accounts[0].subaccounts[0].keys[1].permissions[0]",
    ]


def test_the_same_plan_is_refused_when_pinned_classic() -> None:
    data = unified_plan()
    data["accounts"][0]["mode"] = "classic"
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert "accounts[0].subaccounts[0].name" in info.value.fields


def test_defaults_mode_applies_to_accounts_without_their_own() -> None:
    data = unified_plan()
    data["defaults"]["mode"] = data["accounts"][0].pop("mode")
    assert parse_plan(data, environ=ENV).accounts[0].mode is PlanMode.UNIFIED
    data["accounts"][0]["mode"] = "auto"
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert "accounts[0].subaccounts[0].name" in info.value.fields


SUB = ["accounts", 0, "subaccounts", 0]
KEY0 = [*SUB, "keys", 0]


def unified_with(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(unified_plan())
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return data


UNIFIED_BAD: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "name-uppercase",
        unified_with([*SUB, "name"], "MarketMaker"),
        "accounts[0].subaccounts[0].name",
        "lowercase English letters",
    ),
    (
        "name-long",
        unified_with([*SUB, "name"], "a" * 21),
        "accounts[0].subaccounts[0].name",
        "1-20 lowercase",
    ),
    (
        "label-long",
        unified_with([*SUB, "label"], "x" * 51),
        "accounts[0].subaccounts[0].label",
        "at most 50 characters",
    ),
    (
        "label-slash",
        unified_with([*SUB, "label"], "a/b"),
        "accounts[0].subaccounts[0].label",
        "'/'",
    ),
    (
        "key-label-space",
        unified_with([*KEY0, "label"], "trade one"),
        "accounts[0].subaccounts[0].keys[0].label",
        "must start with an English letter, then letters, digits, '-' or '_'",
    ),
    (
        "key-label-digit-first",
        unified_with([*KEY0, "label"], "1trade"),
        "accounts[0].subaccounts[0].keys[0].label",
        "must start with an English letter",
    ),
    (
        "key-perm-transfer",
        unified_with([*KEY0, "permissions"], ["uta_trade", "transfer"]),
        "accounts[0].subaccounts[0].keys[0].permissions[1]",
        "no unified-account (v3) equivalent",
    ),
    (
        "key-no-permissions",
        unified_with([*KEY0, "permissions"], []),
        "accounts[0].subaccounts[0].keys[0].permissions",
        "at least one permission",
    ),
    (
        "key-perm-type",
        unified_with([*KEY0, "perm_type"], "admin"),
        "accounts[0].subaccounts[0].keys[0].perm_type",
        "admin is not valid",
    ),
    (
        "key-31-ips",
        unified_with([*KEY0, "ip_list"], [f"203.0.113.{i}" for i in range(1, 32)]),
        "accounts[0].subaccounts[0].keys[0].ip_list",
        "at most 30 entries",
    ),
    (
        "key-private-ip",
        unified_with([*KEY0, "ip_list"], ["10.0.0.1"]),
        "accounts[0].subaccounts[0].keys[0].ip_list[0]",
        "private",
    ),
    (
        "first-key-perm-type-int",
        unified_with([*KEY0, "perm_type"], 5),
        "accounts[0].subaccounts[0].keys[0].perm_type",
        "must be a string, not int",
    ),
    (
        "mode-hybrid",
        unified_with(["accounts", 0, "mode"], "hybrid"),
        "accounts[0].mode",
        "'hybrid' is not valid; one of: auto, classic, unified",
    ),
    (
        "defaults-mode-hybrid",
        unified_with(["defaults", "mode"], "hybrid"),
        "defaults.mode",
        "'hybrid' is not valid; one of: auto, classic, unified",
    ),
    (
        "mode-not-a-string",
        unified_with(["accounts", 0, "mode"], True),
        "accounts[0].mode",
        "must be a string, not bool",
    ),
    (
        "twenty-one-subaccounts",
        unified_with(
            [*SUB[:-1]],
            [
                {
                    "name": "sub" + chr(97 + i),
                    "label": f"s{i}",
                    "keys": [{"label": "k", "permissions": ["uta_trade"]}],
                }
                for i in range(21)
            ],
        ),
        "accounts[0].subaccounts",
        "at most 20",
    ),
]


@pytest.mark.parametrize(
    ("data", "location", "fragment"),
    [case[1:] for case in UNIFIED_BAD],
    ids=[case[0] for case in UNIFIED_BAD],
)
def test_each_unified_rule_is_located(data: dict[str, Any], location: str, fragment: str) -> None:
    """One broken rule, one problem, at the plan's own field."""
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert [p.field for p in info.value.problems] == [location]
    assert fragment in info.value.problems[0].rule


def test_an_unreadable_defaults_still_tells_its_mode() -> None:
    """A [defaults] whose ip_list can't be read still pins unified when its mode is right."""
    data = unified_with(["defaults", "ip_list"], IP)
    data["defaults"]["mode"] = data["accounts"][0].pop("mode")
    for key_row in data["accounts"][0]["subaccounts"][0]["keys"]:
        key_row["ip_list"] = [IP]
        key_row["perm_type"] = "readonly"
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert info.value.fields == ("defaults.ip_list",)


def test_names_are_unique_across_modes_whatever_their_case() -> None:
    data = unified_plan()
    data["accounts"].append(
        {
            "name": "desk-b",
            "credentials": "env:DESK_B",
            "subaccounts": [
                {
                    "name": "MarketMakerBots"[:8],
                    "label": "b",
                    "keys": [{"label": "k", "permissions": ["read"]}],
                },
            ],
        }
    )
    data["accounts"][0]["subaccounts"][0]["name"] = "marketma"
    with pytest.raises(PlanError) as info:
        parse_plan(data, environ=ENV)
    assert [(p.field, p.rule) for p in info.value.problems] == [
        (
            "accounts[1].subaccounts[0].name",
            "'MarketMa' is also planned under accounts[0]; names are unique across Bitget",
        )
    ]


UNIFIED_TOML = """
[defaults]
ip_list = ["203.0.113.7"]
mode = "unified"

[[accounts]]
name = "desk-a"
credentials = "env:DESK_A"

[[accounts.subaccounts]]
name = "marketmakerbots"
label = "market making"

[[accounts.subaccounts.keys]]
label = "trade"
permissions = ["uta_trade"]

[[accounts.subaccounts.keys]]
label = "1reader"
permissions = ["uta_trade"]
perm_type = "readonly"
"""


def test_unified_problems_name_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(UNIFIED_TOML)
    with pytest.raises(PlanError) as info:
        load_plan(path, environ=ENV)
    lines = UNIFIED_TOML.splitlines()
    assert [(p.field, p.line) for p in info.value.problems] == [  # type: ignore[attr-defined]
        ("accounts[0].subaccounts[0].keys[1].label", lines.index('label = "1reader"') + 1)
    ]


# Valid for classic masters (so for an auto account), not for unified ones.
AUTO_TOML = (
    UNIFIED_TOML.replace('mode = "unified"\n', "")
    .replace('"marketmakerbots"', '"MarketMa"')
    .replace('permissions = ["uta_trade"]\n\n', 'permissions = ["spot_trade"]\n\n', 1)
    .replace('permissions = ["uta_trade"]\nperm', 'permissions = ["read", "transfer"]\nperm')
)


def test_problems_found_after_detection_are_located_like_load_time_ones(tmp_path: Path) -> None:
    """An auto account's unified problems get the lines of the plan text, as apply shows them."""
    path = tmp_path / "plan.toml"
    path.write_text(AUTO_TOML)
    (account,) = load_plan(path, environ=ENV).accounts
    problems = mode_problems(account, PlanMode.UNIFIED, account.where)
    lines = AUTO_TOML.splitlines()
    assert locate(tuple(problems), AUTO_TOML) == plan_error(problems, path).problems
    assert [(p.field, p.line) for p in plan_error(problems, path).problems] == [  # type: ignore[attr-defined]
        (
            "accounts[0].subaccounts[0].keys[1].permissions[1]",
            lines.index('permissions = ["read", "transfer"]') + 1,
        ),
        ("accounts[0].subaccounts[0].keys[1].label", lines.index('label = "1reader"') + 1),
    ]


def test_an_account_keeps_its_place_in_the_file_across_shards() -> None:
    """Problems found in a shard's account are located at its entry in the whole file."""
    data = classic_plan()
    second = copy.deepcopy(data["accounts"][0])
    second.update(name="desk-b", credentials="env:DESK_B")
    second["subaccounts"][0]["name"] = "BetaBots"
    second["subaccounts"][0]["keys"][1]["permissions"] = ["read", "transfer"]
    data["accounts"].append(second)
    (account,) = shard_plan(parse_plan(data, environ=ENV), 2, 2).accounts
    assert (account.name, account.where) == ("desk-b", "accounts[1]")
    problems = mode_problems(account, PlanMode.UNIFIED, account.where)
    assert [p.field for p in problems] == ["accounts[1].subaccounts[0].keys[1].permissions[1]"]


def test_plan_error_without_the_file_still_names_every_problem(tmp_path: Path) -> None:
    (account,) = parse_plan(unified_plan(), environ=ENV).accounts
    problems = mode_problems(account, PlanMode.CLASSIC, account.where)
    error = plan_error(problems, tmp_path / "gone.toml")
    assert [(p.field, p.line) for p in error.problems] == [  # type: ignore[attr-defined]
        (p.field, None) for p in problems
    ]
    assert error.subject == str(tmp_path / "gone.toml")
