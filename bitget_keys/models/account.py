"""Who calls and when: Bitget's clock and the calling key's account."""

from __future__ import annotations

import datetime as dt

import attrs

__all__ = ["AccountInfo", "ServerTime"]


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
