"""Signing: golden vectors, query building, credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitget_keys import Credentials, Secret
from bitget_keys._signing import build_query, prehash, sign, signed_headers
from bitget_keys.errors import ConfigurationError

GOLDEN_SECRET = "test-secret-key-0123456789abcdef"

# The reference's golden vectors: exact prehash strings and their signatures.
GOLDEN = [
    (
        (
            '1700000000000POST/api/v2/user/create-virtual-subaccount-apikey{"subAccountUid":'
            '"1234567890","passphrase":"Passw0rd1234","label":"bot01","ipList":["203.0.113.7"],'
            '"permList":["spot_trade","contract_trade"]}'
        ),
        "uE0WTU1K/V29gEkjAt4czAtC7y4jjHmlbf+hREE1bvY=",
    ),
    (
        "1700000000000GET/api/v2/user/virtual-subaccount-apikey-list?subAccountUid=1234567890",
        "Fxw7Y+BVzOASMclv2IHbJUJRFnkM4AWoZssVBNG79X4=",
    ),
    (
        "1700000000000GET/api/v2/user/virtual-subaccount-list?idLessThan=51&limit=100",
        "xNNlwccshuKLBtdGr70Br8rkc5zFhlyXaK2lt3Tzjc0=",
    ),
    (
        '1700000000000POST/api/v2/copy/mix-trader/create-copy-api{"passphrase":"Passw0rd1234"}',
        "H3KVhb4aZzjA/3cIrKvPObBNAxbytP3N8JHi+bxkwRQ=",
    ),
    (
        (
            '1700000000000POST/api/v2/user/batch-create-subaccount-and-apikey[{"subAccountName":'
            '"abcdefgh","passphrase":"Passw0rd1234","label":"bot01","permList":["spot_trade"]}]'
        ),
        "+6YiIPEkGfw3a6lDIzw+8HkTaNT5uzAlb7ki9FKo49g=",
    ),
    (
        "16273667805456GET/api/mix/v2/market/depth?limit=20&symbol=BTCUSDT",
        "aE8jUmWbiVEQZlsTpYk3FyAomXDzpC7JZSTKPvfIIB0=",
    ),
]


@pytest.mark.parametrize(("message", "expected"), GOLDEN)
def test_golden_vectors(message: str, expected: str) -> None:
    """Every golden vector of the reference signs to its published signature."""
    assert sign(GOLDEN_SECRET, message) == expected
    assert sign(Secret(GOLDEN_SECRET), message) == expected


def test_rfc4231_case_2() -> None:
    """The HMAC path agrees with RFC 4231 test case 2."""
    digest = base64.b64decode(sign("Jefe", "what do ya want for nothing?"))
    assert digest.hex().startswith("5bdcc146")
    assert digest.hex().endswith("3843")


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (
            (
                "1700000000000",
                "get",
                "/api/v2/user/virtual-subaccount-list",
                "idLessThan=51&limit=100",
                "",
            ),
            GOLDEN[2][0],
        ),
        (
            (
                "1700000000000",
                "POST",
                "/api/v2/copy/mix-trader/create-copy-api",
                "",
                '{"passphrase":"Passw0rd1234"}',
            ),
            GOLDEN[3][0],
        ),
    ],
)
def test_prehash_layout(parts: tuple[str, str, str, str, str], expected: str) -> None:
    """The prehash is timestamp + upper-case method + path (+ ?query) + body."""
    assert prehash(*parts) == expected


def test_query_is_sorted_and_raw() -> None:
    """Keys are sorted ascending and joined unencoded."""
    assert build_query({"limit": 100, "idLessThan": "51"}) == "idLessThan=51&limit=100"
    assert build_query({}) == ""
    assert build_query(None) == ""


@pytest.mark.parametrize("value", ["a b", "x&y=z", "ü", "1%2"])
def test_query_refuses_text_that_needs_encoding(value: str) -> None:
    """Text that would need percent-encoding is refused rather than signed wrongly."""
    with pytest.raises(ValueError, match="URL encoding"):
        build_query({"subAccountUid": value})


@given(
    secret=st.text(min_size=1, max_size=64),
    message=st.text(max_size=200),
)
def test_sign_matches_an_independent_hmac(secret: str, message: str) -> None:
    """`sign` equals a from-scratch HMAC-SHA256 + base64 for any input (44 characters)."""
    expected = base64.b64encode(
        hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    ).decode()
    result = sign(secret, message)
    assert result == expected
    assert len(result) == 44


def test_signed_headers() -> None:
    """Headers carry the key, timestamp, signature of the exact prehash, and passphrase."""
    credentials = Credentials("bg_key", GOLDEN_SECRET, "CallerPass1234")
    headers = signed_headers(
        credentials,
        timestamp_ms=1_700_000_000_000,
        method="GET",
        path="/api/v2/user/virtual-subaccount-list",
        query="idLessThan=51&limit=100",
    )
    assert headers == {
        "ACCESS-KEY": "bg_key",
        "ACCESS-SIGN": GOLDEN[2][1],
        "ACCESS-TIMESTAMP": "1700000000000",
        "ACCESS-PASSPHRASE": "CallerPass1234",
        "Content-Type": "application/json",
        "locale": "en-US",
    }


def test_credentials_hide_secrets() -> None:
    """repr and str of credentials show the key and UID, never the secret or passphrase."""
    credentials = Credentials("bg_key", "s3cr3t-value-xyz", "PassPhrase99", uid="42")
    for text in (repr(credentials), str(credentials), f"{credentials}"):
        assert "s3cr3t-value-xyz" not in text
        assert "PassPhrase99" not in text
        assert "bg_key" in text
    assert credentials.secret_key.reveal() == "s3cr3t-value-xyz"
    assert credentials.passphrase == Secret("PassPhrase99")


def test_credentials_from_env() -> None:
    """from_env reads the four variables, UID optional, with a custom prefix."""
    env = {
        "DESK_API_KEY": "bg_k",
        "DESK_SECRET_KEY": "sek",
        "DESK_PASSPHRASE": "pass1234",
        "DESK_UID": "123",
    }
    credentials = Credentials.from_env("DESK", environ=env)
    assert credentials.api_key == "bg_k"
    assert credentials.secret_key.reveal() == "sek"
    assert credentials.uid == "123"
    del env["DESK_UID"]
    assert Credentials.from_env("DESK", environ=env).uid is None


def test_credentials_from_env_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing variable is named in the error; values never are."""
    monkeypatch.setenv("BITGET_API_KEY", "bg_k")
    monkeypatch.setenv("BITGET_SECRET_KEY", "very-secret-value")
    monkeypatch.delenv("BITGET_PASSPHRASE", raising=False)
    with pytest.raises(ConfigurationError) as info:
        Credentials.from_env()
    assert "BITGET_PASSPHRASE" in str(info.value)
    assert "very-secret-value" not in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_key": "", "secret_key": "s", "passphrase": "p"},
        {"api_key": "k", "secret_key": "", "passphrase": "p"},
        {"api_key": "k", "secret_key": "s", "passphrase": " "},
        {"api_key": "k", "secret_key": "s", "passphrase": "p", "uid": "abc"},
    ],
)
def test_credentials_reject_empty_or_bad_fields(kwargs: dict[str, str]) -> None:
    """Empty key parts and non-numeric UIDs are configuration errors."""
    with pytest.raises(ConfigurationError):
        Credentials(**kwargs)


def test_secret_behaves() -> None:
    """A Secret redacts itself everywhere but reveal(), compares by value, pickles."""
    import pickle

    secret = Secret("abc123")
    assert str(secret) == "********"
    assert repr(secret) == "Secret('********')"
    assert f"{secret:>10}" == "  ********"
    assert secret == Secret("abc123")
    assert secret != Secret("abc124")
    assert hash(secret) == hash(Secret("abc123"))
    assert pickle.loads(pickle.dumps(secret)).reveal() == "abc123"  # noqa: S301
    with pytest.raises(AttributeError):
        secret._value = "x"
    with pytest.raises(TypeError):
        Secret(123)  # type: ignore[arg-type]
