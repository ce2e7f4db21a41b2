"""Bitget's v2 user endpoints: virtual sub-accounts and their keys (``/api/v2/user/...``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys._client.key_lists import list_request
from bitget_keys._client.outcomes import require_success
from bitget_keys._client.sending import SendingCore

__all__ = ["V2UserEndpoints"]


class V2UserEndpoints(SendingCore):
    """A master account's virtual sub-accounts and their API keys."""

    __slots__ = ()

    async def create_virtual_subaccounts(
        self, request: m.CreateVirtualSubaccountsRequest
    ) -> m.CreatedVirtualSubaccounts:
        """
        Create virtual sub-accounts without keys; the result lists refusals per name.

        Bitget may answer with masked names: the result's ``refused_names``,
        ``created_names`` and ``unsettled_names`` are the requested names each answer
        row stands for (`CreatedVirtualSubaccounts.matched_to`).

        Raises:
            TransportError: no answer; if ``maybe_sent``, list the sub-accounts first.
        """
        answer = await self._call(
            ep.CREATE_VIRTUAL_SUBACCOUNTS, m.CreatedVirtualSubaccounts, body=request
        )
        return answer.matched_to(request)

    async def batch_create_virtual_subaccounts(
        self, request: m.BatchCreateVirtualSubaccountsRequest
    ) -> tuple[m.CreatedVirtualSubaccount, ...]:
        """
        Create 1-5 virtual sub-accounts, each with its first API key.

        Rows come back matched by nothing but their label; names and UIDs may be
        masked. The secrets are in the result only: store them before anything else.

        Raises:
            ConflictError: a name is taken.
            QuotaExceededError: the master has its 20 sub-accounts.
            TransportError: no answer; if ``maybe_sent``, list the sub-accounts before
                trying again.
        """
        return await self._call(
            ep.BATCH_CREATE_VIRTUAL_SUBACCOUNTS,
            tuple[m.CreatedVirtualSubaccount, ...],
            body=request,
        )

    async def list_virtual_subaccounts(
        self, request: m.ListVirtualSubaccountsRequest | None = None
    ) -> m.VirtualSubaccountPage:
        """
        One page of the master's virtual sub-accounts, newest first.
        """
        return await self._call(
            ep.LIST_VIRTUAL_SUBACCOUNTS,
            m.VirtualSubaccountPage,
            params=request or m.ListVirtualSubaccountsRequest(),
        )

    async def iter_virtual_subaccounts(
        self, *, page_size: int = 100, status: m.SubaccountStatus | None = None
    ) -> AsyncIterator[m.VirtualSubaccount]:
        """
        Every virtual sub-account of the master, following the ``endId`` cursor.

        Paging stops on an empty or short page, or when the cursor stops moving.
        """
        cursor: str | None = None
        while True:
            page = await self.list_virtual_subaccounts(
                m.ListVirtualSubaccountsRequest(limit=page_size, id_less_than=cursor, status=status)
            )
            for subaccount in page.subaccounts:
                yield subaccount
            if len(page.subaccounts) < page_size or not page.end_id or page.end_id == cursor:
                return
            cursor = page.end_id

    async def create_virtual_subaccount_api_key(
        self, request: m.CreateVirtualSubaccountAPIKeyRequest
    ) -> m.CreatedVirtualSubaccountAPIKey:
        """
        Create one more API key for a virtual sub-account.

        The secret is in the result only: store it before doing anything else.

        Raises:
            QuotaExceededError: the sub-account has its 10 keys.
            TransportError: no answer; if ``maybe_sent``, list the sub-account's keys
                before trying again.
        """
        return await self._call(
            ep.CREATE_VIRTUAL_SUBACCOUNT_API_KEY, m.CreatedVirtualSubaccountAPIKey, body=request
        )

    async def list_virtual_subaccount_api_keys(
        self,
        request: m.ListVirtualSubaccountAPIKeysRequest | str | None = None,
        *,
        subaccount_uid: str | None = None,
    ) -> tuple[m.VirtualSubaccountAPIKey, ...]:
        """
        The keys of a virtual sub-account (never with secrets).

        ``request`` is the request model or the sub-account's bare UID; the keyword
        ``subaccount_uid=`` still works but is deprecated.
        """
        params = list_request(
            ep.LIST_VIRTUAL_SUBACCOUNT_API_KEYS,
            m.ListVirtualSubaccountAPIKeysRequest,
            request,
            subaccount_uid,
        )
        return await self._call(
            ep.LIST_VIRTUAL_SUBACCOUNT_API_KEYS,
            tuple[m.VirtualSubaccountAPIKey, ...],
            params=params,
        )

    async def modify_virtual_subaccount_api_key(
        self, request: m.ModifyVirtualSubaccountAPIKeyRequest
    ) -> m.VirtualSubaccountAPIKey:
        """
        Replace a virtual sub-account key's label, whitelist and (optionally) rights.
        """
        return await self._call(
            ep.MODIFY_VIRTUAL_SUBACCOUNT_API_KEY, m.VirtualSubaccountAPIKey, body=request
        )

    async def modify_virtual_subaccount(self, request: m.ModifyVirtualSubaccountRequest) -> None:
        """
        Freeze (``status="freeze"``) or unfreeze (``"normal"``) a virtual sub-account.

        Bitget sets the sub-account's rights to the ``permissions`` sent, so send the
        ones its list row shows to change only its status.

        Raises:
            APIError: Bitget answered ``result: failure`` (under a success code): the
                sub-account is not known to be changed.
            UnifiedAccountModeError: the master is unified (40085); freeze through
                `freeze_uta_subaccount` instead.
        """
        answer = await self._call(
            ep.MODIFY_VIRTUAL_SUBACCOUNT, m.ModifyVirtualSubaccountResult, body=request
        )
        require_success(ep.MODIFY_VIRTUAL_SUBACCOUNT, answer.result)
