"""
Prometheus metrics for a rate-limit scheduler and the clients it paces.

Needs the ``metrics`` extra (``pip install 'bitget-keys[metrics]'``, which brings
``prometheus-client``). Two sources feed one registry of its own (never the global
``prometheus_client.REGISTRY`` unless it is passed in), every series labelled with the
``egress`` its scheduler paces (``"default"`` unless named):

- `SchedulerCollector` reads ``scheduler.statistics()`` at each scrape: per (UID,
  endpoint) lane its queue, requests in flight, dispatches, 429s, margin, interval and
  pause; for the whole scheduler the IP's requests in the last minute and the pause of
  every lane. Both `RateLimitScheduler` and `RedisRateLimitScheduler` have
  ``statistics()``; the Redis one adds its backend's counters.
- `RequestMetrics`, a `RequestObserver` to pass as ``Client(observers=[...])``: the
  wait for a slot and the round trip as histograms, requests by endpoint and outcome,
  and 429s by UID and endpoint.

`SchedulerMetrics` holds both, and `SchedulerMetrics.serve` answers ``GET /metrics``
from the running event loop::

    metrics = SchedulerMetrics(scheduler)
    async with await metrics.serve(port=9108):
        async with Client(creds, scheduler=scheduler, observers=[metrics.observer]) as c:
            ...

A job that leaves through several egress IPs has one scheduler per egress (each keeps
its own IP budget), and shows them all in one registry: `SchedulerMetrics.add` takes
each under its egress name and returns the observer for that egress's clients::

    metrics = SchedulerMetrics()
    observers = {name: metrics.add(scheduler, egress=name) for name, scheduler in ways}

The scheduler is read in its own event loop's thread: a scrape from another thread
(``prometheus_client.start_http_server``) waits for the loop to take the snapshot.
Lanes the scheduler dropped as idle disappear from the scrape, and their counters start
again from zero if they come back (Prometheus reads that as a counter reset). A key's own
lane, used until its UID is known, is named by the key's first characters.
"""

from __future__ import annotations

import asyncio
import copy
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Final, Protocol, Self

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.exposition import choose_encoder
except ImportError as exc:  # pragma: no cover - the extra is installed for the tests
    msg = (
        "bitget_keys.metrics needs prometheus-client: install the metrics extra, "
        "pip install 'bitget-keys[metrics]'"
    )
    raise ImportError(msg) from exc

from aiohttp import web

from bitget_keys._client.observe import RequestEvent, RequestOutcome, lane_name
from bitget_keys.limits.statistics import LaneStatistics, SchedulerStatistics

__all__ = [
    "DEFAULT_EGRESS",
    "MetricsServer",
    "RequestMetrics",
    "SchedulerCollector",
    "SchedulerMetrics",
    "StatisticsSource",
]

NAMESPACE: Final = "bitget_keys"
#: Waits for a slot run from nothing to the minutes a long queue or a lockout takes.
WAIT_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
ROUND_TRIP_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: The egress of a scheduler (and of its clients) not given a name.
DEFAULT_EGRESS: Final = "default"
_EGRESS_LABELS: Final = ("egress",)
_LANE_LABELS: Final = ("egress", "uid", "endpoint")


class StatisticsSource(Protocol):
    """What `SchedulerCollector` reads: any scheduler with ``statistics()``."""

    def statistics(self) -> SchedulerStatistics: ...


def _seconds_left(until: float | None, now: float) -> float:
    return 0.0 if until is None else max(0.0, until - now)


#: Per lane: metric name, type, help, and how to read it from a lane at ``now``
#: (``None``: no sample for that lane).
_LANE_METRICS: Final[
    tuple[tuple[str, str, str, Callable[[LaneStatistics, float], float | None]], ...]
] = (
    ("lane_queued", "gauge", "Requests waiting for a slot.", lambda lane, _: lane.queued),
    ("lane_in_flight", "gauge", "Requests sent, not yet answered.", lambda lane, _: lane.in_flight),
    (
        "lane_dispatched",
        "counter",
        "Slots stamped, retries and throttled attempts included.",
        lambda lane, _: lane.dispatched,
    ),
    ("lane_throttled", "counter", "429s answered on the lane.", lambda lane, _: lane.throttled),
    ("lane_margin", "gauge", "Safety margin in force (0.05 is 5%).", lambda lane, _: lane.margin),
    (
        "lane_interval_seconds",
        "gauge",
        "Mean seconds between dispatches when saturated.",
        lambda lane, _: lane.interval,
    ),
    (
        "lane_paused_seconds",
        "gauge",
        "Seconds left of the lane's pause after a 429 (0 when not paused).",
        lambda lane, now: _seconds_left(lane.paused_until, now),
    ),
    (
        "lane_jitter_seconds",
        "gauge",
        "Spread of Bitget's requestTime minus our send time (p99 - min, 5 min).",
        lambda lane, _: lane.jitter,
    ),
)

#: For the whole scheduler: metric name, type, help, and how to read it at ``now``.
_SCHEDULER_METRICS: Final[
    tuple[tuple[str, str, str, Callable[[SchedulerStatistics, float], float]], ...]
] = (
    ("lanes", "gauge", "Lanes the scheduler holds.", lambda stats, _: len(stats.lanes)),
    ("in_flight", "gauge", "Requests sent, not yet answered.", lambda stats, _: stats.in_flight),
    (
        "max_in_flight",
        "gauge",
        "Most requests in flight at once.",
        lambda stats, _: stats.max_in_flight,
    ),
    (
        "ip_requests_last_minute",
        "gauge",
        "Requests this scheduler sent from the IP in the last 60 s.",
        lambda stats, _: stats.ip_last_minute,
    ),
    (
        "paused_seconds",
        "gauge",
        "Seconds left of a pause of every lane (an IP throttle or lockout).",
        lambda stats, now: _seconds_left(stats.paused_until, now),
    ),
)

#: What a `RedisRateLimitScheduler`'s statistics add: attribute, metric name, type, help.
_REDIS_METRICS: Final = (
    ("round_trips", "redis_round_trips", "counter", "Calls to Redis."),
    ("backend_errors", "redis_errors", "counter", "Calls to Redis that failed."),
    ("fallback_active", "redis_fallback_active", "gauge", "1 while the local fallback paces."),
    ("fallback_dispatched", "redis_fallback_dispatched", "counter", "Sent through the fallback."),
    ("missed_slots", "redis_missed_slots", "counter", "Slots given up: the caller woke too late."),
)


def _family(
    name: str, kind: str, doc: str, labels: Iterable[str] = ()
) -> CounterMetricFamily | GaugeMetricFamily:
    if kind == "counter":
        return CounterMetricFamily(name, doc, labels=list(labels))
    return GaugeMetricFamily(name, doc, labels=list(labels))


#: One scrape: each egress's name and its scheduler's statistics.
_Snapshot = Sequence[tuple[str, SchedulerStatistics]]


class SchedulerCollector:
    """
    A Prometheus collector of schedulers' statistics, read at each scrape, each
    scheduler's series labelled with its egress (``egress``, or a name given to `add`).

    Made inside a running event loop, it reads the schedulers in that loop's thread: a
    scrape from another thread waits up to ``timeout`` seconds for the loop to do it.
    """

    def __init__(
        self,
        scheduler: StatisticsSource | None = None,
        *,
        egress: str = DEFAULT_EGRESS,
        namespace: str = NAMESPACE,
        timeout: float = 5.0,
    ) -> None:
        self._schedulers: dict[str, StatisticsSource] = {}
        self._prefix = f"{namespace}_" if namespace else ""
        self._timeout = timeout
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        if scheduler is not None:
            self.add(scheduler, egress=egress)

    @property
    def egresses(self) -> tuple[str, ...]:
        """The egress names shown, in the order they were added."""
        return tuple(self._schedulers)

    def add(self, scheduler: StatisticsSource, *, egress: str) -> None:
        """
        Show ``scheduler``'s series too, labelled ``egress``.

        Raises:
            TypeError: ``scheduler`` has no ``statistics()``.
            ValueError: ``egress`` is empty or already names a scheduler here, or
                ``scheduler`` is shown already (its series would count twice).
        """
        if not callable(getattr(scheduler, "statistics", None)):
            msg = f"metrics read a scheduler's statistics(): {scheduler!r} has none"
            raise TypeError(msg)
        name: object = egress
        if not isinstance(name, str) or not name:
            msg = f"egress must be a non-empty name (got {egress!r})"
            raise ValueError(msg)
        if egress in self._schedulers:
            msg = f"egress {egress!r} already has a scheduler in these metrics"
            raise ValueError(msg)
        if any(shown is scheduler for shown in self._schedulers.values()):
            msg = f"this scheduler is already shown in these metrics (egress {egress!r})"
            raise ValueError(msg)
        self._schedulers[egress] = scheduler

    def describe(self) -> list[Metric]:
        """The metrics this collector yields, without reading a scheduler."""
        return list(self._families(None, 0.0))

    def collect(self) -> Iterator[Metric]:
        """Every metric, from one statistics snapshot of each scheduler."""
        stats, now = self._snapshot()
        yield from self._families(stats, now)

    def _snapshot(self) -> tuple[_Snapshot, float]:
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or not loop.is_running():
            return self._read()

        async def read() -> tuple[_Snapshot, float]:
            return self._read()

        return asyncio.run_coroutine_threadsafe(read(), loop).result(self._timeout)

    def _read(self) -> tuple[_Snapshot, float]:
        stats = [(egress, source.statistics()) for egress, source in self._schedulers.items()]
        loop = self._loop
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return stats, float("-inf")  # no loop: nothing can be paused now
        return stats, loop.time()

    def _families(self, snapshot: _Snapshot | None, now: float) -> Iterator[Metric]:
        prefix = self._prefix
        every = snapshot or ()
        for name, kind, doc, read in _LANE_METRICS:
            family = _family(prefix + name, kind, doc, _LANE_LABELS)
            for egress, stats in every:
                for lane in stats.lanes:
                    if (value := read(lane, now)) is not None:
                        labels = [egress, lane_name(lane.uid), lane.endpoint]
                        family.add_metric(labels, float(value))
            yield family
        for name, kind, doc, read_all in _SCHEDULER_METRICS:
            family = _family(prefix + name, kind, doc, _EGRESS_LABELS)
            for egress, stats in every:
                family.add_metric([egress], float(read_all(stats, now)))
            yield family
        yield from self._redis_families(snapshot)

    def _redis_families(self, snapshot: _Snapshot | None) -> Iterator[Metric]:
        """A Redis scheduler's backend counters: shown when one of the schedulers has them."""
        for attribute, name, kind, doc in _REDIS_METRICS:
            values = [(egress, getattr(stats, attribute, None)) for egress, stats in snapshot or ()]
            if snapshot is None or any(value is not None for _, value in values):
                family = _family(self._prefix + name, kind, doc, _EGRESS_LABELS)
                for egress, value in values:
                    if value is not None:
                        family.add_metric([egress], float(value))
                yield family


class RequestMetrics:
    """
    A `RequestObserver` that counts and times each attempt into ``registry``, labelled
    with its ``egress``.

    Pass it to every client of the scheduler: ``Client(..., observers=[metrics])``; the
    clients of another egress take `for_egress` of it, which feeds the same series.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        namespace: str = NAMESPACE,
        egress: str = DEFAULT_EGRESS,
    ) -> None:
        #: The ``egress`` label of every series this observer feeds.
        self.egress = egress
        self.requests = Counter(
            "requests",
            "Attempts by endpoint and outcome (ok, throttled, error, not_sent).",
            ("egress", "endpoint", "outcome"),
            namespace=namespace,
            registry=registry,
        )
        self.throttled = Counter(
            "requests_throttled",
            "429s answered, by UID and endpoint.",
            _LANE_LABELS,
            namespace=namespace,
            registry=registry,
        )
        self.wait = Histogram(
            "request_wait_seconds",
            "Seconds from asking for a slot to sending (requests sent).",
            ("egress", "endpoint"),
            namespace=namespace,
            registry=registry,
            buckets=WAIT_BUCKETS,
        )
        self.round_trip = Histogram(
            "request_round_trip_seconds",
            "Seconds from sending to the answer (or failure).",
            ("egress", "endpoint"),
            namespace=namespace,
            registry=registry,
            buckets=ROUND_TRIP_BUCKETS,
        )

    def __repr__(self) -> str:
        return f"<RequestMetrics egress={self.egress!r}>"

    def for_egress(self, egress: str) -> RequestMetrics:
        """An observer of the same series for the clients of ``egress``."""
        bound = copy.copy(self)
        bound.egress = egress
        return bound

    def __call__(self, event: RequestEvent) -> None:
        egress, endpoint = self.egress, event.endpoint.value
        self.requests.labels(egress, endpoint, event.outcome.value).inc()
        if event.outcome is RequestOutcome.THROTTLED:
            self.throttled.labels(egress, event.uid, endpoint).inc()
        if event.round_trip is not None:
            self.wait.labels(egress, endpoint).observe(event.wait)
            self.round_trip.labels(egress, endpoint).observe(event.round_trip)


class SchedulerMetrics:
    """
    Schedulers' metrics and their clients': a `SchedulerCollector` and a
    `RequestMetrics` in one registry, a new `CollectorRegistry` unless ``registry`` is
    given.

    ``scheduler``, when given, is shown under ``egress`` and ``observer`` is for its
    clients; `add` shows another egress's scheduler and returns the observer for its
    clients. A job through one egress needs neither name.
    """

    def __init__(
        self,
        scheduler: StatisticsSource | None = None,
        *,
        egress: str = DEFAULT_EGRESS,
        registry: CollectorRegistry | None = None,
        namespace: str = NAMESPACE,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.collector = SchedulerCollector(namespace=namespace)
        self.registry.register(self.collector)
        #: The observer for the clients of ``egress`` (the one named when made).
        self.observer = RequestMetrics(self.registry, namespace=namespace, egress=egress)
        if scheduler is not None:
            self.add(scheduler, egress=egress)

    @property
    def egresses(self) -> tuple[str, ...]:
        """The egresses whose schedulers are shown, in the order they were added."""
        return self.collector.egresses

    def add(self, scheduler: StatisticsSource, *, egress: str) -> RequestMetrics:
        """
        Show ``scheduler``'s series labelled ``egress``; the observer for its clients.

        Raises:
            TypeError: ``scheduler`` has no ``statistics()``.
            ValueError: ``egress`` is empty or already names a scheduler here, or
                ``scheduler`` is shown already (its series would count twice).
        """
        self.collector.add(scheduler, egress=egress)
        return self.observer_for(egress)

    def observer_for(self, egress: str) -> RequestMetrics:
        """The observer for the clients that leave through ``egress``."""
        if egress == self.observer.egress:
            return self.observer
        return self.observer.for_egress(egress)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition for an ``Accept`` header, and its content type."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> MetricsServer:
        """
        Answer ``GET /metrics`` on ``host:port`` (0 picks a free port) from this loop.

        Raises:
            OSError: the address cannot be listened on.
        """
        server = MetricsServer(self, host, port)
        await server.start()
        return server


class MetricsServer:
    """An HTTP server in the running loop whose ``/metrics`` shows `SchedulerMetrics`."""

    def __init__(self, metrics: SchedulerMetrics, host: str, port: int) -> None:
        self._metrics = metrics
        self.host = host
        self.port = port
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        self._runner = web.AppRunner(app, access_log=None)

    def __repr__(self) -> str:
        return f"<MetricsServer {self.url}>"

    @property
    def url(self) -> str:
        """Where the metrics are served."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    async def start(self) -> None:
        """Listen; a port of 0 becomes the one the system picked."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.port), family=family)
        self.port = sock.getsockname()[1]
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def aclose(self) -> None:
        """Stop serving. Idempotent."""
        await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _handle(self, request: web.Request) -> web.Response:
        body, content_type = self._metrics.render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})
