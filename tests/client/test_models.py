"""Request models check every documented Bitget rule before anything is sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bitget_keys import Secret
from bitget_keys import models as m
from bitget_keys.errors import ValidationError

PASS = "Passw0rd1234"
IP = "203.0.113.7"


def e2(**overrides: Any) -> m.CreateVirtualSubaccountAPIKeyRequest:
    fields: dict[str, Any] = {
        "subaccount_uid": "1234567890",
        "passphrase": PASS,
        "label": "bot01",
        "ip_list": [IP],
        "permissions": ["spot_trade"],
    }
    return m.CreateVirtualSubaccountAPIKeyRequest(**(fields | overrides))


def item(**overrides: Any) -> m.NewVirtualSubaccount:
    fields: dict[str, Any] = {
        "name": "abcdefgh",
        "passphrase": PASS,
        "label": "bot01",
        "ip_list": [IP],
        "permissions": ["spot_trade"],
    }
    return m.NewVirtualSubaccount(**(fields | overrides))


def batch(count: int) -> m.BatchCreateVirtualSubaccountsRequest:
    letters = "abcdefghijklmnop"
    items = [item(name=letters[i] * 8, label=f"bot{i}") for i in range(count)]
    return m.BatchCreateVirtualSubaccountsRequest(items=items)


def e4(**overrides: Any) -> m.ModifyBrokerSubaccountAPIKeyRequest:
    fields: dict[str, Any] = {
        "sub_uid": "1234567890",
        "api_key": "bg_key",
        "passphrase": PASS,
        "permissions": ["spot_trade"],
        "perm_type": "read_and_write",
    }
    return m.ModifyBrokerSubaccountAPIKeyRequest(**(fields | overrides))


def s7(**overrides: Any) -> m.CreateBrokerSubaccountAPIKeyRequest:
    fields: dict[str, Any] = {
        "sub_uid": "1234567890",
        "passphrase": PASS,
        "label": "bot",
        "perm_type": "read_and_write",
        "permissions": ["spot_trade"],
        "ip_list": [IP],
    }
    return m.CreateBrokerSubaccountAPIKeyRequest(**(fields | overrides))


def s4(**overrides: Any) -> m.ModifyVirtualSubaccountAPIKeyRequest:
    fields: dict[str, Any] = {
        "subaccount_uid": "1234567890",
        "api_key": "bg_key",
        "passphrase": PASS,
        "label": "bot",
        "ip_list": [IP],
    }
    return m.ModifyVirtualSubaccountAPIKeyRequest(**(fields | overrides))


BAD_INPUT: list[tuple[str, Callable[[], object], str, str]] = [
    # (case id, builder, field named, words of the rule)
    ("passphrase-short", lambda: e2(passphrase="abc1234"), "passphrase", "8-32"),
    ("passphrase-long", lambda: e2(passphrase="a1" * 17), "passphrase", "8-32"),
    ("passphrase-symbols", lambda: e2(passphrase="Passw0rd!!"), "passphrase", "letters and digits"),
    ("passphrase-space", lambda: e2(passphrase="Pass w0rd12"), "passphrase", "letters and digits"),
    ("passphrase-unicode", lambda: e2(passphrase="Pässw0rd12"), "passphrase", "letters and digits"),
    (
        "copy-passphrase",
        lambda: m.CreateCopyAPIKeyRequest(passphrase="short"),
        "passphrase",
        "8-32",
    ),
    ("label-empty", lambda: e2(label=""), "label", "1-20"),
    ("label-21", lambda: e2(label="x" * 21), "label", "1-20"),
    ("broker-label-20", lambda: e4(label="x" * 20), "label", "1-19"),
    ("broker-create-label-20", lambda: s7(label="y" * 20), "label", "1-19"),
    (
        "ip-list-31",
        lambda: e2(ip_list=[f"203.0.113.{i}" for i in range(31)]),
        "ip_list",
        "at most 30",
    ),
    ("ip-not-an-ip", lambda: e2(ip_list=["example.com"]), "ip_list[0]", "not an IP"),
    ("ip-10", lambda: e2(ip_list=[IP, "10.1.2.3"]), "ip_list[1]", "private"),
    ("ip-172-16", lambda: e2(ip_list=["172.16.5.4"]), "ip_list[0]", "172.16.0.0/12"),
    ("ip-172-31", lambda: e2(ip_list=["172.31.255.255"]), "ip_list[0]", "private"),
    ("ip-192-168", lambda: e2(ip_list=["192.168.1.1"]), "ip_list[0]", "192.168.0.0/16"),
    ("ip-loopback", lambda: e2(ip_list=["127.0.0.1"]), "ip_list[0]", "loopback"),
    ("ip-loopback-doc", lambda: e2(ip_list=["127.127.127.127"]), "ip_list[0]", "egress"),
    ("ip-v6", lambda: e2(ip_list=["2001:db8::1"]), "ip_list[0]", "IPv4"),
    ("ip-unspecified", lambda: e2(ip_list=["0.0.0.0"]), "ip_list[0]", "unspecified"),  # noqa: S104
    ("ip-this-network", lambda: e2(ip_list=["0.1.2.3"]), "ip_list[0]", "0.0.0.0/8"),
    ("ip-link-local", lambda: e2(ip_list=["169.254.10.1"]), "ip_list[0]", "link-local"),
    ("ip-shared-cgnat", lambda: e2(ip_list=["100.64.0.1"]), "ip_list[0]", "100.64.0.0/10"),
    ("ip-shared-cgnat-top", lambda: e2(ip_list=["100.127.255.254"]), "ip_list[0]", "shared"),
    ("ip-multicast", lambda: e2(ip_list=["224.0.0.1"]), "ip_list[0]", "multicast"),
    ("ip-multicast-top", lambda: e2(ip_list=["239.255.255.250"]), "ip_list[0]", "multicast"),
    ("ip-broadcast", lambda: e2(ip_list=["255.255.255.255"]), "ip_list[0]", "broadcast"),
    ("ip-reserved", lambda: e2(ip_list=["240.0.0.1"]), "ip_list[0]", "reserved"),
    ("ip-benchmarking", lambda: e2(ip_list=["198.18.0.1"]), "ip_list[0]", "benchmarking"),
    ("ip-ietf", lambda: e2(ip_list=["192.0.0.1"]), "ip_list[0]", "192.0.0.0/24"),
    ("ip-not-a-string", lambda: e2(ip_list=[203]), "ip_list[0]", "must be a string"),
    ("ip-a-list", lambda: e2(ip_list=[["203.0.113.7"]]), "ip_list[0]", "must be a string"),
    ("e3-ip-link-local", lambda: item(ip_list=["169.254.0.1"]), "ip_list[0]", "egress"),
    ("s7-ip-multicast", lambda: s7(ip_list=["224.1.2.3"]), "ip_list[0]", "multicast"),
    ("ip-duplicate", lambda: e2(ip_list=[IP, IP]), "ip_list[1]", "twice"),
    ("e4-ip-private", lambda: e4(ip_list=["192.168.0.9"]), "ip_list[0]", "private"),
    ("e4-ip-empty", lambda: e4(ip_list=[]), "ip_list", "no change"),
    ("name-short", lambda: item(name="test"), "name", "exactly 8 English letters"),
    ("name-long", lambda: item(name="abcdefghi"), "name", "exactly 8"),
    ("name-digits", lambda: item(name="abcdefg1"), "name", "English letters"),
    ("name-accented", lambda: item(name="abcdefgé"), "name", "English letters"),
    ("batch-empty", lambda: m.BatchCreateVirtualSubaccountsRequest(items=[]), "items", "1-5"),
    ("batch-six", lambda: batch(6), "items", "1-5"),
    (
        "batch-duplicate-label",
        lambda: m.BatchCreateVirtualSubaccountsRequest(items=[item(), item(name="bbbbbbbb")]),
        "items[1].label",
        "unique within a batch",
    ),
    (
        "batch-duplicate-name",
        lambda: m.BatchCreateVirtualSubaccountsRequest(items=[item(), item(label="other")]),
        "items[1].name",
        "twice",
    ),
    ("e2-unknown-permission", lambda: e2(permissions=["withdraw"]), "permissions[0]", "not valid"),
    ("e2-no-permission", lambda: e2(permissions=[]), "permissions", "at least one"),
    (
        "e2-duplicate-permission",
        lambda: e2(permissions=["read", "read"]),
        "permissions[1]",
        "twice",
    ),
    (
        "e3-broker-permission",
        lambda: item(permissions=["contract_order"]),
        "permissions[0]",
        "not valid",
    ),
    ("e3-transfer", lambda: item(permissions=["transfer"]), "permissions[0]", "not valid"),
    (
        "e4-user-permission",
        lambda: e4(permissions=["contract_trade"]),
        "permissions[0]",
        "not valid",
    ),
    ("e4-withdraw", lambda: e4(permissions=["wallet_withdraw"]), "permissions[0]", "not valid"),
    (
        "withdraw-readonly",
        lambda: e2(permissions=["wallet_withdraw"], perm_type="readonly"),
        "permissions",
        "not allowed with perm_type readonly",
    ),
    (
        "transfer-readonly",
        lambda: e4(permissions=["wallet_transfer"], perm_type="readonly"),
        "permissions",
        "needs perm_type read_and_write",
    ),
    (
        "transfer-no-perm-type",
        lambda: e2(permissions=["wallet_transfer"]),
        "permissions",
        "read_and_write",
    ),
    ("perm-type-unknown", lambda: e4(perm_type="admin"), "perm_type", "not valid"),
    ("perm-type-int", lambda: e4(perm_type=5), "perm_type", "read_and_write, readonly (got int"),
    ("e2-perm-type-int", lambda: e2(perm_type=5), "perm_type", "must be one of"),
    ("s7-perm-type-list", lambda: s7(perm_type=["readonly"]), "perm_type", "must be one of"),
    ("label-slash", lambda: e2(label="x/y"), "label", "'/'"),
    ("label-backslash", lambda: e2(label="x\\ny"), "label", "'\\\\'"),
    ("label-newline", lambda: e2(label="ok\nfake"), "label", "\\n (U+000A)"),
    ("label-nul", lambda: e2(label="a\x00b"), "label", "U+0000"),
    ("label-esc", lambda: e2(label="a\x1b[2Jb"), "label", "U+001B"),
    ("label-rtl-override", lambda: e2(label="abc\u202edef"), "label", "U+202E"),
    ("label-rtl-isolate", lambda: e2(label="abc\u2067def"), "label", "U+2067"),
    ("label-zero-width", lambda: e2(label="ab\u200bc"), "label", "U+200B"),
    ("label-line-separator", lambda: e2(label="a\u2028b"), "label", "U+2028"),
    ("label-paragraph-separator", lambda: e2(label="a\u2029b"), "label", "U+2029"),
    ("label-no-break-space", lambda: e2(label="a\u00a0b"), "label", "U+00A0"),
    ("label-leading-space", lambda: e2(label=" bot"), "label", "begin or end with a space"),
    ("label-trailing-space", lambda: e2(label="bot "), "label", "begin or end with a space"),
    ("label-not-a-string", lambda: e2(label=5), "label", "must be a string"),
    ("e3-label-slash", lambda: item(label="a/b"), "label", "'/'"),
    ("e3-label-tab", lambda: item(label="a\tb"), "label", "control"),
    ("s4-label-slash", lambda: s4(label="a/b"), "label", "'/'"),
    ("e4-label-newline", lambda: e4(label="a\nb"), "label", "U+000A"),
    ("s7-label-bidi", lambda: s7(label="a\u202eb"), "label", "U+202E"),
    ("uid-letters", lambda: e2(subaccount_uid="abc"), "subaccount_uid", "numeric UID"),
    ("uid-not-a-string", lambda: e2(subaccount_uid=1234567890), "subaccount_uid", "numeric UID"),
    (
        "batch-item-not-a-model",
        lambda: m.BatchCreateVirtualSubaccountsRequest(items=[{"name": "abcdefgh"}]),  # type: ignore[list-item]
        "items[0]",
        "must be a NewVirtualSubaccount",
    ),
    ("broker-uid-empty", lambda: e4(sub_uid=""), "sub_uid", "numeric UID"),
    ("api-key-blank", lambda: e4(api_key="  "), "api_key", "empty"),
    ("s7-passphrase-5", lambda: s7(passphrase="abc12"), "passphrase", "6-32"),
    ("s7-no-ips-read-write", lambda: s7(ip_list=[]), "ip_list", "unless perm_type is readonly"),
    (
        "s4-bad-permission",
        lambda: s4(permissions=["wallet_transfer"]),
        "permissions[0]",
        "not valid",
    ),
    ("list-limit-0", lambda: m.ListVirtualSubaccountsRequest(limit=0), "limit", "1-500"),
    ("list-limit-501", lambda: m.ListVirtualSubaccountsRequest(limit=501), "limit", "1-500"),
    (
        "list-cursor",
        lambda: m.ListVirtualSubaccountsRequest(id_less_than="abc"),
        "id_less_than",
        "numeric",
    ),
    (
        "list-status",
        lambda: m.ListVirtualSubaccountsRequest(status="del"),
        "status",
        "normal or freeze",
    ),
    (
        "s5-name",
        lambda: m.CreateVirtualSubaccountsRequest(names=["abc"]),
        "names[0]",
        "8 English letters",
    ),
    ("s5-empty", lambda: m.CreateVirtualSubaccountsRequest(names=[]), "names", "at least one"),
    (
        "s3-uid",
        lambda: m.ListVirtualSubaccountAPIKeysRequest(subaccount_uid="x1"),
        "subaccount_uid",
        "numeric",
    ),
]


@pytest.mark.parametrize(
    ("build", "field", "rule"),
    [pytest.param(build, field, rule, id=case) for case, build, field, rule in BAD_INPUT],
)
def test_bad_input_is_refused_with_field_and_rule(
    build: Callable[[], object], field: str, rule: str
) -> None:
    """Each broken rule raises ValidationError naming the field and stating the rule."""
    with pytest.raises(ValidationError) as info:
        build()
    assert field in info.value.fields
    assert rule in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_input_count() -> None:
    """The rule table covers at least thirty distinct bad inputs."""
    assert len(BAD_INPUT) >= 30


def test_every_problem_is_reported_at_once() -> None:
    """All broken rules of one request are listed together, each with its field."""
    with pytest.raises(ValidationError) as info:
        e2(subaccount_uid="x", passphrase="no", label="", ip_list=["10.0.0.1"], permissions=[])
    assert info.value.fields == (
        "subaccount_uid",
        "passphrase",
        "label",
        "permissions",
        "ip_list[0]",
    )


def test_passphrase_never_appears_in_the_error() -> None:
    """A refused passphrase is described, never echoed."""
    with pytest.raises(ValidationError) as info:
        e2(passphrase="Secret!Value")
    assert "Secret!Value" not in str(info.value)
    assert "Secret!Value" not in repr(info.value)


def test_documentation_ranges_are_accepted() -> None:
    """The three documentation ranges are fine although they are not global (examples use them)."""
    addresses = ("203.0.113.7", "198.51.100.1", "192.0.2.44")
    assert e2(ip_list=addresses).ip_list == addresses
    assert all(m.ip_problem(address) is None for address in addresses)


def test_global_addresses_are_accepted() -> None:
    """Public addresses pass, including global ones next to refused ranges."""
    addresses = ("8.8.8.8", "100.63.255.255", "100.128.0.1", "169.253.0.1", "223.255.255.254")
    assert e2(ip_list=addresses).ip_list == addresses


def test_label_rule_is_one_function() -> None:
    """The models' label rule is public, so a plan checks sub-account labels with it too."""
    assert m.label_problem("alpha-1 bot_2.x") is None
    assert m.label_problem("交易机器人") is None  # letters of any script print as written
    assert m.label_problem("x" * 20) is None
    assert m.label_problem("x" * 20, max_length=m.BROKER_LABEL_MAX_LENGTH) is not None
    assert "'/'" in (m.label_problem("x/y") or "")
    with pytest.raises(ValidationError, match="'/'"):
        item(label="x/y")


def test_lone_string_lists_are_refused() -> None:
    """A string where a list belongs is a TypeError, not a list of characters."""
    with pytest.raises(TypeError):
        e2(ip_list="203.0.113.7")
    with pytest.raises(TypeError):
        e2(permissions="spot_trade")


def test_valid_requests_normalise_values() -> None:
    """Lists become tuples, strings become enums and Secrets."""
    request = e2(permissions=["spot_trade", m.Permission.READ], perm_type="readonly")
    assert request.permissions == (m.Permission.SPOT_TRADE, m.Permission.READ)
    assert request.perm_type is m.PermType.READONLY
    assert isinstance(request.passphrase, Secret)
    assert request.ip_list == (IP,)
    assert len(batch(5).items) == 5
    assert e4(ip_list=None, label=None).ip_list is None
    assert s7(ip_list=[], perm_type="readonly").ip_list == ()
    assert s4(permissions=[]).permissions == ()
    assert s4().permissions is None


def test_models_are_frozen_and_keyword_only() -> None:
    """Requests can't be changed after validation, nor built positionally."""
    request = e2()
    with pytest.raises(AttributeError):
        request.label = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        m.CreateCopyAPIKeyRequest(PASS)  # type: ignore[call-arg]


def test_unknown_enum_values_are_kept() -> None:
    """Values Bitget adds later become pseudo-members, flagged as unknown."""
    value = m.Permission("options_trade")
    assert value == "options_trade"
    assert not value.known
    assert m.Permission.SPOT_TRADE.known
