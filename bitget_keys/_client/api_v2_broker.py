"""Bitget's v2 ND-broker endpoints for sub-account keys (``/api/v2/broker/manage/...``)."""

from __future__ import annotations

from typing import Any

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys._client.key_lists import list_request
from bitget_keys._client.outcomes import require_success
from bitget_keys._client.sending import SendingCore

__all__ = ["V2BrokerEndpoints"]


class V2BrokerEndpoints(SendingCore):
    """The API keys of an ND broker's sub-accounts; the caller must be an ND broker."""

    __slots__ = ()

    async def create_broker_subaccount_api_key(
        self, request: m.CreateBrokerSubaccountAPIKeyRequest
    ) -> m.BrokerSubaccountAPIKey:
        """
        Create an API key for an ND-broker sub-account; its secret is shown only here.

        Raises:
            PermissionDeniedError: the caller is not an ND broker (40029).
            TransportError: no answer; if ``maybe_sent``, list the keys first.
        """
        return await self._call(
            ep.CREATE_BROKER_SUBACCOUNT_API_KEY, m.BrokerSubaccountAPIKey, body=request
        )

    async def modify_broker_subaccount_api_key(
        self, request: m.ModifyBrokerSubaccountAPIKeyRequest
    ) -> m.BrokerSubaccountAPIKey:
        """
        Replace an ND-broker sub-account key's permissions, and its type, whitelist or
        label where the request gives them.

        Raises:
            PermissionDeniedError: the caller is not an ND broker (40029).
        """
        return await self._call(
            ep.MODIFY_BROKER_SUBACCOUNT_API_KEY, m.BrokerSubaccountAPIKey, body=request
        )

    async def list_broker_subaccount_api_keys(
        self,
        request: m.ListBrokerSubaccountAPIKeysRequest | str | None = None,
        *,
        sub_uid: str | None = None,
    ) -> tuple[m.BrokerSubaccountAPIKey, ...]:
        """
        The keys of an ND-broker sub-account.

        ``request`` is the request model or the sub-account's bare UID; the keyword
        ``sub_uid=`` still works but is deprecated.
        """
        params = list_request(
            ep.LIST_BROKER_SUBACCOUNT_API_KEYS,
            m.ListBrokerSubaccountAPIKeysRequest,
            request,
            sub_uid,
        )
        return await self._call(
            ep.LIST_BROKER_SUBACCOUNT_API_KEYS, tuple[m.BrokerSubaccountAPIKey, ...], params=params
        )

    async def delete_broker_subaccount_api_key(
        self, request: m.DeleteBrokerSubaccountAPIKeyRequest
    ) -> None:
        """
        Delete an ND-broker sub-account key; it stops working.

        Raises:
            APIError: Bitget answered anything but ``"success"`` (under a success code):
                the key is not known to be deleted.
            PermissionDeniedError: the caller is not an ND broker (40029).
            TransportError: no answer; if ``maybe_sent``, list the keys to see whether it
                is gone.
        """
        answer = await self._call(ep.DELETE_BROKER_SUBACCOUNT_API_KEY, Any, body=request)
        require_success(ep.DELETE_BROKER_SUBACCOUNT_API_KEY, answer)
