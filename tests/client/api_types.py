"""
Type-checked, never run: pins the public API's types for users of mypy.

If a change here is needed, the public API changed: say so in the changelog.
"""

from __future__ import annotations

from typing import assert_type

from bitget_keys import Client, ClientConfig, Credentials, Secret
from bitget_keys import models as m
from bitget_keys.errors import APIError, TransportError


async def pinned(credentials: Credentials) -> None:
    async with Client(credentials, config=ClientConfig(request_timeout=5)) as client:
        assert_type(await client.uid(), str)
        assert_type(await client.server_time(), m.ServerTime)
        created = await client.create_virtual_subaccount_api_key(
            m.CreateVirtualSubaccountAPIKeyRequest(
                subaccount_uid="1",
                passphrase="Passw0rd1234",
                label="bot",
                ip_list=["203.0.113.7"],
                permissions=[m.Permission.SPOT_TRADE, "read"],
            )
        )
        assert_type(created.secret_key, Secret)
        assert_type(created.secret_key.reveal(), str)
        rows = await client.batch_create_virtual_subaccounts(
            m.BatchCreateVirtualSubaccountsRequest(items=[])
        )
        assert_type(rows, tuple[m.CreatedVirtualSubaccount, ...])
        keys = await client.list_virtual_subaccount_api_keys("1")
        assert_type(keys[0].secret_key, Secret | None)
        async for sub in client.iter_virtual_subaccounts():
            assert_type(sub, m.VirtualSubaccount)
        try:
            await client.create_copy_api_key(m.CreateCopyAPIKeyRequest(passphrase="x"))
        except APIError as exc:
            assert_type(exc.code, str | None)
        except TransportError as exc:
            assert_type(exc.maybe_sent, bool)


async def pinned_v3(client: Client) -> None:
    assert_type(await client.account_mode(), m.AccountMode)
    assert_type(client.cached_account_mode(), m.AccountMode | None)
    assert_type(client.account_modes.get("1"), m.AccountMode | None)
    assert_type(await client.account_settings(), m.AccountSettings)
    page = await client.list_uta_subaccounts()
    assert_type(page, m.UTASubaccountPage)
    async for sub in client.iter_uta_subaccounts():
        assert_type(sub, m.UTASubaccount)
    async for key in client.iter_uta_subaccount_api_keys("1"):
        assert_type(key, m.UTASubaccountAPIKey)
    created = await client.create_uta_subaccount_api_key(
        m.CreateUTASubaccountAPIKeyRequest(
            sub_uid="1",
            note="bot",
            type="read_write",
            passphrase="Passw0rd1234",
            permissions=["uta_trade"],
            ips=["203.0.113.7"],
        )
    )
    assert_type(created.secret, Secret)
    broker = await client.query_uta_broker_subaccount_api_key("1")
    assert_type(broker.secret_key, Secret | None)
    assert_type(
        await client.delete_uta_subaccount_api_key(m.DeleteUTASubaccountAPIKeyRequest(api_key="k")),
        None,
    )


async def pinned_lifecycle(client: Client) -> None:
    info = await client.account_info_v3()
    assert_type(info, m.UTAAccountInfo)
    assert_type(info.ips, tuple[str, ...])
    assert_type(
        await client.modify_virtual_subaccount(
            m.ModifyVirtualSubaccountRequest(
                subaccount_uid="1", permissions=["read"], status="freeze"
            )
        ),
        None,
    )
    assert_type(
        await client.delete_broker_subaccount_api_key(
            m.DeleteBrokerSubaccountAPIKeyRequest(sub_uid="1", api_key="k")
        ),
        None,
    )
