"""Who calls and when: Bitget's clock and the calling key's account (v2 and v3)."""

from __future__ import annotations

import datetime as dt

import attrs

from bitget_keys.models.common import Permission

__all__ = ["AccountInfo", "ServerTime", "UTAAccountInfo"]


def _is_parent(parent_id: str | None) -> bool:
    # Bitget fills the parent only for a sub-account's key; a master's answer may carry
    # nothing, an empty string or 0 there.
    return parent_id not in (None, "", "0")


@attrs.frozen(kw_only=True)
class ServerTime:
    """Bitget's clock."""

    #: Server time in epoch milliseconds.
    server_time_ms: int

    @property
    def datetime(self) -> dt.datetime:
        """The server time as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.server_time_ms / 1000, tz=dt.UTC)


@attrs.frozen(kw_only=True)
class AccountInfo:
    """Who the calling key belongs to."""

    #: The UID that owns the calling key; Bitget's rate limits count against it.
    user_id: str
    parent_id: str | None = None
    inviter_id: str | None = None
    trader_type: str | None = None
    authorities: tuple[str, ...] = ()
    ips: str | None = None

    @property
    def is_subaccount(self) -> bool:
        """Whether the calling key is a sub-account's (``parent_id`` names its master)."""
        return _is_parent(self.parent_id)


@attrs.frozen(kw_only=True)
class UTAAccountInfo:
    """
    v3 account-info: who owns the calling key, and the key's own whitelist and rights.

    Any key may ask (no permission needed), a sub-account's too, which makes it the way
    to prove a new key works: the answer is its sub-account's UID with ``parent_id``
    naming the master. Bitget's page calls the UID ``uid``, one SDK ``userId``: both
    are read. ``ips`` arrives as one comma-separated string and is split.
    """

    #: The UID that owns the calling key; Bitget's rate limits count against it.
    uid: str
    #: The master's UID when the calling key is a sub-account's.
    parent_id: str | None = None
    inviter_id: str | None = None
    #: The calling key's whitelist.
    ips: tuple[str, ...] = ()
    #: ``read-only`` or ``read-and-write`` (hyphenated, unlike the sub-key ``type``).
    perm_type: str | None = None
    #: The calling key's rights (``uta_mgt``, ``uta_trade``, ``withdraw``, ...).
    permissions: tuple[Permission, ...] = ()
    channel_code: str | None = None
    channel: str | None = None
    regis_time: dt.datetime | None = None

    @property
    def is_subaccount(self) -> bool:
        """Whether the calling key is a sub-account's (``parent_id`` names its master)."""
        return _is_parent(self.parent_id)
