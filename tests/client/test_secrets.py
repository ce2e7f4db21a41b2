"""No secret reaches a log line, a repr, a str or an exception message."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from bitget_keys import Client, ClientConfig, Credentials, Secret
from bitget_keys import errors as e
from bitget_keys import models as m
from bitget_keys.testing import Unpaced
from tests.conftest import NOW_MS, PASSPHRASE, SECRET_KEY

from .test_client import BASE, E2_REQUEST, E3_REQUEST, E4_REQUEST, S4_REQUEST, S7_REQUEST, ok

NEW_SECRETS = ("CreatedSecretE2", "CreatedSecretE3a", "CopySecretXYZ", "BrokerSecret77")


def everything_printable(objects: list[Any]) -> str:
    """repr, str and format of every object, and of each exception's args and cause."""
    parts = []
    for obj in objects:
        parts += [repr(obj), str(obj), f"{obj}"]
        if isinstance(obj, BaseException):
            parts += [repr(obj.args), repr(obj.__cause__), str(obj.__cause__)]
    return "\n".join(parts)


async def test_no_secret_anywhere(
    credentials: Credentials,
    mocked: aioresponses,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    secrets_seen: set[str],
) -> None:
    """A DEBUG run of every endpoint, success and failure, then repr() of every object."""
    caplog.set_level(logging.DEBUG, logger="bitget_keys")
    created = {
        "subAccountUid": "1",
        "label": "bot01",
        "subAccountApiKey": "bg_new",
        "secretKey": NEW_SECRETS[0],
    }
    mocked.get(BASE + "/api/v2/public/time", payload=ok({"serverTime": str(NOW_MS)}))
    mocked.post(BASE + "/api/v2/user/create-virtual-subaccount-apikey", payload=ok(created))
    mocked.post(
        BASE + "/api/v2/user/batch-create-subaccount-and-apikey",
        payload=ok(
            [
                created
                | {"subAccountName": "****@***.com", "secretKey": NEW_SECRETS[1], "label": "bot01"}
            ]
        ),
    )
    mocked.post(
        BASE + "/api/v2/copy/mix-trader/create-copy-api",
        payload=ok([{"apikey": "bg_copy", "secret": NEW_SECRETS[2], "permissions": []}]),
    )
    mocked.post(
        BASE + "/api/v2/broker/manage/create-subaccount-apikey",
        payload=ok({"subUid": "555", "apiKey": "bg_b", "secretKey": NEW_SECRETS[3]}),
    )
    mocked.post(
        BASE + "/api/v2/broker/manage/modify-subaccount-apikey",
        status=400,
        payload={"code": "40036", "msg": "passphrase is error", "requestTime": 1, "data": None},
    )
    mocked.post(
        BASE + "/api/v2/user/modify-virtual-subaccount-apikey",
        exception=aiohttp.ServerDisconnectedError(),
    )
    mocked.get(
        BASE + "/api/v2/user/virtual-subaccount-apikey-list?subAccountUid=1",
        payload=ok([{"subAccountUid": "1", "subAccountApiKey": "bg_new"}]),
    )
    objects: list[Any] = [credentials, E2_REQUEST, E3_REQUEST, E4_REQUEST, S4_REQUEST, S7_REQUEST]
    config = ClientConfig(clock_resync_interval=3600)
    async with Client(
        credentials, config=config, scheduler=Unpaced(), clock_ms=lambda: NOW_MS
    ) as client:
        objects += [client, client._transport, client.config]
        objects.append(await client.create_virtual_subaccount_api_key(E2_REQUEST))
        objects += list(await client.batch_create_virtual_subaccounts(E3_REQUEST))
        objects.append(
            await client.create_copy_api_key(m.CreateCopyAPIKeyRequest(passphrase="Passw0rd1234"))
        )
        objects.append(await client.create_broker_subaccount_api_key(S7_REQUEST))
        objects += list(await client.list_virtual_subaccount_api_keys("1"))
        for call in (
            client.modify_broker_subaccount_api_key(E4_REQUEST),
            client.modify_virtual_subaccount_api_key(S4_REQUEST),
        ):
            with pytest.raises(e.BitgetKeysError) as info:
                await call
            objects.append(info.value)
    for bad in (
        lambda: m.CreateCopyAPIKeyRequest(passphrase="Bad!Passphrase"),
        lambda: Credentials("", SECRET_KEY, PASSPHRASE),
    ):
        with pytest.raises(e.BitgetKeysError) as info:
            bad()
        objects.append(info.value)
    objects += [Secret(SECRET_KEY), e.ValidationError((e.Problem("passphrase", "rule"),))]

    printed = everything_printable(objects)
    logged = caplog.text
    out, err = capsys.readouterr()
    forbidden = {SECRET_KEY, PASSPHRASE, "Passw0rd1234", "Bad!Passphrase", *NEW_SECRETS}
    assert forbidden <= secrets_seen | {"Bad!Passphrase"}
    for value in forbidden:
        assert value not in printed, value
        assert value not in logged, value
        assert value not in out + err, value
    # The checks are not vacuous: the log and the reprs do describe the calls.
    assert "/api/v2/user/create-virtual-subaccount-apikey" in logged
    assert "code 40036" in logged
    assert "bg_new" in printed
    assert "CreatedVirtualSubaccountAPIKey" in printed
