"""
What to do with each kind of failure, and reconciling a create whose answer was lost.

- A request that breaks one of Bitget's documented rules raises `ValidationError`
  before anything is sent, listing every broken rule by field.
- A create whose connection dropped after it was sent raises `TransportError` with
  ``maybe_sent=True``, and one Bitget failed on its side raises `ServerError`: Bitget
  may have carried it out. Never send it again blindly; read the list endpoints and
  look for it. Here the emulator carries the create out
  and then cuts the connection, as a network fault would.

Run it with::

    python examples/handle_errors.py
"""

from __future__ import annotations

import asyncio

from bitget_keys import Client, EndpointName
from bitget_keys import models as m
from bitget_keys.errors import APIError, ServerError, TransportError, ValidationError
from bitget_keys.testing import Emulator, Faults

WHITELIST = ["203.0.113.7"]


def key_request(subaccount_uid: str, label: str) -> m.CreateVirtualSubaccountAPIKeyRequest:
    """A read-only key for the sub-account."""
    return m.CreateVirtualSubaccountAPIKeyRequest(
        subaccount_uid=subaccount_uid,
        passphrase="ReadOnly12345",
        label=label,
        ip_list=WHITELIST,
        permissions=[m.Permission.READ],
        perm_type=m.PermType.READONLY,
    )


async def main() -> None:
    """Break a rule, then lose a create's answer and find out what happened."""
    try:
        m.NewVirtualSubaccount(
            name="bot1",  # must be 8 English letters
            passphrase="short",  # must be 8-32 letters and digits
            label="desk",
            permissions=[m.Permission.SPOT_TRADE],
            ip_list=["10.0.0.1"],  # a private address Bitget can never see
        )
    except ValidationError as exc:
        print(f"refused before sending: {', '.join(exc.fields)}")

    # Every key create is carried out, then its connection cut.
    faults = Faults(
        drop_after_commit=1.0,
        endpoints=frozenset({EndpointName.CREATE_VIRTUAL_SUBACCOUNT_API_KEY}),
    )
    async with Emulator(faults=faults) as emulator:
        master = emulator.accounts[0]
        async with Client(master.credentials, base_url=emulator.base_url) as client:
            await client.batch_create_virtual_subaccounts(
                m.BatchCreateVirtualSubaccountsRequest(
                    items=[
                        m.NewVirtualSubaccount(
                            name="faultbot",
                            passphrase="Passw0rd1234",
                            label="faults",
                            permissions=[m.Permission.SPOT_TRADE],
                            ip_list=WHITELIST,
                        )
                    ]
                )
            )
            (uid,) = [sub.subaccount_uid async for sub in client.iter_virtual_subaccounts()]
            try:
                await client.create_virtual_subaccount_api_key(key_request(uid, "reader"))
            except (TransportError, ServerError) as exc:
                if isinstance(exc, TransportError) and not exc.maybe_sent:
                    raise  # it never left: sending it again is safe
                # Reconcile: did Bitget create it? The list endpoints tell.
                keys = await client.list_virtual_subaccount_api_keys(uid)
                found = [key for key in keys if key.label == "reader"]
                if found:
                    print(
                        f"outcome unknown, reconciled: key {found[0].api_key} exists but its "
                        "secret never arrived; treat it as an orphan, do not create it again"
                    )
                else:
                    print("outcome unknown, reconciled: nothing was created; safe to retry")
            except APIError as exc:
                # Any other answer refused the request, which carried out nothing
                # (ConflictError, QuotaExceededError, AuthenticationError, ...).
                print(f"refused by Bitget: {type(exc).__name__} {exc.code}")


if __name__ == "__main__":
    asyncio.run(main())
