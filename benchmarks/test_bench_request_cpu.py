"""
The library's own CPU cost per request, without any I/O.

One create-virtual-subaccount-apikey round: build and validate the request, unstructure
and serialise the body, sign it, then parse, check and structure Bitget's answer.
Target: at most 30 µs on the project's 2-core machine.

Run: ``python -m pytest benchmarks --benchmark-only``
"""

from __future__ import annotations

import json

from pytest_benchmark.fixture import BenchmarkFixture

from bitget_keys import Credentials
from bitget_keys import models as m
from bitget_keys._serde import decode, encode_body, query_params
from bitget_keys._signing import build_query, signed_headers

CREDENTIALS = Credentials("bg_bench_key", "test-secret-key-0123456789abcdef", "CallerPass1234")
PATH = "/api/v2/user/create-virtual-subaccount-apikey"
ANSWER = json.dumps(
    {
        "code": "00000",
        "msg": "success",
        "requestTime": 1_700_000_000_000,
        "data": {
            "subAccountUid": "1234567890",
            "label": "bot01",
            "subAccountApiKey": "bg_0123456789abcdef0123456789",
            "secretKey": "0123456789abcdef0123456789abcdef0123456789abcdef",
            "permList": ["spot_trade", "contract_trade"],
            "ipList": ["203.0.113.7"],
        },
    }
).encode()


def one_create_round() -> m.CreatedVirtualSubaccountAPIKey:
    request = m.CreateVirtualSubaccountAPIKeyRequest(
        subaccount_uid="1234567890",
        passphrase="Passw0rd1234",
        label="bot01",
        ip_list=["203.0.113.7"],
        permissions=["spot_trade", "contract_trade"],
    )
    body = encode_body(request)
    signed_headers(CREDENTIALS, timestamp_ms=1_700_000_000_000, method="POST", path=PATH, body=body)
    created, _ = decode(ANSWER, m.CreatedVirtualSubaccountAPIKey, http_status=200, endpoint=PATH)
    return created


def one_list_round() -> str:
    request = m.ListVirtualSubaccountAPIKeysRequest(subaccount_uid="1234567890")
    query = build_query(query_params(request))
    signed_headers(
        CREDENTIALS,
        timestamp_ms=1_700_000_000_000,
        method="GET",
        path="/api/v2/user/virtual-subaccount-apikey-list",
        query=query,
    )
    return query


def test_create_request_cpu(benchmark: BenchmarkFixture) -> None:
    """Validate, serialise, sign, parse and structure one create round."""
    created = benchmark(one_create_round)
    assert created.api_key == "bg_0123456789abcdef0123456789"


def test_list_request_cpu(benchmark: BenchmarkFixture) -> None:
    """Validate, build the query and sign one list request."""
    assert benchmark(one_list_round) == "subAccountUid=1234567890"
