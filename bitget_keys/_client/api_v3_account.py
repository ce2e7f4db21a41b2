"""
Which API family serves the calling key's account: its mode, learned once per UID; and
the v3 account-info, what any unified key (a sub-account's too) may ask of itself.

The settings endpoint itself (`SendingCore.account_settings`) sits beside account-info,
since a unified key learns its UID there.
"""

from __future__ import annotations

from bitget_keys import _endpoints as ep
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

    async def account_info_v3(self) -> m.UTAAccountInfo:
        """
        Who owns the calling key, and the key's own whitelist, type and rights (v3).

        No permission is needed, so a sub-account's key may ask too: its answer is the
        sub-account's ``uid`` with ``parent_id`` naming the master, which proves the key,
        its passphrase and its secret work. The ``uid`` is kept if the client lacked it.

        Raises:
            ClassicAccountModeError: the account is classic (40084); `account_info` is
                the v2 equivalent.
        """
        info = await self._call(ep.ACCOUNT_INFO_V3, m.UTAAccountInfo)
        self._learned_uid(info.uid)
        return info

    def cached_account_mode(self) -> m.AccountMode | None:
        """The mode kept for this client's UID, without sending anything (``None``: unknown)."""
        return self.account_modes.get(self._uid) if self._uid is not None else None

    def forget_account_mode(self) -> None:
        """Drop the mode kept for this client's UID, so the next `account_mode` asks Bitget."""
        if self._uid is not None:
            self.account_modes.forget(self._uid)
