"""The converter: wire names, aliases, scalars, envelopes and decode errors."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import cattrs
import pytest

from bitget_keys import models as m
from bitget_keys._serde import (
    CONVERTER,
    decode,
    encode_body,
    make_converter,
    query_params,
    structure,
    unwrap,
)
from bitget_keys.errors import (
    RateLimitExceededError,
    ResponseDecodeError,
    ServerError,
)


def envelope(data: Any, code: str = "00000") -> bytes:
    return json.dumps(
        {"code": code, "msg": "success", "requestTime": 1_700_000_000_123, "data": data}
    ).encode()


def test_e2_body_matches_the_golden_vector() -> None:
    """The create-key body is byte-for-byte the reference's golden vector 1."""
    request = m.CreateVirtualSubaccountAPIKeyRequest(
        subaccount_uid="1234567890",
        passphrase="Passw0rd1234",
        label="bot01",
        ip_list=["203.0.113.7"],
        permissions=["spot_trade", "contract_trade"],
    )
    assert encode_body(request) == (
        b'{"subAccountUid":"1234567890","passphrase":"Passw0rd1234","label":"bot01",'
        b'"ipList":["203.0.113.7"],"permList":["spot_trade","contract_trade"]}'
    )


def test_batch_body_is_a_top_level_array() -> None:
    """batch-create sends a JSON array of items, not an object."""
    request = m.BatchCreateVirtualSubaccountsRequest(
        items=[
            m.NewVirtualSubaccount(
                name="abcdefgh",
                passphrase="Passw0rd1234",
                label="bot01",
                permissions=["spot_trade"],
                ip_list=[],
            )
        ]
    )
    assert encode_body(request) == (
        b'[{"subAccountName":"abcdefgh","passphrase":"Passw0rd1234","label":"bot01",'
        b'"permList":["spot_trade"],"ipList":[]}]'
    )


def test_broker_modify_body_sends_apikey_and_omits_unset_fields() -> None:
    """E4 sends `apiKey` and `permType`, and leaves out label and ipList when unset."""
    request = m.ModifyBrokerSubaccountAPIKeyRequest(
        sub_uid="42",
        api_key="bg_k",
        passphrase="Passw0rd1234",
        permissions=["spot_trade"],
        perm_type="readonly",
    )
    assert json.loads(encode_body(request)) == {
        "subUid": "42",
        "apiKey": "bg_k",
        "passphrase": "Passw0rd1234",
        "permList": ["spot_trade"],
        "permType": "readonly",
    }


def test_modify_virtual_key_sends_empty_permissions_but_not_none() -> None:
    """S4: permissions=() sends [] (remove all); None leaves permList out (keep)."""
    base: dict[str, Any] = {
        "subaccount_uid": "42",
        "api_key": "bg_k",
        "passphrase": "Passw0rd1234",
        "label": "l",
        "ip_list": [],
    }
    neutralise = json.loads(
        encode_body(m.ModifyVirtualSubaccountAPIKeyRequest(**base, permissions=[]))
    )
    keep = json.loads(encode_body(m.ModifyVirtualSubaccountAPIKeyRequest(**base)))
    assert neutralise["permList"] == []
    assert neutralise["subAccountApiKey"] == "bg_k"
    assert "permList" not in keep
    assert keep["ipList"] == []


def test_query_params_leave_out_none() -> None:
    """GET parameters are camelCase strings without unset fields."""
    assert query_params(m.ListVirtualSubaccountsRequest(id_less_than="51")) == {
        "limit": "100",
        "idLessThan": "51",
    }
    assert query_params(m.ListVirtualSubaccountAPIKeysRequest(subaccount_uid="7")) == {
        "subAccountUid": "7"
    }
    assert query_params(m.ListBrokerSubaccountAPIKeysRequest(sub_uid="7")) == {"subUid": "7"}


def test_copy_key_uses_its_own_spellings() -> None:
    """create-copy-api answers with apikey/secret/permissions; unknown fields are ignored."""
    raw = envelope(
        [
            {
                "apikey": "bg_copy",
                "secret": "copy-secret",
                "permissions": ["copytrading_trade", "contract_trade"],
                "somethingNew": True,
            }
        ]
    )
    (key,), request_time = decode(raw, tuple[m.CopyAPIKey, ...], http_status=200, endpoint="e")
    assert key.api_key == "bg_copy"
    assert key.secret_key.reveal() == "copy-secret"
    assert key.permissions == (m.Permission.COPYTRADING_TRADE, m.Permission.CONTRACT_TRADE)
    assert request_time == 1_700_000_000_123


@pytest.mark.parametrize("spelling", ["subAccountApiKey", "apiKey", "apikey"])
def test_batch_rows_accept_every_key_spelling(spelling: str) -> None:
    """A batch row's key may be called subAccountApiKey, apiKey or apikey."""
    row = {
        "subAccountUid": 123,
        "subAccountName": "*****@*******.com",
        "label": "bot01",
        spelling: "bg_new",
        "secretKey": "new-secret",
        "permList": ["spot_trade,contract_trade"],
        "ipList": ["203.0.113.7"],
    }
    (created,), _ = decode(
        envelope([row]), tuple[m.CreatedVirtualSubaccount, ...], http_status=200, endpoint="e"
    )
    assert created.api_key == "bg_new"
    assert created.subaccount_uid == "123"
    assert created.permissions == (m.Permission.SPOT_TRADE, m.Permission.CONTRACT_TRADE)


def test_misspelled_create_subaccount_fields() -> None:
    """create-virtual-subaccount's `subaAccount...` spellings are understood."""
    raw = envelope(
        {
            "successList": [
                {
                    "subaAccountUid": "77",
                    "subaAccountName": "abcdefgh",
                    "status": "normal",
                    "label": "",
                    "permList": ["read"],
                    "cTime": "1700000000000",
                    "uTime": 1700000000001,
                }
            ],
            "failureList": [{"subaAccountName": "takenabc"}],
        }
    )
    result, _ = decode(raw, m.CreatedVirtualSubaccounts, http_status=200, endpoint="e")
    (ok,) = result.successes
    assert ok.subaccount_uid == "77"
    assert ok.status is m.SubaccountStatus.NORMAL
    assert ok.created_time == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    assert result.failures == ("takenabc",)


def test_subaccount_page_and_server_time() -> None:
    """endId may be a number; serverTime is a string of milliseconds."""
    page, _ = decode(
        envelope({"endId": 51, "subAccountList": [{"subAccountUid": "9", "status": "freeze"}]}),
        m.VirtualSubaccountPage,
        http_status=200,
        endpoint="e",
    )
    assert page.end_id == "51"
    assert page.subaccounts[0].status is m.SubaccountStatus.FREEZE
    server, _ = decode(
        envelope({"serverTime": "1688008631614"}), m.ServerTime, http_status=200, endpoint="e"
    )
    assert server.server_time_ms == 1688008631614
    assert server.datetime.year == 2023


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"subAccountUid": "1", "label": "l", "secretKey": "s"}, "data.api_key"),
        (
            {"subAccountUid": None, "label": "l", "subAccountApiKey": "k", "secretKey": "s"},
            "data.subaccount_uid",
        ),
        (
            {"subAccountUid": "1", "label": "l", "subAccountApiKey": "k", "secretKey": 5},
            "data.secret_key",
        ),
        (
            {
                "subAccountUid": "1",
                "label": "l",
                "subAccountApiKey": "k",
                "secretKey": "s",
                "permList": 3,
            },
            "data.permissions",
        ),
    ],
)
def test_missing_or_wrong_fields_are_named(data: dict[str, Any], field: str) -> None:
    """A decode error names the field that is missing or has the wrong type."""
    with pytest.raises(ResponseDecodeError) as info:
        decode(envelope(data), m.CreatedVirtualSubaccountAPIKey, http_status=200, endpoint="/p")
    assert field in str(info.value)
    assert "/p" in str(info.value)


def test_decode_error_never_shows_values() -> None:
    """A secret in a badly shaped answer does not leak into the decode error."""
    data = {"subAccountUid": [], "label": "l", "subAccountApiKey": "k", "secretKey": "leaky-secret"}
    with pytest.raises(ResponseDecodeError) as info:
        decode(envelope(data), m.CreatedVirtualSubaccountAPIKey, http_status=200, endpoint="/p")
    assert "leaky-secret" not in str(info.value)


def test_success_code_wins_over_odd_status() -> None:
    """The body code decides: "00000" is success even under HTTP 400."""
    assert unwrap(envelope({"x": 1}), http_status=400, endpoint="e").data == {"x": 1}


def test_error_code_wins_over_http_200() -> None:
    """A 429 body at HTTP 200 is a rate-limit error."""
    with pytest.raises(RateLimitExceededError):
        unwrap(envelope(None, code="429"), http_status=200, endpoint="e")


def test_non_json_answers() -> None:
    """Without an envelope, a 2xx is a decode error and a 5xx a server error."""
    with pytest.raises(ResponseDecodeError):
        unwrap(b"<html>ok</html>", http_status=200, endpoint="e")
    with pytest.raises(ServerError):
        unwrap(b"<html>bad gateway</html>", http_status=502, endpoint="e")
    with pytest.raises(RateLimitExceededError):
        unwrap(b"", http_status=429, endpoint="e")


def test_strict_converter_refuses_unknown_request_fields() -> None:
    """A converter made with forbid_extra_keys refuses unknown fields (for the emulator)."""
    strict = make_converter(forbid_extra_keys=True)
    wire = {"passphrase": "Passw0rd1234", "extra": 1}
    with pytest.raises(cattrs.BaseValidationError) as info:
        strict.structure(wire, m.CreateCopyAPIKeyRequest)
    assert any("extra" in line for line in cattrs.transform_error(info.value))
    lenient = CONVERTER.structure({"passphrase": "Passw0rd1234"}, m.CreateCopyAPIKeyRequest)
    assert isinstance(lenient, m.CreateCopyAPIKeyRequest)


def test_requests_round_trip_through_the_wire_format() -> None:
    """Structuring the wire form of a request gives back an equal request."""
    strict = make_converter(forbid_extra_keys=True)
    request = m.BatchCreateVirtualSubaccountsRequest(
        items=[
            m.NewVirtualSubaccount(
                name="abcdefgh",
                passphrase="Passw0rd1234",
                label="bot01",
                permissions=["spot_trade", "read"],
                ip_list=["203.0.113.7"],
            )
        ]
    )
    wire = json.loads(encode_body(request))
    assert strict.structure(wire, m.BatchCreateVirtualSubaccountsRequest) == request


def test_a_lone_string_is_not_a_list() -> None:
    """A string where Bitget documents a list is a decode error, not a list of characters."""
    data = {"subAccountUid": "1", "subAccountApiKey": "k", "ipList": "203.0.113.7"}
    with pytest.raises(ResponseDecodeError, match="ip_list"):
        decode(
            envelope([data]), tuple[m.VirtualSubaccountAPIKey, ...], http_status=200, endpoint="e"
        )
    strict = make_converter(forbid_extra_keys=True)
    with pytest.raises(cattrs.BaseValidationError):
        strict.structure({"subAccountList": "abcdefgh"}, m.CreateVirtualSubaccountsRequest)


@pytest.mark.parametrize("model", [m.BrokerSubaccountAPIKey, m.UTABrokerSubaccountAPIKey])
def test_a_masked_secret_in_a_key_list_is_no_secret(
    model: type[m.BrokerSubaccountAPIKey | m.UTABrokerSubaccountAPIKey],
) -> None:
    """``******`` where a secret may be is absent, not a Secret that looks like a real one."""
    row = {"subUid": "1", "apiKey": "bg_k", "secretKey": "******"}
    assert structure(row, model, endpoint="/x").secret_key is None
    real = structure(row | {"secretKey": "s3cret"}, model, endpoint="/x").secret_key
    assert real is not None
    assert real.reveal() == "s3cret"
