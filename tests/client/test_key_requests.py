"""
Requests around sub-account keys: create-virtual-subaccount's masked answer matched back
to the names requested, the key lists taking request models (the bare UID still
working), and the ND-broker modify without a ``perm_type``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest
from aioresponses import aioresponses

from bitget_keys import Client
from bitget_keys import models as m
from bitget_keys._serde import encode_body
from bitget_keys.errors import ValidationError
from bitget_keys.models._matching import match_names, row_fits
from bitget_keys.testing import Emulator, Limits
from tests.client.test_client import BASE, ok
from tests.testing.test_emulator import BROKER, MASTER, client_for

PASS = "Passw0rd1234"
FULLY_MASKED = "*****@*******.com"
SUB, SUB_KEY, SUB_KEY_PASS = "5550001", "bg_sub_key", "SubKeyPass1"


# -- create-virtual-subaccount: masked rows back to requested names -----------------------


@pytest.mark.parametrize(
    ("row", "name", "fits"),
    [
        ("abcdefgh", "ABCDEFGH", True),
        ("abcdefgh@virtual-bitget.com", "abcdefgh", True),
        ("abcdefgh", "abcdefgz", False),
        ("abc****@virtual-bitget.com", "abcdefgh", True),
        ("abc****@virtual-bitget.com", "abzdefgh", False),
        ("ab****gh", "abcdefgh", True),
        ("ab****gh", "abcdefgz", False),
        (FULLY_MASKED, "qwertyui", True),
        ("", "qwertyui", True),
    ],
)
def test_which_requested_name_a_row_may_stand_for(row: str, name: str, fits: bool) -> None:
    assert row_fits(row, name) is fits


def test_a_fully_masked_failure_is_the_name_no_success_shows() -> None:
    names = ["aaaaaaaa", "bbbbbbbb", "cccccccc"]
    assert match_names(names, ["aaaaaaaa", "cccccccc"], [FULLY_MASKED]) == (
        ("aaaaaaaa", "cccccccc"),
        ("bbbbbbbb",),
        (),
    )


def test_visible_letters_settle_what_masked_successes_cannot() -> None:
    names = ["abcdefgh", "abzzzzzz", "qqqqqqqq"]
    failures = ["abc****@virtual-bitget.com", "qq****@virtual-bitget.com"]
    assert match_names(names, [FULLY_MASKED], failures) == (
        ("abzzzzzz",),
        ("abcdefgh", "qqqqqqqq"),
        (),
    )


def test_rows_that_could_be_either_name_leave_both_unsettled() -> None:
    names = ["abcdefgh", "abzzzzzz", "qqqqqqqq"]
    # "ab****" fits both ab-names: which of them was refused the answer does not say.
    outcome = match_names(names, ["qqqqqqqq", FULLY_MASKED], ["ab****@virtual-bitget.com"])
    assert outcome == (("qqqqqqqq",), (), ("abcdefgh", "abzzzzzz"))


def test_an_answer_missing_rows_tells_only_what_it_shows_in_clear() -> None:
    names = ["aaaaaaaa", "bbbbbbbb", "cccccccc"]
    assert match_names(names, [], ["bbbbbbbb"]) == ((), ("bbbbbbbb",), ("aaaaaaaa", "cccccccc"))
    assert match_names(names, ["aaaaaaaa"], [FULLY_MASKED]) == (
        ("aaaaaaaa",),
        (),
        ("bbbbbbbb", "cccccccc"),
    )


def _by_every_pairing(
    names: Sequence[str], successes: Sequence[str], failures: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The same verdicts from every pairing of rows to names, tried one by one."""
    rows = [(shown, True) for shown in successes] + [(shown, False) for shown in failures]
    kinds: dict[str, set[bool]] = {name: set() for name in names}
    for order in itertools.permutations(rows):
        if all(row_fits(shown, name) for (shown, _), name in zip(order, names, strict=True)):
            for (_, success), name in zip(order, names, strict=True):
                kinds[name].add(success)
    return (
        tuple(name for name in names if kinds[name] == {True}),
        tuple(name for name in names if kinds[name] == {False}),
        tuple(name for name in names if len(kinds[name]) == 2),
    )


def test_the_verdicts_agree_with_trying_every_pairing() -> None:
    rng = random.Random(15)
    pool = ["abcdefgh", "abcdxxxx", "abzzzzzz", "qqqqqqqq", "qrstuvwx", "zzzzzzzz"]
    shapes = ["{}", "{}@virtual-bitget.com", "{:.3}****@virtual-bitget.com", "{:.2}****", "masked"]
    for _ in range(400):
        names = rng.sample(pool, rng.randint(1, 5))
        shown = [
            FULLY_MASKED if shape == "masked" else shape.format(name)
            for name, shape in zip(names, rng.choices(shapes, k=len(names)), strict=True)
        ]
        rng.shuffle(shown)
        cut = rng.randint(0, len(shown))
        successes, failures = shown[:cut], shown[cut:]
        assert match_names(names, successes, failures) == _by_every_pairing(
            names, successes, failures
        ), (names, successes, failures)


async def test_the_client_matches_a_masked_answer_to_the_request(
    client: Client, mocked: aioresponses
) -> None:
    """A crafted answer as Bitget may mask it: the refused name is the one requested."""
    mocked.post(
        BASE + "/api/v2/user/create-virtual-subaccount",
        payload=ok(
            {
                "successList": [
                    {"subaAccountUid": "9", "subaAccountName": FULLY_MASKED},
                    {"subaAccountUid": "10", "subaAccountName": "qq****@virtual-bitget.com"},
                ],
                "failureList": [{"subaAccountName": "abc****@virtual-bitget.com"}],
            }
        ),
    )
    request = m.CreateVirtualSubaccountsRequest(names=["qqqqqqqq", "abcdefgh", "abzzzzzz"])
    result = await client.create_virtual_subaccounts(request)
    assert result.failures == ("abc****@virtual-bitget.com",)  # as answered, still there
    assert result.refused_names == ("abcdefgh",)
    assert result.created_names == ("qqqqqqqq", "abzzzzzz")
    assert result.unsettled_names == ()


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator([MASTER, BROKER], limits=Limits(per_uid=False)) as emu:
        emu.exchange.add_broker_subaccount(
            BROKER.uid,
            SUB,
            {
                "api_key": SUB_KEY,
                "passphrase": SUB_KEY_PASS,
                "permissions": ["spot_trade"],
                "label": "old",
                "perm_type": "readonly",
            },
        )
        yield emu


async def test_refusals_over_loopback_name_the_requested_names(emulator: Emulator) -> None:
    async with client_for(emulator, MASTER) as client:
        first = await client.create_virtual_subaccounts(
            m.CreateVirtualSubaccountsRequest(names=["takenone"])
        )
        again = await client.create_virtual_subaccounts(
            m.CreateVirtualSubaccountsRequest(names=["freshone", "TAKENONE"])
        )
    assert (first.created_names, first.refused_names) == (("takenone",), ())
    assert (again.created_names, again.refused_names, again.unsettled_names) == (
        ("freshone",),
        ("TAKENONE",),
        (),
    )


# -- key lists: a request model, or the bare UID as before --------------------------------


async def test_key_lists_take_their_request_model_or_a_bare_uid(emulator: Emulator) -> None:
    async with client_for(emulator, BROKER) as broker, client_for(emulator, MASTER) as master:
        by_model = await broker.list_broker_subaccount_api_keys(
            m.ListBrokerSubaccountAPIKeysRequest(sub_uid=SUB)
        )
        by_uid = await broker.list_broker_subaccount_api_keys(SUB)
        by_keyword = await broker.list_broker_subaccount_api_keys(request=SUB)
        sub = (
            await master.create_virtual_subaccounts(
                m.CreateVirtualSubaccountsRequest(names=["listkeys"])
            )
        ).successes[0]
        virtual_model = await master.list_virtual_subaccount_api_keys(
            m.ListVirtualSubaccountAPIKeysRequest(subaccount_uid=sub.subaccount_uid)
        )
        virtual_uid = await master.list_virtual_subaccount_api_keys(sub.subaccount_uid)
    assert [key.api_key for key in by_model] == [SUB_KEY]
    assert by_uid == by_model == by_keyword
    assert virtual_model == virtual_uid == ()


async def test_the_old_keywords_still_work_and_warn(emulator: Emulator) -> None:
    async with client_for(emulator, BROKER) as broker, client_for(emulator, MASTER) as master:
        with pytest.warns(DeprecationWarning, match=r"list_broker_subaccount_api_keys\(sub_uid"):
            keys = await broker.list_broker_subaccount_api_keys(sub_uid=SUB)
        created = await master.create_virtual_subaccounts(
            m.CreateVirtualSubaccountsRequest(names=["oldwords"])
        )
        uid = created.successes[0].subaccount_uid
        with pytest.warns(DeprecationWarning, match=r"subaccount_uid=\.\.\.\) is deprecated"):
            virtual = await master.list_virtual_subaccount_api_keys(subaccount_uid=uid)
    assert [key.api_key for key in keys] == [SUB_KEY]
    assert virtual == ()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"request": "5550001", "sub_uid": "5550001"}, TypeError, "got the sub-account twice"),
        ({}, TypeError, "needs a ListBrokerSubaccountAPIKeysRequest or a sub-account UID"),
        ({"request": 5550001}, TypeError, r"\(got int\)"),
        ({"request": "55 50"}, ValidationError, "sub_uid"),
    ],
)
async def test_a_key_list_refuses_before_sending(
    client: Client, mocked: aioresponses, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        await client.list_broker_subaccount_api_keys(**kwargs)
    with pytest.raises(error, match=match):
        await client.query_uta_broker_subaccount_api_key(**kwargs)
    assert not mocked.requests


# -- ND-broker modify: perm_type optional --------------------------------------------------


def modify(**changes: Any) -> m.ModifyBrokerSubaccountAPIKeyRequest:
    fields: dict[str, Any] = {
        "sub_uid": SUB,
        "api_key": SUB_KEY,
        "passphrase": SUB_KEY_PASS,
        "permissions": ["spot_trade", "margin_trade"],
    }
    return m.ModifyBrokerSubaccountAPIKeyRequest(**(fields | changes))


def test_broker_modify_without_perm_type_leaves_it_out_of_the_body() -> None:
    request = modify()
    assert request.perm_type is None
    body = orjson.loads(encode_body(request))
    assert "permType" not in body
    assert body["permList"] == ["spot_trade", "margin_trade"]
    assert orjson.loads(encode_body(modify(perm_type="readonly")))["permType"] == "readonly"


def test_wallet_transfer_still_needs_read_and_write_named() -> None:
    """The kept type is unknown to the client, so the rule asks for it to be given."""
    with pytest.raises(ValidationError) as caught:
        modify(permissions=["wallet_transfer"])
    assert [problem.field for problem in caught.value.problems] == ["permissions"]
    assert "read_and_write" in str(caught.value)
    modify(permissions=["wallet_transfer"], perm_type="read_and_write")  # fine


async def test_the_emulator_keeps_the_type_when_modify_omits_it(emulator: Emulator) -> None:
    async with client_for(emulator, BROKER) as broker:
        kept = await broker.modify_broker_subaccount_api_key(modify(label="new"))
        listed = await broker.list_broker_subaccount_api_keys(SUB)
        changed = await broker.modify_broker_subaccount_api_key(modify(perm_type="read_and_write"))
    assert (kept.perm_type, kept.label) == (m.PermType.READONLY, "new")
    assert set(kept.permissions) == {m.Permission.SPOT_TRADE, m.Permission.MARGIN_TRADE}
    assert listed[0].perm_type is m.PermType.READONLY
    assert changed.perm_type is m.PermType.READ_AND_WRITE
