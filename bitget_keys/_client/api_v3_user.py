"""
Bitget's v3 user endpoints: a unified master's sub-accounts and their keys
(``/api/v3/user/...``).

A classic master's key gets 40084 (`ClassicAccountModeError`) from every one of them;
nothing was carried out, and the v2 user endpoints serve that account instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys._client.sending import SendingCore

__all__ = ["V3UserEndpoints"]


T = TypeVar("T")

#: One page: its rows, ``hasNext`` and the cursor of the next page.
_Page = tuple[Sequence[T], bool, str | None]


async def _follow(
    fetch: Callable[[str | None], Awaitable[_Page[T]]],
) -> AsyncIterator[T]:
    """The rows of every page, following the cursor from the first page on."""
    sent: str | None = None
    while True:
        rows, has_next, cursor = await fetch(sent)
        for row in rows:
            yield row
        # Bitget returns a cursor even on the last page, so the flag, an empty page and a
        # cursor that did not move each end the paging. A short page does not: Bitget may
        # page below the size asked for, and a row left unread would be created again.
        if not has_next or not rows or not cursor or cursor == sent:
            return
        sent = cursor


class V3UserEndpoints(SendingCore):
    """A unified (or hybrid) master's sub-accounts and their API keys."""

    __slots__ = ()

    async def create_uta_subaccount(
        self, request: m.CreateUTASubaccountRequest
    ) -> m.CreatedUTASubaccount:
        """
        Create one virtual sub-account of a unified master.

        Raises:
            ClassicAccountModeError: the master is classic (40084); use the v2 methods.
            TransportError: no answer; if ``maybe_sent``, list the sub-accounts before
                trying again.
        """
        return await self._call(ep.CREATE_UTA_SUBACCOUNT, m.CreatedUTASubaccount, body=request)

    async def list_uta_subaccounts(
        self, request: m.ListUTASubaccountsRequest | None = None
    ) -> m.UTASubaccountPage:
        """
        One page of the master's sub-accounts, classic and unified, of every kind.

        Raises:
            ClassicAccountModeError: the master is classic (40084).
        """
        return await self._call(
            ep.LIST_UTA_SUBACCOUNTS,
            m.UTASubaccountPage,
            params=request or m.ListUTASubaccountsRequest(),
        )

    async def iter_uta_subaccounts(self, *, page_size: int = 100) -> AsyncIterator[m.UTASubaccount]:
        """
        Every sub-account of the master, following the ``cursor``.

        Paging stops when ``has_next`` is false, on an empty page, or when the cursor
        stops moving; a short page with ``has_next`` true is followed.
        """

        async def fetch(cursor: str | None) -> _Page[m.UTASubaccount]:
            page = await self.list_uta_subaccounts(
                m.ListUTASubaccountsRequest(limit=page_size, cursor=cursor)
            )
            return page.subaccounts, page.has_next, page.cursor

        async for subaccount in _follow(fetch):
            yield subaccount

    async def freeze_uta_subaccount(self, request: m.FreezeUTASubaccountRequest) -> None:
        """
        Freeze or unfreeze one sub-account.

        Raises:
            ClassicAccountModeError: the master is classic (40084).
        """
        await self._call(ep.FREEZE_UTA_SUBACCOUNT, Any, body=request)

    async def create_uta_subaccount_api_key(
        self, request: m.CreateUTASubaccountAPIKeyRequest
    ) -> m.CreatedUTASubaccountAPIKey:
        """
        Create an API key for a unified master's virtual sub-account.

        The secret is in the result only: store it before doing anything else.

        Raises:
            ClassicAccountModeError: the master is classic (40084); use the v2 methods.
            TransportError: no answer; if ``maybe_sent``, list the sub-account's keys
                before trying again.
        """
        return await self._call(
            ep.CREATE_UTA_SUBACCOUNT_API_KEY, m.CreatedUTASubaccountAPIKey, body=request
        )

    async def update_uta_subaccount_api_key(
        self, request: m.UpdateUTASubaccountAPIKeyRequest
    ) -> m.UTASubaccountAPIKey:
        """
        Change a unified sub-account key's rights or whitelist (an omitted ``ips`` keeps it).

        Raises:
            ClassicAccountModeError: the master is classic (40084).
        """
        return await self._call(
            ep.UPDATE_UTA_SUBACCOUNT_API_KEY, m.UTASubaccountAPIKey, body=request
        )

    async def delete_uta_subaccount_api_key(
        self, request: m.DeleteUTASubaccountAPIKeyRequest
    ) -> None:
        """
        Delete a unified sub-account's key; it stops working at once.

        Raises:
            ClassicAccountModeError: the master is classic (40084).
            TransportError: no answer; if ``maybe_sent``, list the keys to see whether it
                is gone.
        """
        await self._call(ep.DELETE_UTA_SUBACCOUNT_API_KEY, Any, body=request)

    async def list_uta_subaccount_api_keys(
        self, request: m.ListUTASubaccountAPIKeysRequest
    ) -> m.UTASubaccountAPIKeyPage:
        """
        One page of a sub-account's keys (never with secrets).

        Raises:
            ClassicAccountModeError: the master is classic (40084).
        """
        return await self._call(
            ep.LIST_UTA_SUBACCOUNT_API_KEYS, m.UTASubaccountAPIKeyPage, params=request
        )

    async def iter_uta_subaccount_api_keys(
        self, sub_uid: str, *, page_size: int = 100
    ) -> AsyncIterator[m.UTASubaccountAPIKey]:
        """
        Every key of a sub-account, following the ``cursor`` (stopping as
        `iter_uta_subaccounts` does).
        """

        async def fetch(cursor: str | None) -> _Page[m.UTASubaccountAPIKey]:
            page = await self.list_uta_subaccount_api_keys(
                m.ListUTASubaccountAPIKeysRequest(sub_uid=sub_uid, limit=page_size, cursor=cursor)
            )
            return page.keys, page.has_next, page.cursor

        async for key in _follow(fetch):
            yield key
