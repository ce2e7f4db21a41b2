"""
Bitget's v3 ND-broker endpoints for a unified sub-account's key (``/api/v3/broker/...``).

A classic broker master gets 40084 (`ClassicAccountModeError`) from them, carried out
nothing, and is served by the v2 broker endpoints instead.
"""

from __future__ import annotations

from typing import Any

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys._client.key_lists import list_request
from bitget_keys._client.sending import SendingCore

__all__ = ["V3BrokerEndpoints"]


class V3BrokerEndpoints(SendingCore):
    """The API key of an ND broker's unified sub-account; the caller must be an ND broker."""

    __slots__ = ()

    async def create_uta_broker_subaccount_api_key(
        self, request: m.CreateUTABrokerSubaccountAPIKeyRequest
    ) -> m.UTABrokerSubaccountAPIKey:
        """
        Create an API key for an ND-broker unified sub-account (with its secret).

        Raises:
            ClassicAccountModeError: the broker master is classic (40084).
            TransportError: no answer; if ``maybe_sent``, query the sub-account's key
                before trying again.
        """
        return await self._call(
            ep.CREATE_UTA_BROKER_SUBACCOUNT_API_KEY, m.UTABrokerSubaccountAPIKey, body=request
        )

    async def modify_uta_broker_subaccount_api_key(
        self, request: m.ModifyUTABrokerSubaccountAPIKeyRequest
    ) -> m.UTABrokerSubaccountAPIKey:
        """
        Change what the request gives of an ND-broker sub-account key (no secret back).

        Raises:
            ClassicAccountModeError: the broker master is classic (40084).
        """
        return await self._call(
            ep.MODIFY_UTA_BROKER_SUBACCOUNT_API_KEY, m.UTABrokerSubaccountAPIKey, body=request
        )

    async def delete_uta_broker_subaccount_api_key(
        self, request: m.DeleteUTABrokerSubaccountAPIKeyRequest
    ) -> None:
        """
        Delete an ND-broker sub-account key; the answer's code is the whole result.

        Raises:
            ClassicAccountModeError: the broker master is classic (40084).
        """
        await self._call(ep.DELETE_UTA_BROKER_SUBACCOUNT_API_KEY, Any, body=request)

    async def query_uta_broker_subaccount_api_key(
        self,
        request: m.ListBrokerSubaccountAPIKeysRequest | str | None = None,
        *,
        sub_uid: str | None = None,
    ) -> m.UTABrokerSubaccountAPIKey:
        """
        The key of an ND-broker unified sub-account; Bitget shows its secret here too.

        Bitget answers one key, not a list; how a sub-account with several keys is shown
        is not documented. ``request`` is the request model or the sub-account's bare
        UID; the keyword ``sub_uid=`` still works but is deprecated.

        Raises:
            ClassicAccountModeError: the broker master is classic (40084).
        """
        params = list_request(
            ep.QUERY_UTA_BROKER_SUBACCOUNT_API_KEY,
            m.ListBrokerSubaccountAPIKeysRequest,
            request,
            sub_uid,
        )
        return await self._call(
            ep.QUERY_UTA_BROKER_SUBACCOUNT_API_KEY, m.UTABrokerSubaccountAPIKey, params=params
        )
