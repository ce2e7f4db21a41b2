"""
Which API family serves the calling key's account: its mode, learned once per UID.

The settings endpoint itself (`SendingCore.account_settings`) sits beside the v2 and v3
account-info, since a unified key learns its UID there (a key that may not read the
settings, from the v3 account-info).
"""

from __future__ import annotations

from bitget_keys import models as m
from bitget_keys._client.sending import SendingCore
from bitget_keys.errors import ClassicAccountModeError

__all__ = ["V3AccountEndpoints"]


class V3AccountEndpoints(SendingCore):
    """The calling key's account mode, kept in `account_modes` for every client of the UID."""

    __slots__ = ()

    async def account_mode(self) -> m.AccountMode:
        """
        The account's mode: ``classic`` is served by v2, ``unified`` and ``hybrid`` by v3.

        Answered from `account_modes` when any client of the UID has learned it (from
        the settings, or from a 40084/40085 refusal); otherwise one settings request,
        plus what learning the UID costs (see `uid`). A transitional mode
        (``upgrading``, ``switching``) is returned but not kept: ask again in a minute.

        Raises:
            APIError: the settings endpoint failed otherwise (for example a key without
                the UTA-management read permission).
        """
        uid = await self.uid()
        known = self.account_modes.get(uid)
        if known is not None:
            return known
        try:
            return (await self.account_settings()).account_mode
        except ClassicAccountModeError:
            # `_call` has kept it already.
            return m.AccountMode.CLASSIC

    def cached_account_mode(self) -> m.AccountMode | None:
        """The mode kept for this client's UID, without sending anything (``None``: unknown)."""
        return self.account_modes.get(self._uid) if self._uid is not None else None

    def forget_account_mode(self) -> None:
        """Drop the mode kept for this client's UID, so the next `account_mode` asks Bitget."""
        if self._uid is not None:
            self.account_modes.forget(self._uid)
