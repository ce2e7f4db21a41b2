"""
`bitget_keys.metrics`: a scheduler's statistics and its clients' requests as Prometheus
series, read from real requests to the emulator over 127.0.0.1; both schedulers; a
scrape from another thread; the registry of its own; the extra named when missing.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import sys

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from bitget_keys import Client, ClientConfig, RateLimitScheduler, RequestObserver, Scheduler
from bitget_keys.metrics import RequestMetrics, SchedulerMetrics
from bitget_keys.redis_limits import RedisRateLimitScheduler
from bitget_keys.testing import Emulator, EmulatorAccount, Limits, Unpaced
from bitget_keys.testing._redis_server import RedisServer

MASTER = EmulatorAccount(
    uid="1000000001",
    api_key="bg_metrics_lane",
    secret_key="metrics-lane-secret",
    passphrase="MetricsLane1",
)
NO_SYNC = ClientConfig(sync_clock=False)
ENDPOINT = {"egress": "default", "endpoint": "account_info"}


def value(text: str, name: str, **labels: str) -> float | None:
    """The sample ``name`` with exactly these labels, if the exposition has it."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[1] or ""))
        if found == labels:
            return float(match[2])
    return None


def client_of(emulator: Emulator, scheduler: Scheduler, observer: RequestObserver) -> Client:
    return Client(
        MASTER.credentials,
        base_url=emulator.base_url,
        config=NO_SYNC,
        scheduler=scheduler,
        observers=[observer],
    )


def scrape(metrics: SchedulerMetrics) -> str:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return body.decode()


async def wait_for(condition: object, what: str) -> None:
    """Let the loop run until ``condition()`` holds (bounded, never a fixed sleep)."""
    assert callable(condition)
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"never: {what}")


async def test_queue_depth_in_flight_and_requests_per_lane() -> None:
    """Three calls on a 1/s lane: two wait, and the scrape says so; then all are counted."""
    scheduler = RateLimitScheduler()
    metrics = SchedulerMetrics(scheduler)
    async with (
        Emulator([MASTER]) as emulator,
        client_of(emulator, scheduler, metrics.observer) as client,
    ):
        calls = [asyncio.create_task(client.account_info()) for _ in range(3)]

        def two_waiting() -> bool:
            lane = scheduler.statistics().lane(MASTER.uid, "account_info")
            return lane is not None and lane.queued == 2

        await wait_for(two_waiting, "two calls queued")
        text = scrape(metrics)
        lane = ENDPOINT | {"uid": MASTER.uid}
        assert value(text, "bitget_keys_lane_queued", **lane) == 2
        assert value(text, "bitget_keys_lane_dispatched_total", **lane) == 1
        assert value(text, "bitget_keys_lane_margin", **lane) == pytest.approx(0.05)
        assert value(text, "bitget_keys_lane_interval_seconds", **lane) == pytest.approx(1.05)
        assert value(text, "bitget_keys_lanes", egress="default") == 1
        await asyncio.gather(*calls)
        text = scrape(metrics)
    assert value(text, "bitget_keys_lane_queued", **lane) == 0
    assert value(text, "bitget_keys_lane_dispatched_total", **lane) == 3
    assert value(text, "bitget_keys_ip_requests_last_minute", egress="default") == 3
    assert value(text, "bitget_keys_requests_total", **ENDPOINT, outcome="ok") == 3
    # The second and third waited about one and two intervals for their slots.
    wait_sum = value(text, "bitget_keys_request_wait_seconds_sum", **ENDPOINT)
    assert wait_sum is not None
    assert wait_sum >= 2 * 1.0
    count = value(text, "bitget_keys_request_round_trip_seconds_count", **ENDPOINT)
    assert count == 3
    fast = value(text, "bitget_keys_request_wait_seconds_bucket", **ENDPOINT, le="0.5")
    assert fast == 1  # only the first went at once


OTHER = EmulatorAccount(
    uid="1000000002",
    api_key="bg_metrics_other",
    secret_key="metrics-other-secret",
    passphrase="MetricsOther2",
)


async def test_several_schedulers_in_one_registry_each_under_its_egress() -> None:
    """One scheduler per egress IP: every series names its egress, requests included."""
    first, second = RateLimitScheduler(), RateLimitScheduler()
    metrics = SchedulerMetrics()
    watch_first = metrics.add(first, egress="eu-1")
    watch_second = metrics.add(second, egress="eu-2")
    assert metrics.egresses == ("eu-1", "eu-2")
    assert (watch_first.egress, watch_second.egress) == ("eu-1", "eu-2")
    with pytest.raises(ValueError, match="'eu-1' already has a scheduler"):
        metrics.add(RateLimitScheduler(), egress="eu-1")
    with pytest.raises(ValueError, match="already shown in these metrics"):
        metrics.add(first, egress="eu-3")
    with pytest.raises(ValueError, match="egress must be a non-empty name"):
        metrics.add(RateLimitScheduler(), egress="")
    with pytest.raises(TypeError, match="has none"):
        metrics.add("oops", egress="eu-4")  # type: ignore[arg-type]
    assert metrics.egresses == ("eu-1", "eu-2")
    async with (
        Emulator([MASTER, OTHER]) as emulator,
        client_of(emulator, first, watch_first) as one,
        Client(
            OTHER.credentials,
            base_url=emulator.base_url,
            config=NO_SYNC,
            scheduler=second,
            observers=[watch_second],
        ) as two,
    ):
        await one.account_info()
        await asyncio.gather(two.account_info(), two.list_virtual_subaccounts())
        text = scrape(metrics)
    mine = {"egress": "eu-1", "endpoint": "account_info", "uid": MASTER.uid}
    assert value(text, "bitget_keys_lane_dispatched_total", **mine) == 1
    theirs = {"egress": "eu-2", "endpoint": "account_info", "uid": OTHER.uid}
    assert value(text, "bitget_keys_lane_dispatched_total", **theirs) == 1
    # Each scheduler's lanes show under its own egress only.
    assert value(text, "bitget_keys_lane_dispatched_total", **mine | {"egress": "eu-2"}) is None
    assert value(text, "bitget_keys_lanes", egress="eu-1") == 1
    assert value(text, "bitget_keys_lanes", egress="eu-2") == 2
    assert value(text, "bitget_keys_ip_requests_last_minute", egress="eu-1") == 1
    assert value(text, "bitget_keys_ip_requests_last_minute", egress="eu-2") == 2
    ok = {"endpoint": "account_info", "outcome": "ok"}
    assert value(text, "bitget_keys_requests_total", egress="eu-1", **ok) == 1
    assert value(text, "bitget_keys_requests_total", egress="eu-2", **ok) == 1
    trips = "bitget_keys_request_round_trip_seconds_count"
    assert value(text, trips, egress="eu-2", endpoint="list_virtual_subaccounts") == 1
    assert value(text, trips, egress="eu-1", endpoint="list_virtual_subaccounts") is None
    assert 'egress="default"' not in text  # nothing was added under the default name


async def test_429s_are_counted_by_uid_and_endpoint() -> None:
    """A scheduler that does not pace draws a 429, which the observer counts."""
    registry = CollectorRegistry()
    observer = RequestMetrics(registry)
    async with (
        Emulator([MASTER]) as emulator,
        client_of(emulator, Unpaced(), observer) as client,
    ):
        await asyncio.gather(client.account_info(), client.account_info(), return_exceptions=True)
    text = generate_latest(registry).decode()
    lane = ENDPOINT | {"uid": MASTER.uid}
    assert value(text, "bitget_keys_requests_throttled_total", **lane) == 1
    assert value(text, "bitget_keys_requests_total", **ENDPOINT, outcome="ok") == 1
    throttled = value(text, "bitget_keys_requests_total", **ENDPOINT, outcome="throttled")
    assert throttled == 1


async def test_a_pause_of_every_lane_shows_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = RateLimitScheduler()
    metrics = SchedulerMetrics(scheduler)
    scheduler.pause_all(30.0)
    paused = value(scrape(metrics), "bitget_keys_paused_seconds", egress="default")
    assert paused is not None
    assert 29.0 < paused <= 30.0
    logged = [r for r in caplog.records if "every lane paused 30.00 s" in r.getMessage()]
    assert [r.levelno for r in logged] == [logging.WARNING]


async def test_a_scrape_from_another_thread_reads_in_the_loop() -> None:
    """`start_http_server` scrapes from its own thread: the snapshot is taken in the loop."""
    scheduler = RateLimitScheduler()
    metrics = SchedulerMetrics(scheduler)
    async with (
        Emulator([MASTER]) as emulator,
        client_of(emulator, scheduler, metrics.observer) as client,
    ):
        await client.account_info()
        text = (await asyncio.to_thread(generate_latest, metrics.registry)).decode()
    lane = ENDPOINT | {"uid": MASTER.uid}
    assert value(text, "bitget_keys_lane_dispatched_total", **lane) == 1


async def test_served_over_http_and_in_a_registry_of_its_own() -> None:
    scheduler = RateLimitScheduler()
    metrics = SchedulerMetrics(scheduler)
    assert metrics.registry is not __import__("prometheus_client").REGISTRY
    # The collector says what it yields, so a second one in the registry clashes.
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        SchedulerMetrics(scheduler, registry=metrics.registry)
    async with await metrics.serve() as server, aiohttp.ClientSession() as session:
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        async with session.get(server.url) as response:
            assert response.status == 200
            text = await response.text()
        async with session.get(server.url, headers={"Accept": "application/openmetrics-text"}) as r:
            assert r.content_type == "application/openmetrics-text"
            assert (await r.text()).endswith("# EOF\n")
    assert value(text, "bitget_keys_lanes", egress="default") == 0
    assert value(text, "bitget_keys_paused_seconds", egress="default") == 0


async def test_the_redis_scheduler_is_read_alike(redis_server: RedisServer, prefix: str) -> None:
    async with RedisRateLimitScheduler(redis_server.url, prefix=prefix) as scheduler:
        metrics = SchedulerMetrics(scheduler)
        async with (
            Emulator([MASTER], limits=Limits()) as emulator,
            client_of(emulator, scheduler, metrics.observer) as client,
        ):
            await client.account_info()
            text = scrape(metrics)
    lane = ENDPOINT | {"uid": MASTER.uid}
    assert value(text, "bitget_keys_lane_dispatched_total", **lane) == 1
    round_trips = value(text, "bitget_keys_redis_round_trips_total", egress="default")
    assert round_trips is not None
    assert round_trips >= 1
    assert value(text, "bitget_keys_redis_fallback_active", egress="default") == 0
    assert value(text, "bitget_keys_requests_total", **ENDPOINT, outcome="ok") == 1
    assert redis_server.url not in text


def test_without_the_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "bitget_keys.metrics")
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"pip install 'bitget-keys\[metrics\]'"):
        importlib.import_module("bitget_keys.metrics")
