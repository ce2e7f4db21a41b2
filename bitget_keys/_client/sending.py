"""
`SendingCore`: one endpoint call, from its arguments to a typed answer.

Every signed request is stamped with Bitget's clock: the offset is measured from the
public time endpoint (round-trip midpoint) before the first signed request, refreshed
every ``clock_resync_interval`` seconds, and re-measured once when Bitget answers 40008.

Every request goes through the rate-limit scheduler, keyed by the UID that owns the
calling key, so every client of a UID shares one budget. Until a key's UID is known,
the calls that tell it are paced under the key; once it is, the scheduler is told the
key's lane is the UID's (``alias``), so the key's past requests count in the UID's
budget. The scheduler re-queues a throttled request (429); the client itself re-sends
only what certainly did not take effect: a connection that could not be opened, and a
40008 after resyncing.

A 40084 or 40085 (the account's mode does not serve the endpoint's family) is kept as
the UID's account mode and raised: choosing the other family is the caller's business.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import attrs
import yarl

from bitget_keys import _endpoints as ep
from bitget_keys import models as m
from bitget_keys._client.call_pacing import run_pacing
from bitget_keys._client.core import ClientCore
from bitget_keys._client.observe import NO_WATCH, RequestWatch, watch_request
from bitget_keys._client.pacing import put_on_wire, wait_for_slot
from bitget_keys._serde import decode, encode_body, query_params
from bitget_keys._signing import build_query, signed_headers
from bitget_keys.errors import (
    AccountModeError,
    APIError,
    ClockSkewError,
    PermissionDeniedError,
    ResponseDecodeError,
    TransportError,
    UnifiedAccountModeError,
)

__all__ = ["SendingCore"]

T = TypeVar("T")

_log: Final = logging.getLogger("bitget_keys.client")

#: The endpoints that tell the calling key's UID (v2 for classic keys, v3 for unified).
_UID_SOURCES: Final = frozenset({ep.ACCOUNT_INFO, ep.ACCOUNT_SETTINGS, ep.ACCOUNT_INFO_V3})


def _key_lane(api_key: str) -> str:
    """The lane a key's UID-telling calls are paced under until its UID is known."""
    return f"key:{api_key}"


@attrs.define
class _Retries:
    """What one call has re-sent so far."""

    connect: int = 0
    resynced: bool = False


def _log_answer(
    endpoint: ep.Endpoint, status: int, code: str | None, attempt_started: float
) -> None:
    _log.debug(
        "%s %s -> HTTP %d, code %s, %.1f ms",
        endpoint.method,
        endpoint.path,
        status,
        code,
        (time.monotonic() - attempt_started) * 1000,
    )


class SendingCore(ClientCore):
    """
    `_call`, which every endpoint method uses, and what it needs of Bitget first: the
    calling key's UID and Bitget's clock (with the two endpoints that tell them).

    Every endpoint method raises what `_call` raises (see `Client`); its docstring
    names only the errors particular to its endpoint.
    """

    __slots__ = ()

    # -- identity and clock ----------------------------------------------------------

    async def uid(self) -> str:
        """
        The UID that owns the calling key, from the credentials or learned once.

        A classic key learns it from account-info (one request). A unified key is
        refused there (40085, carried nothing out) and learns it from the v3 settings
        instead: two requests, and the account's mode is then known without another.

        Raises:
            APIError: neither endpoint told the UID.
            TransportError: no answer arrived.
        """
        uid = self._uid
        if uid is None:
            async with self._uid_lock:
                uid = self._uid
                if uid is None:
                    uid = await self._learn_uid()
                    self._learned_uid(uid)
        return uid

    def _learned_uid(self, uid: str) -> None:
        """
        Keep the UID the key's account-info or settings told, and tell the scheduler that
        the key's lane is the UID's: a request paced under the key and the next one under
        the UID are one account's, and Bitget counts them against one budget.
        """
        if self._uid is None:
            self._uid = uid
            alias = getattr(self.scheduler, "alias", None)
            if alias is not None:  # optional in the `Scheduler` protocol
                alias(_key_lane(self._credentials.api_key), uid)

    async def _learn_uid(self) -> str:
        try:
            return (await self.account_info()).user_id
        except UnifiedAccountModeError:
            _log.debug("account-info refused a unified key (40085); asking the v3 settings")
        try:
            settings = await self.account_settings()
        except AccountModeError:
            raise
        except PermissionDeniedError:
            # The settings need the UTA-management right, which a sub-account's key may
            # lack; the v3 account-info needs none (one more request, the mode unknown).
            _log.debug("the v3 settings refused the key; asking the v3 account-info")
            return (await self.account_info_v3()).uid
        if settings.uid is None:
            raise ResponseDecodeError(ep.ACCOUNT_SETTINGS.path, ("data.uid: missing",))
        return settings.uid

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

    async def sync_clock(self) -> int:
        """
        Measure Bitget's clock now; return the offset in ms (server minus local).

        Raises:
            APIError: the time endpoint answered with an error.
            TransportError: no answer arrived.
        """
        clock = self.server_clock
        before = clock.wall_ms()
        server = await self.server_time()
        after = clock.wall_ms()
        clock.offset_ms = server.server_time_ms - (before + after) // 2
        clock.synced_at = time.monotonic()
        _log.debug("clock offset %+d ms (round trip %d ms)", clock.offset_ms, after - before)
        return clock.offset_ms

    async def _ensure_clock(self, *, stale_before: float | None = None) -> None:
        if not self._config.sync_clock:
            return
        clock = self.server_clock
        asked = time.monotonic()
        async with clock.lock:
            failed = clock.failed
            if failed is not None and failed[0] >= asked:
                # Measured while this call waited for the lock, and no answer came: the
                # clients sharing the clock would otherwise each wait a whole timeout
                # in turn, and a run of many accounts would stay silent for minutes.
                raise attrs.evolve(failed[1])
            synced_at = clock.synced_at
            fresh = (
                synced_at is not None
                and time.monotonic() - synced_at < self._config.clock_resync_interval
                and (stale_before is None or synced_at > stale_before)
            )
            if not fresh:
                try:
                    await self.sync_clock()
                except TransportError as exc:
                    clock.failed = (time.monotonic(), attrs.evolve(exc))
                    raise

    async def server_time(self) -> m.ServerTime:
        """
        Bitget's clock (public, unsigned).
        """
        return await self._call(ep.SERVER_TIME, m.ServerTime)

    async def account_info(self) -> m.AccountInfo:
        """
        Who owns the calling key (``user_id`` is its UID, kept if the client lacked it).

        Raises:
            UnifiedAccountModeError: the master is in unified-account mode.
        """
        info = await self._call(ep.ACCOUNT_INFO, m.AccountInfo)
        self._learned_uid(info.user_id)
        return info

    async def account_settings(self) -> m.AccountSettings:
        """
        The v3 settings of the calling key's account, which tell its mode.

        The mode answered is kept for the UID (a transitional one is not).

        Raises:
            ClassicAccountModeError: the account is classic (40084); that is kept too.
        """
        settings = await self._call(ep.ACCOUNT_SETTINGS, m.AccountSettings)
        if settings.uid is not None:
            self._learned_uid(settings.uid)
        uid = self._uid or settings.uid
        if uid is not None:
            self.account_modes.record(uid, settings.account_mode)
        return settings

    # -- sending ---------------------------------------------------------------------

    def _headers(self, endpoint: ep.Endpoint, query: str, body: bytes) -> dict[str, str]:
        if not endpoint.signed:
            return {"locale": self._config.locale}
        # Stamped now, right before sending: a stamp taken before a wait can expire.
        return signed_headers(
            self._credentials,
            timestamp_ms=self.server_clock.now_ms(),
            method=endpoint.method,
            path=endpoint.path,
            query=query,
            body=body,
            locale=self._config.locale,
        )

    async def _lane_uid(self, endpoint: ep.Endpoint) -> str:
        """The UID whose budget a request draws on (Bitget counts per owning UID)."""
        if endpoint.scope == "ip":
            return "*"
        if self._uid is not None:
            return self._uid
        if endpoint in _UID_SOURCES:
            # Until the UID is known the calls that tell it are paced per key.
            return _key_lane(self._credentials.api_key)
        return await self.uid()

    async def _send_once(
        self,
        endpoint: ep.Endpoint,
        response_type: type[T],
        *,
        url: yarl.URL,
        query: str,
        payload: bytes | None,
        lane_uid: str,
        watch: RequestWatch = NO_WATCH,
    ) -> T:
        """Sign and send once; the scheduler calls this the instant the slot is stamped."""
        # Stamped now, so the timestamp is fresh however long the wait for the slot was.
        headers = self._headers(endpoint, query, payload or b"")
        started = time.monotonic()
        sent_ms = self._clock_ms()
        request_time: int | None = None
        response = await put_on_wire(
            self._gate,
            endpoint,
            lambda: self._transport.send(
                endpoint.method, url, headers, payload, endpoint=endpoint.path
            ),
        )
        watch.answered(response.status)
        try:
            value, request_time = decode(
                response.body, response_type, http_status=response.status, endpoint=endpoint.path
            )
        except APIError as exc:
            _log_answer(endpoint, response.status, exc.code, started)
            request_time = exc.request_time
            raise
        else:
            _log_answer(endpoint, response.status, "00000", started)
            return value
        finally:
            if request_time is not None:
                self.scheduler.observe(
                    lane_uid, endpoint, sent_ms=sent_ms, request_time_ms=request_time
                )

    async def _call(
        self,
        endpoint: ep.Endpoint,
        response_type: type[T],
        *,
        params: object | None = None,
        body: object | None = None,
    ) -> T:
        """Call ``endpoint`` and structure its data as ``response_type``."""
        self._ensure_usable()
        query = build_query(query_params(params)) if params is not None else ""
        # Serialised once: exactly these bytes are signed and sent.
        payload = encode_body(body) if body is not None else None
        url = yarl.URL(
            self._base_url + endpoint.path + (f"?{query}" if query else ""), encoded=True
        )
        lane_uid = await self._lane_uid(endpoint)
        watch = watch_request(self._observers, endpoint, lane_uid, self._clock_ms)
        send_once: Callable[[], Awaitable[T]] = functools.partial(
            self._send_once,
            endpoint,
            response_type,
            url=url,
            query=query,
            payload=payload,
            lane_uid=lane_uid,
            watch=watch,
        )
        # Read once: a deadline stays where it was however often the call is re-sent.
        paced = run_pacing(self._flow, self._priority, self._config.max_rate_limit_wait)
        send_once = watch.wrap(send_once)
        retries = _Retries()
        while True:
            if endpoint.signed:
                await self._ensure_clock()
            # After the clock check: a resync triggered by this attempt's 40008 must be
            # newer than the offset this attempt was signed with.
            attempt_started = time.monotonic()
            watch.asking()
            try:
                return await wait_for_slot(
                    self._gate,
                    endpoint,
                    lambda: self.scheduler.run(
                        lane_uid,
                        endpoint,
                        send_once,
                        max_wait=paced.max_wait,
                        flow=paced.flow,
                        priority=paced.priority,
                        deadline=paced.deadline,
                    ),
                )
            except AccountModeError as exc:
                # Refused, so carried out nothing: the caller may send it through the
                # other family, which the kept mode now names. Never re-sent here.
                if self._uid is not None:
                    self.account_modes.refused(self._uid, exc)
                raise
            except TransportError as exc:
                _log.debug("%s %s: %s", endpoint.method, endpoint.path, exc)
                # Only a connection that never opened proves nothing was sent.
                if exc.maybe_sent or retries.connect >= self._config.max_connect_retries:
                    raise
                retries.connect += 1
                await asyncio.sleep(self._config.connect_retry_backoff * retries.connect)
            except ClockSkewError as exc:
                if exc.code != "40008" or retries.resynced or not self._config.sync_clock:
                    raise
                retries.resynced = True
                _log.debug("%s %s -> 40008, resyncing the clock", endpoint.method, endpoint.path)
                await self._ensure_clock(stale_before=attempt_started)
            except BaseException as exc:
                watch.not_sent(exc)  # reported already if it was sent
                raise
