"""
What a rotation reads: the shared key list of a sub-account, and whether a new key is
listed with the plan's rights and whitelist. (Signing with a new key and revoking an
old one are `bitget_keys.provision.key_ops`'s.)

Many keys of one sub-account rotate at once, and each needs the sub-account's key list
(to count its keys, to find a lost answer's key, to check the rights of a new key):
`SharedList` lets every reader that asks while one read is on its way join the next
read instead of each sending its own, so a sub-account's list lane carries one read
for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

import attrs

from bitget_keys import models as m
from bitget_keys.provision.plan import KeySpec
from bitget_keys.provision.plan_modes import unified_key
from bitget_keys.provision.retrying import read_retrying

__all__ = ["SharedList", "expected_rights", "rights_problem"]


def expected_rights(family: str, key: KeySpec) -> tuple[frozenset[str], frozenset[str]]:
    """The permissions and whitelist a key made for ``key`` is listed with."""
    if family == "v3":
        settings = unified_key(key)
        return frozenset(map(str, settings.permissions)), frozenset(settings.ips)
    return frozenset(map(str, key.permissions)), frozenset(key.ip_list)


def rights_problem(family: str, key: KeySpec, live: m.VirtualSubaccountAPIKey) -> str | None:
    """How a listed key's rights or whitelist differ from the plan's; ``None``: they don't."""
    permissions, ips = expected_rights(family, key)
    found = frozenset(map(str, live.permissions)), frozenset(live.ip_list)
    if found == (permissions, ips):
        return None
    return (
        f"listed with permissions {sorted(found[0])} and whitelist {sorted(found[1])}, "
        f"the plan says {sorted(permissions)} and {sorted(ips)}"
    )


@attrs.define
class _Waiting:
    future: asyncio.Future[tuple[m.VirtualSubaccountAPIKey, ...]]


class SharedList:
    """
    One sub-account's key list, read once for every reader waiting for it.

    A reader gets a list read that *started after it asked*, so a reader that just
    created a key sees it; readers asking while a read is on its way share the next.
    A read also waits while creates of the sub-account are on their way (`creating`):
    the rotations of one sub-account then check their new keys with one read.
    """

    def __init__(
        self, read: Callable[[], Awaitable[tuple[m.VirtualSubaccountAPIKey, ...]]]
    ) -> None:
        self._read = read
        self._next: _Waiting | None = None
        self._driver: asyncio.Task[None] | None = None
        self._creating = 0
        self._quiet: asyncio.Event | None = None
        #: How many reads were sent (for tests and the benchmark's count).
        self.reads = 0

    def _event(self) -> asyncio.Event:
        if self._quiet is None:
            self._quiet = asyncio.Event()
            self._quiet.set()
        return self._quiet

    @contextlib.contextmanager
    def creating(self) -> Iterator[None]:
        """Around a create of this sub-account's: reads wait until it is answered."""
        self._creating += 1
        self._event().clear()
        try:
            yield
        finally:
            self._creating -= 1
            if not self._creating:
                self._event().set()

    async def read(self) -> tuple[m.VirtualSubaccountAPIKey, ...]:
        if self._next is None:
            self._next = _Waiting(asyncio.get_running_loop().create_future())
        waiting = self._next
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive())
        return await asyncio.shield(waiting.future)

    async def _drive(self) -> None:
        while self._next is not None:
            await self._event().wait()
            waiting, self._next = self._next, None
            self.reads += 1
            try:
                keys = await read_retrying(self._read)
            except BaseException as exc:
                waiting.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                waiting.future.set_result(keys)
