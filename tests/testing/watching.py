"""An emulator that records which address each request came from, and with which key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bitget_keys.testing import Emulator
from bitget_keys.testing._wire import Answer


class WatchingEmulator(Emulator):
    """`Emulator` noting (client IP, ACCESS-KEY) for every request it is given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[str, str | None]] = []

    async def process(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        client_ip: str,
    ) -> tuple[Answer | None, bool]:
        self.seen.append((client_ip, headers.get("ACCESS-KEY")))
        return await super().process(
            method=method, path=path, query=query, headers=headers, body=body, client_ip=client_ip
        )

    def ips_by_key(self) -> dict[str | None, set[str]]:
        """Every address each API key (``None``: unsigned requests) was seen from."""
        found: dict[str | None, set[str]] = {}
        for ip, key in self.seen:
            found.setdefault(key, set()).add(ip)
        return found
