"""
Load for the emulator: one valid request per seed endpoint, sent over and over.

The saturation benchmarks and the cross-process Redis test keep every lane busy with
these. Against the emulator most of them are refused after the first (a sub-account
that does not exist, a name that is taken), which is what load needs: every request
is still signed, sent and counted against its lane.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys._client import Client

__all__ = ["SEED_ENDPOINTS", "load_request"]

#: The four endpoints the product is built around: 1, 5, 1 and 10 per second per UID.
SEED_ENDPOINTS: Final = (
    ep.CREATE_COPY_API_KEY,
    ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY,
    ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS,
    ep.MODIFY_BROKER_SUBACCOUNT_API_KEY,
)
#: The passphrase of every key the load creates (they exist only in the emulator).
_PASSPHRASE: Final = "Passw0rd1234"  # noqa: S105 - a made-up test value


def load_request(endpoint: ep.Endpoint) -> Callable[[Client], Awaitable[object]]:
    """
    A call that sends one request on ``endpoint`` (one of `SEED_ENDPOINTS`) with a client.

    Raises:
        ValueError: ``endpoint`` is not a seed endpoint.
    """
    if endpoint is ep.CREATE_COPY_API_KEY:
        copy = m.CreateCopyAPIKeyRequest(passphrase=_PASSPHRASE)
        return lambda client: client.create_copy_api_key(copy)
    if endpoint is ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY:
        key = m.CreateVirtualSubaccountAPIKeyRequest(
            subaccount_uid="1",
            passphrase=_PASSPHRASE,
            label="load",
            ip_list=[],
            permissions=["read"],
        )
        return lambda client: client.create_virtual_subaccount_api_key(key)
    if endpoint is ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS:
        sub = m.NewVirtualSubaccount(
            name="loadtest", passphrase=_PASSPHRASE, label="load", permissions=["read"], ip_list=[]
        )
        batch = m.BatchCreateVirtualSubaccountsRequest(items=[sub])
        return lambda client: client.batch_create_virtual_subaccounts(batch)
    if endpoint is ep.MODIFY_BROKER_SUBACCOUNT_API_KEY:
        modify = m.ModifyBrokerSubaccountAPIKeyRequest(
            sub_uid="1",
            api_key="bg_x",
            passphrase=_PASSPHRASE,
            permissions=["spot_trade"],
            perm_type="readonly",
        )
        return lambda client: client.modify_broker_subaccount_api_key(modify)
    msg = f"no load request for {endpoint.name}; seed endpoints only"
    raise ValueError(msg)
