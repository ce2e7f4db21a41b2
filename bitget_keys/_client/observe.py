"""
Watching a client's requests from outside: `RequestEvent`, `RequestObserver`.

A client given ``observers=[...]`` hands each of them one frozen `RequestEvent` per
attempt: when the request was asked for and when the scheduler let it go, its round
trip, and what came back. Observers see timings and outcomes only: never a header, a
body, a signature or a secret, and a key's own lane is named by the key's first
characters. An observer runs in the client's task, synchronously, once the answer has
been read and before the scheduler counts the request completed, so it should be quick
(hand slow work to a queue); one that raises is logged and skipped, so watching can
never break a request.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Final, Protocol, TypeVar

import attrs

from bitget_keys._endpoints import Endpoint, EndpointName
from bitget_keys.errors import APIError, ConfigurationError, RateLimitExceededError

__all__ = [
    "NO_WATCH",
    "Observers",
    "RequestEvent",
    "RequestObserver",
    "RequestOutcome",
    "RequestWatch",
    "watch_request",
]

T = TypeVar("T")

_log: Final = logging.getLogger("bitget_keys.client")


class RequestOutcome(enum.StrEnum):
    """How one attempt ended."""

    #: Bitget answered with success.
    OK = "ok"
    #: Bitget answered 429; the scheduler pauses the lane and may send it again.
    THROTTLED = "throttled"
    #: Sent, and it failed: an error answer, no answer, or an answer of the wrong shape.
    ERROR = "error"
    #: Never sent: the wait was too long, the gate stopped it, or it was cancelled.
    NOT_SENT = "not_sent"


@attrs.frozen(kw_only=True)
class RequestEvent:
    """
    One attempt of one request, as an observer sees it.

    Times ending in ``_at`` are the event loop's clock (``loop.time()`` seconds, the
    scheduler's clock); those ending in ``_ms`` are the client's wall clock in epoch
    milliseconds (the one it signs with). An attempt the scheduler sends again after a
    429 is asked for when the 429 arrived.
    """

    endpoint: EndpointName
    #: Whose budget the request drew on: the owning UID, ``"*"`` for IP-scoped
    #: endpoints, or ``"key:"`` and the key's first characters until the UID is known.
    uid: str
    method: str
    path: str
    #: 1 for the first send of a call; each re-send (after a 429, a connection that
    #: never opened, or a 40008) counts one more.
    attempt: int
    outcome: RequestOutcome
    #: The class name of the error raised, or ``None`` for `RequestOutcome.OK`.
    error: str | None
    #: The HTTP status, when an answer arrived.
    status: int | None
    #: Bitget's code (``"00000"`` on success), when the answer had one.
    code: str | None
    asked_at: float
    asked_ms: int
    #: When the scheduler handed the request to the transport; ``None`` if never sent.
    sent_at: float | None
    sent_ms: int | None
    #: When the attempt ended: answered, failed, or given up while waiting.
    ended_at: float
    #: Seconds between asking and sending (until giving up, if never sent).
    wait: float
    #: Seconds from sending to the answer (or the failure); ``None`` if never sent.
    round_trip: float | None


class RequestObserver(Protocol):
    """Anything called with each `RequestEvent` (a function will do)."""

    def __call__(self, event: RequestEvent, /) -> object: ...


def lane_name(lane_uid: str) -> str:
    """A lane as events name it: a key's lane by the key's first characters only."""
    if lane_uid.startswith("key:"):
        return f"key:{lane_uid[4:10]}…"
    return lane_uid


class Observers:
    """A client's observers; each one's first failure is logged with its traceback."""

    __slots__ = ("_failed", "_observers")

    def __init__(self, observers: Iterable[RequestObserver]) -> None:
        given: object = observers
        if callable(given) or not isinstance(given, Iterable):
            msg = f"observers must be a list of callables, such as [print] (got {given!r})"
            raise ConfigurationError(msg)
        self._observers = tuple(observers)
        for observer in self._observers:
            checked: object = observer
            if not callable(checked):
                msg = f"each observer must be callable with a RequestEvent (got {observer!r})"
                raise ConfigurationError(msg)
            if inspect.iscoroutinefunction(observer) or inspect.iscoroutinefunction(
                getattr(observer, "__call__", None)  # noqa: B004 - an object's async __call__
            ):
                msg = (
                    f"observers are called, not awaited: {observer!r} is a coroutine function; "
                    "hand the event to a queue or a task from a plain function instead"
                )
                raise ConfigurationError(msg)
        self._failed: set[int] = set()

    def __bool__(self) -> bool:
        return bool(self._observers)

    def emit(self, event: RequestEvent) -> None:
        """Hand ``event`` to every observer; a failing one is logged, never raised."""
        for index, observer in enumerate(self._observers):
            try:
                observer(event)
            except Exception:  # noqa: BLE001 - whatever an observer raises, the request goes on
                first = index not in self._failed
                self._failed.add(index)
                _log.log(
                    logging.WARNING if first else logging.DEBUG,
                    "request observer %r failed on %s; the request is unaffected",
                    observer,
                    event.endpoint.value,
                    exc_info=first,
                )


def _outcome(exc: BaseException | None) -> tuple[RequestOutcome, int | None, str | None]:
    if exc is None:
        return RequestOutcome.OK, None, None
    if isinstance(exc, APIError):
        throttled = isinstance(exc, RateLimitExceededError)
        outcome = RequestOutcome.THROTTLED if throttled else RequestOutcome.ERROR
        return outcome, exc.http_status, exc.code
    return RequestOutcome.ERROR, None, None


class RequestWatch:
    """
    One call's attempts, as its observers see them: this base watches nothing (a client
    without observers pays no more than these empty calls); `watch_request` makes one
    that does.
    """

    __slots__ = ()

    def asking(self) -> None:
        """The call asks the scheduler for a slot (again, after a re-send it chose)."""

    def answered(self, status: int) -> None:
        """An answer with this HTTP status arrived for the attempt on the wire."""

    def wrap(self, send: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        """``send``, stamped when the scheduler calls it and reported when it ends."""
        return send

    def not_sent(self, exc: BaseException) -> None:
        """The call raised ``exc``: report it if it ended before this ask was sent."""


NO_WATCH: Final = RequestWatch()


def watch_request(
    observers: Observers, endpoint: Endpoint, lane_uid: str, wall_ms: Callable[[], int]
) -> RequestWatch:
    """What stamps one call's attempts for ``observers`` (`NO_WATCH` without any)."""
    if not observers:
        return NO_WATCH
    return _Watching(observers, endpoint, lane_uid, wall_ms)


class _Watching(RequestWatch):
    """
    Stamped where `SendingCore._call` asks for a slot and where the scheduler sends;
    each attempt is handed to the observers as it ends.
    """

    __slots__ = (
        "_asked_at",
        "_asked_ms",
        "_ended_by",
        "_endpoint",
        "_loop",
        "_name",
        "_observers",
        "_pending",
        "_sent_at",
        "_sent_ms",
        "_status",
        "_uid",
        "_wall_ms",
        "attempt",
    )

    def __init__(
        self,
        observers: Observers,
        endpoint: Endpoint,
        lane_uid: str,
        wall_ms: Callable[[], int],
    ) -> None:
        self._observers = observers
        self._endpoint = endpoint
        self._name = EndpointName(endpoint.name)
        self._uid = lane_name(lane_uid)
        self._wall_ms = wall_ms
        self._loop = asyncio.get_running_loop()
        self._asked_at = self._loop.time()
        self._asked_ms = wall_ms()
        #: Whether an ask is open that no event has reported yet.
        self._pending = True
        #: What ended the last attempt sent (a call re-raises it: reported already).
        self._ended_by: BaseException | None = None
        self._sent_at: float | None = None
        self._sent_ms: int | None = None
        self._status: int | None = None
        self.attempt = 0

    def asking(self) -> None:
        self._asked_at = self._loop.time()
        self._asked_ms = self._wall_ms()
        self._pending = True

    def answered(self, status: int) -> None:
        self._status = status

    def wrap(self, send: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        async def watched() -> T:
            self.attempt += 1
            self._pending = False
            self._status = None
            self._sent_at = self._loop.time()
            self._sent_ms = self._wall_ms()
            try:
                value = await send()
            except BaseException as exc:
                self._ended(exc)
                raise
            self._ended(None)
            return value

        return watched

    def not_sent(self, exc: BaseException) -> None:
        if not self._pending or exc is self._ended_by:
            return  # the attempt that raised it was sent, and reported when it ended
        self._pending = False
        self._sent_at = self._sent_ms = None
        self._status = None
        ended_at = self._loop.time()
        self._emit(RequestOutcome.NOT_SENT, type(exc).__name__, None, None, ended_at)

    def _ended(self, exc: BaseException | None) -> None:
        outcome, status, code = _outcome(exc)
        if outcome is RequestOutcome.OK:
            code = "00000"
        ended_at = self._loop.time()
        error = None if exc is None else type(exc).__name__
        self._emit(outcome, error, status or self._status, code, ended_at)
        # A re-send the scheduler makes itself (after a 429) is asked for now.
        self._asked_at, self._asked_ms = ended_at, self._wall_ms()
        self._pending, self._ended_by = True, exc

    def _emit(
        self,
        outcome: RequestOutcome,
        error: str | None,
        status: int | None,
        code: str | None,
        ended_at: float,
    ) -> None:
        sent_at = self._sent_at
        endpoint = self._endpoint
        self._observers.emit(
            RequestEvent(
                endpoint=self._name,
                uid=self._uid,
                method=endpoint.method,
                path=endpoint.path,
                attempt=self.attempt if sent_at is not None else self.attempt + 1,
                outcome=outcome,
                error=error,
                status=status,
                code=code,
                asked_at=self._asked_at,
                asked_ms=self._asked_ms,
                sent_at=sent_at,
                sent_ms=self._sent_ms,
                ended_at=ended_at,
                wait=max(0.0, (ended_at if sent_at is None else sent_at) - self._asked_at),
                round_trip=None if sent_at is None else ended_at - sent_at,
            )
        )
