"""The emulator's unified (v3) family: account modes, every v3 endpoint and its rules."""

from __future__ import annotations

import urllib.parse
from typing import Any

import orjson
import pytest

from bitget_keys.testing import Emulator, EmulatorAccount, Limits
from tests.testing.test_emulator import BROKER, MASTER, Clock, exchange_request

PASS = "Passw0rd1234"
IP = "203.0.113.7"


def unified_master(n: int, **settings: Any) -> EmulatorAccount:
    """A unified master account numbered ``n``."""
    return EmulatorAccount(
        uid=f"100000000{n}",
        api_key=f"bg_uta_{n}",
        secret_key=f"uta-secret-000{n}",
        passphrase=f"UtaPass{n}00",
        mode="unified",
        **settings,
    )


UTA, OTHER_UTA, UTA_BROKER = unified_master(5), unified_master(6), unified_master(7, broker=True)
ACCOUNTS = [MASTER, BROKER, UTA, OTHER_UTA, UTA_BROKER]

CREATE_SUB = "/api/v3/user/create-sub"
SUB_LIST = "/api/v3/user/sub-list"
FREEZE_SUB = "/api/v3/user/freeze-sub"
CREATE_KEY = "/api/v3/user/create-sub-api"
UPDATE_KEY = "/api/v3/user/update-sub-api"
DELETE_KEY = "/api/v3/user/delete-sub-api"
KEY_LIST = "/api/v3/user/sub-api-list"


class Exchange:
    """The emulated exchange, driven directly with signed requests on a hand-moved clock."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.clock = Clock()
        self.emu = Emulator(
            ACCOUNTS,
            limits=limits or Limits(per_uid=False),
            monotonic=self.clock.monotonic,
            wall_clock=self.clock.wall_ms,
        )
        self.emu.exchange.add_broker_subaccount(
            UTA_BROKER.uid,
            "5550007",
            {
                "api_key": "bg_seeded",
                "secret_key": "seeded-secret",
                "passphrase": "SeededPass1",
                "label": "seeded",
                "permissions": ["uta_trade"],
                "ip_list": [IP],
                "perm_type": "readonly",
            },
        )

    def post(
        self, path: str, body: dict[str, Any], account: EmulatorAccount = UTA
    ) -> tuple[int, dict[str, Any]]:
        return exchange_request(self.emu, account, "POST", path, orjson.dumps(body), self.clock)

    def get(
        self, path: str, account: EmulatorAccount = UTA, /, **query: str
    ) -> tuple[int, dict[str, Any]]:
        text = urllib.parse.urlencode(query)
        return exchange_request(self.emu, account, "GET", path, b"", self.clock, query=text)

    def ok(
        self, method: str, path: str, body: dict[str, Any] | None = None, /, **query: str
    ) -> Any:
        """The ``data`` of a request that must succeed."""
        if method == "POST":
            status, answer = self.post(path, body or {})
        else:
            status, answer = self.get(path, **query)
        assert (status, answer["code"]) == (200, "00000"), answer
        return answer.get("data")

    def sub(self, username: str = "desk", note: str = "desk a") -> str:
        return str(self.ok("POST", CREATE_SUB, {"username": username, "note": note})["subUid"])

    def key(self, sub_uid: str, note: str = "bot", ips: tuple[str, ...] = (IP,)) -> dict[str, Any]:
        return dict(self.ok("POST", CREATE_KEY, key_body(sub_uid, note=note, ips=list(ips))))

    def key_list(self, sub_uid: str, /, **query: str) -> dict[str, Any]:
        return dict(self.ok("GET", KEY_LIST, subUid=sub_uid, **query))


def key_body(sub_uid: str, **changes: Any) -> dict[str, Any]:
    body = {
        "subUid": sub_uid,
        "note": "bot",
        "type": "read_write",
        "passphrase": PASS,
        "permissions": ["uta_trade"],
        "ips": [IP],
    }
    return body | changes


def test_account_settings() -> None:
    assert Exchange().ok("GET", "/api/v3/account/settings") == {
        "uid": UTA.uid,
        "accountMode": "unified",
        "assetMode": "multi_assets",
        "holdMode": "one_way_mode",
        "stpMode": "none",
        "symbolConfigList": [],
        "coinConfigList": [],
    }


# -- sub-accounts ----------------------------------------------------------------------------


def test_create_sub_answers_the_virtual_email() -> None:
    exchange = Exchange()
    data = exchange.ok("POST", CREATE_SUB, {"username": "desk", "note": "desk a"})
    wall = str(exchange.clock.wall_ms())
    assert data == {
        "username": "desk@virtual-bitget.com",
        "subUid": data["subUid"],
        "status": "normal",
        "note": "desk a",
        "createdTime": wall,
        "updatedTime": wall,
    }
    assert data["subUid"].isdigit()
    assert exchange.emu.exchange.subaccounts(UTA.uid) == [
        {"uid": data["subUid"], "name": "desk", "label": "desk a", "keys": []}
    ]


def test_usernames_are_unique_across_masters_and_families() -> None:
    """The strict reading: one name set for the whole exchange, v2 names included, as 40060."""
    exchange = Exchange()
    exchange.sub("desk")
    assert exchange.post(CREATE_SUB, {"username": "desk"})[1]["code"] == "40060"
    assert exchange.post(CREATE_SUB, {"username": "desk"}, OTHER_UTA)[1]["code"] == "40060"
    status, answer = exchange_request(
        exchange.emu,
        MASTER,
        "POST",
        "/api/v2/user/create-virtual-subaccount",
        orjson.dumps({"subAccountList": ["alphabot"]}),
        exchange.clock,
    )
    assert status == 200
    assert answer["data"]["successList"]
    assert exchange.post(CREATE_SUB, {"username": "alphabot"})[1]["code"] == "40060"
    assert len(exchange.emu.exchange.subaccounts(UTA.uid)) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"username": "Desk"},
        {"username": "desk1"},
        {"username": "a" * 21},
        {"username": "desk", "note": "n" * 51},
        {"username": "desk", "accountMode": "hybrid"},
        {"username": "desk", "label": "x"},
        {"note": "no username"},
    ],
    ids=["uppercase", "digit", "too-long", "long-note", "mode", "extra-field", "missing"],
)
def test_create_sub_rules(body: dict[str, Any]) -> None:
    exchange = Exchange()
    status, answer = exchange.post(CREATE_SUB, body)
    assert (status, answer["code"]) == (400, "40017")
    assert exchange.emu.exchange.subaccounts(UTA.uid) == []


def test_quotas_are_configurable() -> None:
    exchange = Exchange(Limits(per_uid=False, max_uta_subaccounts=2, max_uta_keys=2))
    first = exchange.sub("deska")
    exchange.sub("deskb")
    assert exchange.post(CREATE_SUB, {"username": "deskc"})[1]["code"] == "40069"
    exchange.key(first, "one")
    exchange.key(first, "two")
    assert exchange.post(CREATE_KEY, key_body(first, note="three"))[1]["code"] == "40063"
    assert len(exchange.emu.exchange.subaccounts(UTA.uid)) == 2
    assert len(exchange.key_list(first)["items"]) == 2


@pytest.mark.parametrize(
    ("as_string", "yes", "no"), [(False, True, False), (True, "true", "false")]
)
def test_sub_list_pages_in_creation_order(as_string: bool, yes: object, no: object) -> None:
    exchange = Exchange(Limits(per_uid=False, has_next_as_string=as_string))
    names = ["zeta", "alpha", "mike", "bravo", "kilo", "echo", "yank"]
    uids = [exchange.sub(name, note=f"n{i}") for i, name in enumerate(names)]
    pages, cursor = [], None
    for _ in range(3):
        query = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = exchange.ok("GET", SUB_LIST, **query)
        pages.append(page)
        cursor = page["cursor"]
    assert [p["hasNext"] for p in pages] == [yes, yes, no]
    rows = [row for p in pages for row in p["list"]]
    assert [row["subUid"] for row in rows] == uids
    assert rows[0] == {
        "subUid": uids[0],
        "username": "zet****@virtual-bitget.com",
        "status": "normal",
        "accountMode": "UNIFIED",
        "type": "VIRTUAL_CHILD",
        "note": "n0",
        "createdTime": str(exchange.clock.wall_ms()),
        "updatedTime": str(exchange.clock.wall_ms()),
    }
    everything = exchange.ok("GET", SUB_LIST)
    assert [row["subUid"] for row in everything["list"]] == uids
    assert everything["hasNext"] == no


@pytest.mark.parametrize("query", [{"limit": "101"}, {"limit": "0"}, {"cursor": "123"}])
def test_sub_list_rules(query: dict[str, str]) -> None:
    exchange = Exchange()
    exchange.sub()
    assert exchange.get(SUB_LIST, **query)[1]["code"] == "40017"


def test_freeze_and_unfreeze_show_in_the_list() -> None:
    exchange = Exchange()
    uid = exchange.sub()
    exchange.clock.seconds += 5
    assert exchange.ok("POST", FREEZE_SUB, {"subUid": uid, "operation": "freeze"}) == {}
    row = exchange.ok("GET", SUB_LIST)["list"][0]
    assert row["status"] == "frozen"
    assert row["updatedTime"] == str(exchange.clock.wall_ms())
    assert row["createdTime"] != row["updatedTime"]
    exchange.ok("POST", FREEZE_SUB, {"subUid": uid, "operation": "unfreeze"})
    assert exchange.ok("GET", SUB_LIST)["list"][0]["status"] == "normal"
    bad = exchange.post(FREEZE_SUB, {"subUid": uid, "operation": "lock"})
    assert bad[1]["code"] == "40017"
    unknown = exchange.post(FREEZE_SUB, {"subUid": "42", "operation": "freeze"})
    assert unknown[1]["code"] == "40066"
    foreign = exchange.post(FREEZE_SUB, {"subUid": uid, "operation": "freeze"}, OTHER_UTA)
    assert foreign[1]["code"] == "40066"
    assert exchange.ok("GET", SUB_LIST)["list"][0]["status"] == "normal"


# -- sub-account keys ------------------------------------------------------------------------


def test_create_sub_api_answers_the_secret_once() -> None:
    exchange = Exchange()
    uid = exchange.sub()
    data = exchange.key(uid)
    assert set(data) == {"note", "apiKey", "secret", "type", "permissions", "ips"}
    assert (data["note"], data["type"], data["permissions"], data["ips"]) == (
        "bot",
        "read_write",
        ["uta_trade"],
        [IP],
    )
    assert exchange.emu.exchange.secret_of(data["apiKey"]) == data["secret"]
    assert exchange.emu.exchange.subaccounts(UTA.uid)[0]["keys"] == [("bot", data["apiKey"])]
    listed = exchange.key_list(uid)
    assert listed["items"] == [
        {
            "apiKey": data["apiKey"],
            "note": "bot",
            "type": "read_write",
            "permissions": ["uta_trade"],
            "ips": [IP],
            "ts": str(exchange.clock.wall_ms()),
        }
    ]
    assert listed["hasNext"] is False
    assert "secret" not in orjson.dumps(listed).decode()


@pytest.mark.parametrize(
    "changes",
    [
        {"note": "1bot"},
        {"note": "bot!"},
        {"type": "read_and_write"},
        {"permissions": ["spot_trade"]},
        {"permissions": []},
        {"ips": [f"198.51.100.{i}" for i in range(31)]},
        {"ips": ["2001:db8::1"]},
        {"passphrase": "short1"},
        {"passphrase": "no-symbols-allowed1"},
        {"label": "extra"},
    ],
    ids=[
        "note-digit",
        "note-char",
        "type",
        "perm",
        "no-perm",
        "31-ips",
        "ipv6",
        "pass",
        "pass-char",
        "extra",
    ],
)
def test_create_sub_api_rules(changes: dict[str, Any]) -> None:
    exchange = Exchange()
    uid = exchange.sub()
    status, answer = exchange.post(CREATE_KEY, key_body(uid, **changes))
    assert (status, answer["code"]) == (400, "40017")
    assert exchange.key_list(uid)["items"] == []


def test_a_classic_subaccount_of_a_unified_master() -> None:
    """create-sub honours accountMode; update and delete refuse a classic sub's keys (25245)."""
    exchange = Exchange()
    data = exchange.ok("POST", CREATE_SUB, {"username": "old", "accountMode": "classic"})
    assert exchange.ok("GET", SUB_LIST)["list"][0]["accountMode"] == "CLASSIC"
    api_key = exchange.key(data["subUid"])["apiKey"]
    update = {"apiKey": api_key, "passphrase": PASS, "ips": [IP]}
    assert exchange.post(UPDATE_KEY, update)[1]["code"] == "25245"
    assert exchange.post(DELETE_KEY, {"apiKey": api_key})[1]["code"] == "25245"
    assert len(exchange.key_list(data["subUid"])["items"]) == 1


def test_create_sub_api_only_on_the_masters_own_subaccounts() -> None:
    exchange = Exchange()
    uid = exchange.sub()
    assert exchange.post(CREATE_KEY, key_body(uid), OTHER_UTA)[1]["code"] == "40066"
    assert exchange.post(CREATE_KEY, key_body("42"))[1]["code"] == "40066"
    assert exchange.get(KEY_LIST, OTHER_UTA, subUid=uid)[1]["code"] == "40066"
    assert exchange.get(KEY_LIST)[1]["code"] == "40017"


def test_update_keeps_replaces_and_clears_the_whitelist() -> None:
    exchange = Exchange()
    uid = exchange.sub()
    api_key = exchange.key(uid)["apiKey"]
    base = {"apiKey": api_key, "passphrase": PASS}
    kept = exchange.ok("POST", UPDATE_KEY, base | {"type": "read_only", "permissions": ["uta_mgt"]})
    assert kept == {
        "note": "bot",
        "apiKey": api_key,
        "type": "read_only",
        "permissions": ["uta_mgt"],
        "ips": [IP],
    }
    replaced = exchange.ok("POST", UPDATE_KEY, base | {"ips": ["198.51.100.9", "198.51.100.10"]})
    assert replaced["ips"] == ["198.51.100.9", "198.51.100.10"]
    assert (replaced["type"], replaced["permissions"]) == ("read_only", ["uta_mgt"])
    assert exchange.ok("POST", UPDATE_KEY, base | {"ips": []})["ips"] == []
    assert exchange.key_list(uid)["items"][0]["ips"] == []
    assert "secret" not in replaced


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"type": "read_only"}, "40017"),
        ({"permissions": ["uta_trade"]}, "40017"),
        ({"ips": ["2001:db8::1"]}, "40017"),
        ({"ips": [f"198.51.100.{i}" for i in range(31)]}, "40017"),
        ({"note": "renamed"}, "40017"),
        ({"passphrase": "OtherPass99"}, "40036"),
        ({"apiKey": "bg_unknown"}, "40034"),
    ],
    ids=["type-alone", "perms-alone", "ipv6", "31-ips", "note", "wrong-pass", "unknown-key"],
)
def test_update_rules(changes: dict[str, Any], code: str) -> None:
    exchange = Exchange()
    uid = exchange.sub()
    api_key = exchange.key(uid)["apiKey"]
    before = exchange.key_list(uid)["items"]
    body = {"apiKey": api_key, "passphrase": PASS} | changes
    assert exchange.post(UPDATE_KEY, body)[1]["code"] == code
    assert exchange.key_list(uid)["items"] == before


def test_delete_is_immediate() -> None:
    exchange = Exchange()
    uid = exchange.sub()
    kept = exchange.key(uid, "keep")["apiKey"]
    gone = exchange.key(uid, "gone")["apiKey"]
    assert exchange.post(DELETE_KEY, {"apiKey": gone}, OTHER_UTA)[1]["code"] == "40034"
    assert exchange.ok("POST", DELETE_KEY, {"apiKey": gone}) == {}
    assert [row["apiKey"] for row in exchange.key_list(uid)["items"]] == [kept]
    assert exchange.emu.exchange.secret_of(gone) is None
    assert exchange.post(DELETE_KEY, {"apiKey": gone})[1]["code"] == "40034"
    update = exchange.post(UPDATE_KEY, {"apiKey": gone, "passphrase": PASS, "ips": [IP]})
    assert update[1]["code"] == "40034"


def test_key_list_pages() -> None:
    exchange = Exchange(Limits(per_uid=False, has_next_as_string=True))
    uid = exchange.sub()
    keys = [exchange.key(uid, f"bot{i}")["apiKey"] for i in range(5)]
    first = exchange.key_list(uid, limit="2")
    second = exchange.key_list(uid, limit="2", cursor=first["cursor"])
    third = exchange.key_list(uid, limit="2", cursor=second["cursor"])
    assert [p["hasNext"] for p in (first, second, third)] == ["true", "true", "false"]
    assert [row["apiKey"] for p in (first, second, third) for row in p["items"]] == keys
    assert exchange.get(KEY_LIST, subUid=uid, limit="101")[1]["code"] == "40017"


# -- ND-broker keys --------------------------------------------------------------------------


def test_broker_keys_create_modify_query_delete() -> None:
    exchange = Exchange()
    body = {
        "subUid": "5550007",
        "passphrase": PASS,
        "label": "made",
        "permType": "read_and_write",
        "permList": ["uta_trade", "withdraw"],
        "ipList": [IP],
    }
    status, answer = exchange.post("/api/v3/broker/create-sub-apikey", body, UTA_BROKER)
    assert (status, answer["code"]) == (200, "00000")
    made = answer["data"]
    assert set(made) == {
        "subUid",
        "label",
        "apiKey",
        "secretKey",
        "permType",
        "permList",
        "ipList",
    }
    assert (made["subUid"], made["label"], made["permType"]) == (
        "5550007",
        "made",
        "read_and_write",
    )
    assert exchange.emu.exchange.secret_of(made["apiKey"]) == made["secretKey"]

    modify = {"subUid": "5550007", "apiKey": "bg_seeded", "passphrase": "SeededPass1"}
    _, answer = exchange.post(
        "/api/v3/broker/modify-sub-apikey", modify | {"label": "renamed"}, UTA_BROKER
    )
    assert answer["data"] == {
        "subUid": "5550007",
        "label": "renamed",
        "apiKey": "bg_seeded",
        "permType": "readonly",
        "permList": ["uta_trade"],
        "ipList": [IP],
    }
    wrong = modify | {"passphrase": "WrongPass1", "label": "x"}
    assert (
        exchange.post("/api/v3/broker/modify-sub-apikey", wrong, UTA_BROKER)[1]["code"] == "40036"
    )

    _, answer = exchange.get("/api/v3/broker/query-sub-apikey", UTA_BROKER, subUid="5550007")
    assert answer["data"]["apiKey"] == "bg_seeded"
    assert answer["data"]["secretKey"] == "seeded-secret"
    assert answer["data"]["label"] == "renamed"

    delete = {"subUid": "5550007", "apiKey": "bg_seeded"}
    status, answer = exchange.post("/api/v3/broker/delete-sub-apikey", delete, UTA_BROKER)
    assert (status, answer["code"]) == (200, "00000")
    assert "data" not in answer
    _, answer = exchange.get("/api/v3/broker/query-sub-apikey", UTA_BROKER, subUid="5550007")
    assert answer["data"]["apiKey"] == made["apiKey"]
    again = exchange.post("/api/v3/broker/delete-sub-apikey", delete, UTA_BROKER)
    assert again[1]["code"] == "40065"


def test_broker_keys_need_a_unified_broker_and_its_subaccount() -> None:
    exchange = Exchange()
    query = {"subUid": "5550007"}
    assert exchange.get("/api/v3/broker/query-sub-apikey", UTA, **query)[1]["code"] == "40029"
    assert exchange.get("/api/v3/broker/query-sub-apikey", BROKER, **query)[1]["code"] == "40084"
    unknown = exchange.get("/api/v3/broker/query-sub-apikey", UTA_BROKER, subUid="5550008")
    assert unknown[1]["code"] == "40028"
    both = {"subUid": "5550007", "apiKey": "bg_seeded", "passphrase": "SeededPass1"}
    half = both | {"permType": "readonly"}
    assert exchange.post("/api/v3/broker/modify-sub-apikey", half, UTA_BROKER)[1]["code"] == "40017"


# -- limits ----------------------------------------------------------------------------------


def test_the_eleventh_create_sub_in_a_second_is_429_and_audited() -> None:
    exchange = Exchange(Limits())
    letters = "abcdefghijk"
    codes = []
    for letter in letters:
        codes.append(exchange.post(CREATE_SUB, {"username": f"desk{letter}"})[1]["code"])
        exchange.clock.seconds += 0.05
    assert codes == ["00000"] * 10 + ["429"]
    lane = exchange.emu.audit.lane(UTA.uid, "create_uta_subaccount")
    assert (len(lane.accepted), lane.throttled, lane.max_in_window()) == (10, 1, 10)
    assert exchange.emu.audit.violations() == {}
    assert len(exchange.emu.exchange.subaccounts(UTA.uid)) == 10
