"""Unified Trading Account (v3) sub-account and key models: rules, wire format, secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bitget_keys import models as m
from bitget_keys._secret import Secret
from bitget_keys._serde import decode, encode_body
from bitget_keys.errors import ValidationError

KEY: dict[str, Any] = {
    "sub_uid": "1234567890",
    "note": "bot1",
    "type": "read_write",
    "passphrase": "Passw0rd1234",
    "permissions": ["uta_trade"],
    "ips": ["203.0.113.7"],
}


def problems(build: Any, **values: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as info:
        build(**values)
    return {problem.field: problem.rule for problem in info.value.problems}


def test_create_sub_api_body_uses_the_v3_names() -> None:
    """v3 sends `subUid`, `type`, `permissions` and `ips` (v2 said permList and ipList)."""
    assert encode_body(m.CreateUTASubaccountAPIKeyRequest(**KEY)) == (
        b'{"subUid":"1234567890","note":"bot1","type":"read_write","passphrase":"Passw0rd1234",'
        b'"permissions":["uta_trade"],"ips":["203.0.113.7"]}'
    )


def test_create_sub_body() -> None:
    request = m.CreateUTASubaccountRequest(username="desk", account_mode="unified", note="desk A")
    assert encode_body(request) == b'{"username":"desk","accountMode":"unified","note":"desk A"}'


def test_every_broken_key_rule_is_reported_at_once() -> None:
    found = problems(
        m.CreateUTASubaccountAPIKeyRequest,
        sub_uid="x",
        note="1bot",
        type="rw",
        passphrase="short",
        permissions=["spot_trade", "uta_trade", "uta_trade"],
        ips=["203.0.113.7", "::1"],
    )
    assert set(found) == {
        "sub_uid",
        "note",
        "type",
        "passphrase",
        "permissions[0]",
        "permissions[2]",
        "ips[1]",
    }
    assert found["type"] == "rw is not valid here; one of: read_only, read_write"
    assert found["permissions[0]"] == "spot_trade is not valid here; one of: uta_mgt, uta_trade"
    assert "IPv4" in found["ips[1]"]


@pytest.mark.parametrize("note", ["bot1", "a", "Desk-A_2"])
def test_key_notes_that_follow_the_rule(note: str) -> None:
    assert m.CreateUTASubaccountAPIKeyRequest(**{**KEY, "note": note}).note == note


@pytest.mark.parametrize("note", ["", "1bot", "-bot", "bot,1", "bot 1", "bot.1", "bötA"])
def test_key_notes_that_break_it(note: str) -> None:
    rule = problems(m.CreateUTASubaccountAPIKeyRequest, **{**KEY, "note": note})["note"]
    assert rule == "must start with an English letter, then letters, digits, '-' or '_'"


def test_a_key_needs_a_permission_and_at_most_30_ips() -> None:
    ips = [f"203.0.113.{n}" for n in range(1, 32)]
    found = problems(m.CreateUTASubaccountAPIKeyRequest, **{**KEY, "permissions": [], "ips": ips})
    assert found == {
        "permissions": "must name at least one permission",
        "ips": "at most 30 entries (got 31)",
    }


@pytest.mark.parametrize("username", ["desk", "a" * 20])
def test_usernames_that_follow_the_rule(username: str) -> None:
    assert m.CreateUTASubaccountRequest(username=username).username == username


@pytest.mark.parametrize("username", ["", "a" * 21, "Desk", "desk1", "desk_a", "dèsk"])
def test_usernames_that_break_it(username: str) -> None:
    found = problems(m.CreateUTASubaccountRequest, username=username)
    assert found == {"username": "must be 1-20 lowercase English letters"}


def test_a_sub_account_note_is_at_most_50_characters() -> None:
    assert m.CreateUTASubaccountRequest(username="desk", note="n" * 50).note == "n" * 50
    found = problems(m.CreateUTASubaccountRequest, username="desk", note="n" * 51)
    assert found == {"note": "must be at most 50 characters"}


def test_the_created_key_secret_is_a_secret_and_stays_out_of_sight() -> None:
    """The v3 answer calls it `secret`; it is a `Secret` like every other."""
    body = {
        "note": "bot1",
        "apikey": "bg_0123",
        "secret": "s3cr3t-value-from-bitget",
        "type": "read_only",
        "permissions": ["uta_trade"],
        "ips": ["203.0.113.7"],
    }
    raw = json.dumps({"code": "00000", "msg": "success", "requestTime": 1, "data": body})
    key, _ = decode(
        raw.encode(), m.CreatedUTASubaccountAPIKey, http_status=200, endpoint="create-sub-api"
    )
    assert isinstance(key.secret, Secret)
    assert key.secret.reveal() == "s3cr3t-value-from-bitget"
    assert key.api_key == "bg_0123"
    assert key.type is m.UTAKeyType.READ_ONLY
    assert key.permissions == (m.Permission.UTA_TRADE,)
    assert "s3cr3t" not in repr(key)
    assert "s3cr3t" not in str(key)


def test_a_refused_request_never_shows_its_passphrase() -> None:
    with pytest.raises(ValidationError) as info:
        m.CreateUTASubaccountAPIKeyRequest(**{**KEY, "note": "1", "passphrase": "Passw0rd!!99"})
    assert "Passw0rd" not in str(info.value)
    assert "Passw0rd" not in repr(m.CreateUTASubaccountAPIKeyRequest(**KEY))


UPDATE: dict[str, Any] = {"api_key": "bg_0123", "passphrase": "Passw0rd1234"}


def test_update_keeps_the_whitelist_unless_told() -> None:
    """No `ips` keeps the whitelist: the body carries none (v2's modify cleared it)."""
    body = encode_body(m.UpdateUTASubaccountAPIKeyRequest(**UPDATE))
    assert body == b'{"apiKey":"bg_0123","passphrase":"Passw0rd1234"}'


def test_update_clears_the_whitelist_only_when_asked_by_name() -> None:
    request = m.UpdateUTASubaccountAPIKeyRequest(**UPDATE, ips=m.CLEAR_WHITELIST)
    assert encode_body(request).endswith(b'"ips":[]}')
    assert repr(request.ips) == "CLEAR_WHITELIST"
    found = problems(m.UpdateUTASubaccountAPIKeyRequest, **UPDATE, ips=[])
    assert found == {
        "ips": "an empty list deletes the whitelist: pass CLEAR_WHITELIST to mean that, "
        "or leave ips out to keep it"
    }


def test_update_replaces_rights_and_whitelist() -> None:
    request = m.UpdateUTASubaccountAPIKeyRequest(
        **UPDATE, type="read_only", permissions=["uta_mgt"], ips=["203.0.113.7"]
    )
    assert encode_body(request) == (
        b'{"apiKey":"bg_0123","passphrase":"Passw0rd1234","type":"read_only",'
        b'"permissions":["uta_mgt"],"ips":["203.0.113.7"]}'
    )


@pytest.mark.parametrize(
    ("given", "missing"),
    [({"type": "read_only"}, "permissions"), ({"permissions": ["uta_trade"]}, "type")],
)
def test_update_changes_type_and_permissions_together(given: dict[str, Any], missing: str) -> None:
    found = problems(m.UpdateUTASubaccountAPIKeyRequest, **UPDATE, **given)
    assert found == {missing: "type and permissions are changed together: give both"}


def test_every_broken_update_rule_is_reported_at_once() -> None:
    found = problems(
        m.UpdateUTASubaccountAPIKeyRequest,
        api_key=" ",
        passphrase="short",
        type="rw",
        permissions=["withdraw"],
        ips=["10.1.2.3"],
    )
    assert set(found) == {"api_key", "passphrase", "type", "permissions[0]", "ips[0]"}


def test_delete_names_the_key() -> None:
    body = encode_body(m.DeleteUTASubaccountAPIKeyRequest(api_key="bg_0123"))
    assert body == b'{"apiKey":"bg_0123"}'
    assert problems(m.DeleteUTASubaccountAPIKeyRequest, api_key="") == {
        "api_key": "must not be empty"
    }
