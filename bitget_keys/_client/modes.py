"""
What each master account's mode is, as far as this process has learned it.

A classic master's keys are served by the v2 endpoints, a unified or hybrid one's by v3
(`AccountMode.family`). Learning it costs a request, and a refusal (40084 or 40085)
tells it for free, so every client of a UID shares one `AccountModes`: by default the
running loop's (`shared_account_modes`), as clients share the loop's scheduler.

Transitional modes (``upgrading``, ``switching``) last about a minute and say nothing
about which family will answer afterwards, so they are never kept.
"""

from __future__ import annotations

import asyncio
import weakref

from bitget_keys import models as m
from bitget_keys.errors import AccountModeError, ClassicAccountModeError, UnifiedAccountModeError

__all__ = ["AccountModes", "shared_account_modes"]


class AccountModes:
    """The known mode of each UID; what `Client.account_mode` reads and keeps up to date."""

    __slots__ = ("_modes",)

    def __init__(self) -> None:
        self._modes: dict[str, m.AccountMode] = {}

    def __repr__(self) -> str:
        return f"<AccountModes of {len(self._modes)} UID(s)>"

    def get(self, uid: str) -> m.AccountMode | None:
        """The mode last learned for ``uid``, or ``None`` when it must be asked."""
        return self._modes.get(uid)

    def record(self, uid: str, mode: m.AccountMode) -> None:
        """
        Keep ``mode`` for ``uid``; a transitional mode drops what was kept instead, since
        the account is about to change family.
        """
        if mode.family is None:
            self._modes.pop(uid, None)
        else:
            self._modes[uid] = mode

    def refused(self, uid: str, error: AccountModeError) -> None:
        """
        Learn from a 40084 or 40085: the account is classic, or it is served by v3.

        A 40085 cannot tell unified from hybrid, so a hybrid mode already learned from
        the settings endpoint is kept.
        """
        if isinstance(error, ClassicAccountModeError):
            self._modes[uid] = m.AccountMode.CLASSIC
        elif (
            isinstance(error, UnifiedAccountModeError)
            and self._modes.get(uid) is not m.AccountMode.HYBRID
        ):
            self._modes[uid] = m.AccountMode.UNIFIED

    def forget(self, uid: str) -> None:
        """Drop what is known of ``uid`` (after switching its mode, for example)."""
        self._modes.pop(uid, None)


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AccountModes] = (
    weakref.WeakKeyDictionary()
)


def shared_account_modes() -> AccountModes:
    """The running loop's `AccountModes`, shared by every client that was not given one."""
    loop = asyncio.get_running_loop()
    modes = _SHARED.get(loop)
    if modes is None:
        modes = _SHARED[loop] = AccountModes()
    return modes
