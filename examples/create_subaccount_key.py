"""
Create a virtual sub-account with its first API key, then add a read-only key to it.

Runs against the bundled emulator (Bitget's rules, codes and rate limits, served on
127.0.0.1), so it needs no Bitget account::

    python examples/create_subaccount_key.py

Against Bitget, build the client with ``Credentials.from_env()`` and no ``base_url``.
"""

from __future__ import annotations

import asyncio

from bitget_keys import Client, Secret
from bitget_keys import models as m
from bitget_keys.testing import Emulator

#: Every key's whitelist: your public egress IP (a documentation address here).
WHITELIST = ["203.0.113.7"]


async def main() -> None:
    """Create the sub-account and its two keys, and list the keys back."""
    stored: dict[str, Secret] = {}  # stands for your secrets store
    async with Emulator() as emulator:
        master = emulator.accounts[0]
        async with Client(master.credentials, base_url=emulator.base_url) as client:
            # batch-create makes the sub-account together with its first key (1-5 a call).
            (first,) = await client.batch_create_virtual_subaccounts(
                m.BatchCreateVirtualSubaccountsRequest(
                    items=[
                        m.NewVirtualSubaccount(
                            name="alphabot",  # 8 English letters, unique across Bitget
                            passphrase="Passw0rd1234",
                            label="alpha",
                            permissions=[m.Permission.SPOT_TRADE],
                            ip_list=WHITELIST,
                        )
                    ]
                )
            )
            # A secret is shown once, in the answer that created it: store it first.
            stored[first.api_key] = first.secret_key
            # Bitget may mask the UID in that answer: the list tells it, by label.
            (uid,) = [
                sub.subaccount_uid
                async for sub in client.iter_virtual_subaccounts()
                if sub.label == first.label
            ]
            second = await client.create_virtual_subaccount_api_key(
                m.CreateVirtualSubaccountAPIKeyRequest(
                    subaccount_uid=uid,
                    passphrase="ReadOnly12345",
                    label="read",
                    ip_list=WHITELIST,
                    permissions=[m.Permission.READ],
                    perm_type=m.PermType.READONLY,
                )
            )
            stored[second.api_key] = second.secret_key
            keys = await client.list_virtual_subaccount_api_keys(uid)
    labels = sorted(key.label for key in keys)
    print(f"sub-account {uid} ({first.label}) has keys: {', '.join(labels)}")
    # Secrets print masked; only Secret.reveal() gives the value.
    print(f"stored {len(stored)} secrets, shown as {stored[second.api_key]}")


if __name__ == "__main__":
    asyncio.run(main())
