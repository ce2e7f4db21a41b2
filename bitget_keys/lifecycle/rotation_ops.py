"""
What a rotation asks of Bitget besides a create: the shared key list of a sub-account,
the check of a new key (signing with it), and the revocation of an old one.

Many keys of one sub-account rotate at once, and each needs the sub-account's key list
(to count its keys, to find a lost answer's key, to check the rights of a new key):
`SharedList` lets every reader that asks while one read is on its way join the next
read instead of each sending its own, so a sub-account's list lane carries one read
for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Final, Literal

import attrs

from bitget_keys import models as m
from bitget_keys._client import Client
from bitget_keys._secret import Secret
from bitget_keys.errors import AuthenticationError, BitgetKeysError, PermissionDeniedError
from bitget_keys.provision.family import ClassicAPI, UnifiedAPI
from bitget_keys.provision.plan import KeySpec
from bitget_keys.provision.plan_modes import unified_key
from bitget_keys.provision.retrying import read_retrying

__all__ = [
    "NEUTRAL_IP_LIST",
    "NOT_PROPAGATED",
    "PassphraseNotHeldError",
    "RevokeHow",
    "SharedList",
    "VerificationError",
    "expected_rights",
    "is_neutralised",
    "revoke_key",
    "rights_problem",
    "verify_signing",
]

_log: Final = logging.getLogger("bitget_keys.rotate")

RevokeHow = Literal["deleted", "neutralised"]

#: A whitelist no caller can match: TEST-NET-1 is never routed on the internet.
NEUTRAL_IP_LIST: Final = ("192.0.2.1",)
#: Bitget's answer to a key it does not know (yet): a new key has not propagated.
NOT_PROPAGATED: Final = "40006"
#: Bitget's answer to a caller outside the key's whitelist, given after the signature
#: and passphrase were checked: the key works, from the hosts it names.
OUTSIDE_WHITELIST: Final = "40038"


class VerificationError(BitgetKeysError):
    """A new key did not prove itself: wrong owner, wrong rights, or never propagated."""

    def __init__(self, api_key: str, detail: str) -> None:
        super().__init__(api_key, detail)
        self.api_key = api_key
        self.detail = detail

    def __str__(self) -> str:
        return f"key {self.api_key}: {self.detail}"


class PassphraseNotHeldError(BitgetKeysError):
    """A classic key can be neutralised only with its passphrase, which is not held."""

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.api_key = api_key

    def __str__(self) -> str:
        return (
            f"key {self.api_key}: its passphrase is not in the vault, and Bitget has no way "
            "to revoke a classic sub-account key without it: revoke it in Bitget's web UI"
        )


def is_neutralised(key: m.VirtualSubaccountAPIKey) -> bool:
    """Whether a listed classic key has no rights left and an unusable whitelist."""
    return not key.permissions and tuple(key.ip_list) == NEUTRAL_IP_LIST


async def revoke_key(
    api: ClassicAPI | UnifiedAPI, live: m.VirtualSubaccountAPIKey, passphrase: Secret | None
) -> RevokeHow:
    """
    Revoke ``live``: a unified key is deleted (at once); a classic one, which Bitget
    cannot delete, is neutralised: every right removed and its whitelist set to an
    address no one can call from (the whole list is sent, as v2 modify requires).

    Raises:
        PassphraseNotHeldError: a classic key whose passphrase is not held.
    """
    if isinstance(api, UnifiedAPI):
        await api.client.delete_uta_subaccount_api_key(
            m.DeleteUTASubaccountAPIKeyRequest(api_key=live.api_key)
        )
        return "deleted"
    if passphrase is None:
        raise PassphraseNotHeldError(live.api_key)
    await api.client.modify_virtual_subaccount_api_key(
        m.ModifyVirtualSubaccountAPIKeyRequest(
            subaccount_uid=live.subaccount_uid,
            api_key=live.api_key,
            passphrase=passphrase,
            label=live.label,
            ip_list=NEUTRAL_IP_LIST,
            permissions=(),
        )
    )
    return "neutralised"


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


async def verify_signing(
    client: Client,
    api_key: str,
    family: str,
    subaccount_uid: str,
    *,
    within: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] | None = None,
) -> str:
    """
    Sign a request with the new key ``api_key`` (``client`` holds it): its account info must come
    back as its sub-account's. A key Bitget does not know yet (40006: not propagated)
    is asked again, backing off, for up to ``within`` seconds. Returns a note for the
    result: empty, or that this host is outside the key's whitelist (40038, which
    Bitget answers only after checking the signature and passphrase, so the key works).

    Raises:
        VerificationError: it never propagated, or it belongs to another account.
    """
    now = clock or asyncio.get_running_loop().time
    deadline = now() + within
    pause = 0.25
    while True:
        try:
            if family == "v3":
                info = await read_retrying(client.account_info_v3)
                owner = info.uid
            else:
                answer = await read_retrying(client.account_info)
                owner = answer.user_id
        except AuthenticationError as exc:
            if exc.code != NOT_PROPAGATED:
                raise
            if now() + pause > deadline:
                detail = f"Bitget still does not know it after {within:g} s (40006)"
                raise VerificationError(api_key, detail) from exc
            _log.debug("key %s not propagated yet; asking again in %.2f s", api_key, pause)
            await sleep(pause)
            pause = min(pause * 2, 4.0)
            continue
        except PermissionDeniedError as exc:
            if exc.code == OUTSIDE_WHITELIST:
                return "whitelist excludes this host"
            raise
        if str(owner) != subaccount_uid:
            detail = f"signs as UID {owner}, not as its sub-account {subaccount_uid}"
            raise VerificationError(api_key, detail)
        return ""
