"""
`Client(observers=...)`: one `RequestEvent` per attempt, against the emulator over
127.0.0.1 (the real aiohttp stack): times, round trips and outcomes, re-sends, requests
never sent, observers that fail, and nothing secret in what they are shown.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket

import pytest

from bitget_keys import (
    Client,
    ClientConfig,
    Credentials,
    EndpointName,
    RateLimitScheduler,
    RequestEvent,
    RequestObserver,
    RequestOutcome,
    Scheduler,
)
from bitget_keys.errors import (
    ConfigurationError,
    RateLimitExceededError,
    RateLimitWaitTooLongError,
    TransportError,
)
from bitget_keys.testing import Emulator, EmulatorAccount, Faults, Limits, Unpaced

MASTER = EmulatorAccount(
    uid="1000000001",
    api_key="bg_observed_master",
    secret_key="observed-secret-0001",
    passphrase="ObservedPass1",
)
LATENCY = 0.05


def observed(
    emulator: Emulator,
    scheduler: Scheduler,
    observers: list[RequestObserver],
    config: ClientConfig | None = None,
) -> Client:
    return Client(
        MASTER.credentials,
        base_url=emulator.base_url,
        config=config,
        scheduler=scheduler,
        observers=observers,
    )


async def test_each_request_is_seen_with_its_times_round_trip_and_outcome() -> None:
    """The clock sync and the call each give one event: timed, answered, on their lane."""
    events: list[RequestEvent] = []
    loop = asyncio.get_running_loop()
    faults = Faults(latency=LATENCY)
    async with (
        Emulator([MASTER], limits=Limits(per_uid=False), faults=faults) as emulator,
        Client(
            MASTER.credentials,
            base_url=emulator.base_url,
            scheduler=RateLimitScheduler(),
            observers=[events.append],
        ) as client,
    ):
        before = loop.time()
        info = await client.account_info()
        after = loop.time()
    assert info.user_id == MASTER.uid
    assert [e.endpoint for e in events] == [EndpointName.SERVER_TIME, EndpointName.ACCOUNT_INFO]
    clock, call = events
    assert clock.uid == "*"  # the time endpoint is counted per IP
    assert (call.uid, call.method, call.path) == (MASTER.uid, "GET", "/api/v2/spot/account/info")
    for event in events:
        assert (event.outcome, event.error, event.status, event.attempt) == (
            RequestOutcome.OK,
            None,
            200,
            1,
        )
        assert event.code == "00000"
        assert event.sent_at is not None
        assert event.sent_ms is not None
        assert event.round_trip is not None
        assert before <= event.asked_at <= event.sent_at <= event.ended_at <= after
        assert event.wait == pytest.approx(event.sent_at - event.asked_at)
        assert event.round_trip == pytest.approx(event.ended_at - event.sent_at)
        # The emulator holds each request LATENCY before answering it.
        assert event.round_trip >= LATENCY * 0.9
        assert event.sent_ms >= event.asked_ms
    # The call was asked for once the clock was measured, so after its answer.
    assert call.asked_at >= clock.ended_at


async def test_a_throttled_request_is_seen_once_per_attempt() -> None:
    """Each 429 is an event of its own; the error raised at the end is not reported twice."""
    events: list[RequestEvent] = []
    async with (
        Emulator([MASTER]) as emulator,
        observed(
            emulator, Unpaced(retries=2), [events.append], ClientConfig(sync_clock=False)
        ) as client,
    ):
        # account-info allows 1 request per second per UID: the second is throttled
        # on every attempt, as this scheduler re-sends at once.
        results = await asyncio.gather(
            client.account_info(), client.account_info(), return_exceptions=True
        )
    assert sum(isinstance(r, RateLimitExceededError) for r in results) == 1
    ok = [e for e in events if e.outcome is RequestOutcome.OK]
    throttled = [e for e in events if e.outcome is RequestOutcome.THROTTLED]
    assert len(ok) == 1
    assert len(events) == 4
    assert [e.attempt for e in throttled] == [1, 2, 3]
    assert {(e.status, e.error) for e in throttled} == {(429, "RateLimitExceededError")}
    # A re-send the scheduler makes is asked for when the 429 before it arrived.
    for earlier, later in itertools.pairwise(throttled):
        assert later.asked_at == earlier.ended_at


async def test_a_request_never_sent_is_seen_as_not_sent() -> None:
    """A slot too far off: the request fails at once, and its event says it never left."""
    events: list[RequestEvent] = []
    async with (
        Emulator([MASTER]) as emulator,
        observed(
            emulator,
            RateLimitScheduler(),
            [events.append],
            ClientConfig(sync_clock=False, max_rate_limit_wait=0.05),
        ) as client,
    ):
        results = await asyncio.gather(
            client.account_info(), client.account_info(), return_exceptions=True
        )
    assert sum(isinstance(r, RateLimitWaitTooLongError) for r in results) == 1
    sent, unsent = sorted(events, key=lambda e: e.outcome is RequestOutcome.NOT_SENT)
    assert sent.outcome is RequestOutcome.OK
    assert unsent.outcome is RequestOutcome.NOT_SENT
    assert unsent.error == "RateLimitWaitTooLongError"
    assert (unsent.sent_at, unsent.sent_ms, unsent.round_trip, unsent.status) == (
        None,
        None,
        None,
        None,
    )
    assert unsent.attempt == 1
    assert unsent.wait == pytest.approx(unsent.ended_at - unsent.asked_at)


async def test_a_connection_never_opened_is_seen_per_attempt() -> None:
    """The client re-sends what never left; each attempt is an error event of its own."""
    events: list[RequestEvent] = []
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: every connection is refused
    config = ClientConfig(sync_clock=False, max_connect_retries=1, connect_retry_backoff=0.001)
    async with Client(
        MASTER.credentials,
        base_url=f"http://127.0.0.1:{port}",
        config=config,
        scheduler=Unpaced(),
        observers=[events.append],
    ) as client:
        with pytest.raises(TransportError) as raised:
            await client.account_info()
    assert not raised.value.maybe_sent
    assert [(e.attempt, e.outcome, e.status, e.code) for e in events] == [
        (1, RequestOutcome.ERROR, None, None),
        (2, RequestOutcome.ERROR, None, None),
    ]
    assert {e.error for e in events} == {type(raised.value).__name__}
    assert all(e.round_trip is not None for e in events)
    assert events[1].asked_at >= events[0].ended_at


async def test_an_observer_that_raises_breaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A failing observer is logged once with its traceback; requests and others go on."""
    seen: list[RequestEvent] = []

    def broken(event: RequestEvent) -> None:
        msg = f"observer bug on {event.endpoint}"
        raise ValueError(msg)

    async with (
        Emulator([MASTER], limits=Limits(per_uid=False)) as emulator,
        observed(
            emulator, Unpaced(), [broken, seen.append], ClientConfig(sync_clock=False)
        ) as client,
    ):
        first = await client.account_info()
        second = await client.list_virtual_subaccounts()
    assert first.user_id == MASTER.uid
    assert second.subaccounts == ()
    assert len(seen) == 2
    failures = [r for r in caplog.records if "request observer" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.WARNING, logging.DEBUG]
    assert failures[0].exc_info is not None
    assert "the request is unaffected" in failures[0].getMessage()


async def test_events_show_no_secret_and_mask_a_keys_lane() -> None:
    """Until its UID is known a key's calls are named by the key's first characters."""
    events: list[RequestEvent] = []
    credentials = Credentials(
        MASTER.api_key, MASTER.secret_key.reveal(), MASTER.passphrase.reveal()
    )
    async with (
        Emulator([MASTER], limits=Limits(per_uid=False)) as emulator,
        Client(
            credentials,
            base_url=emulator.base_url,
            scheduler=RateLimitScheduler(),
            observers=[events.append],
        ) as client,
    ):
        await client.list_virtual_subaccounts()  # learns the UID first
    lanes = [(e.endpoint, e.uid) for e in events]
    assert lanes == [
        (EndpointName.SERVER_TIME, "*"),
        (EndpointName.ACCOUNT_INFO, "key:bg_obs…"),
        (EndpointName.LIST_VIRTUAL_SUBACCOUNTS, MASTER.uid),
    ]
    shown = "\n".join(repr(event) for event in events)
    for secret in (MASTER.api_key, MASTER.secret_key.reveal(), MASTER.passphrase.reveal()):
        assert secret not in shown
    assert "ACCESS-SIGN" not in shown
    assert "ACCESS-KEY" not in shown


def test_an_event_is_frozen() -> None:
    event = RequestEvent(
        endpoint=EndpointName.ACCOUNT_INFO,
        uid="1",
        method="GET",
        path="/p",
        attempt=1,
        outcome=RequestOutcome.OK,
        error=None,
        status=200,
        code="00000",
        asked_at=0.0,
        asked_ms=0,
        sent_at=0.0,
        sent_ms=0,
        ended_at=0.0,
        wait=0.0,
        round_trip=0.0,
    )
    with pytest.raises(AttributeError):
        event.attempt = 2  # type: ignore[misc]


class _AsyncCall:
    async def __call__(self, event: RequestEvent) -> None:
        del event


async def _async_observer(event: RequestEvent) -> None:
    del event


@pytest.mark.parametrize(
    ("observers", "problem"),
    [
        (None, "observers must be a list of callables"),
        (print, "observers must be a list of callables"),
        ([1], "each observer must be callable"),
        ([_async_observer], "observers are called, not awaited"),
        ([_AsyncCall()], "observers are called, not awaited"),
    ],
)
def test_observers_that_cannot_work_are_refused_when_the_client_is_made(
    observers: object, problem: str
) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        Client(MASTER.credentials, observers=observers)  # type: ignore[arg-type]
