"""``apply --metrics-port``: the run's scheduler and requests on ``/metrics`` while it runs."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bitget_keys._client import shared_scheduler
from bitget_keys._client.observe import RequestObserver
from bitget_keys.errors import ConfigurationError

if TYPE_CHECKING:
    from bitget_keys.metrics import MetricsServer, SchedulerMetrics, StatisticsSource


class ApplyMetrics:
    """
    What apply serves, if ``--metrics-port`` was given: the scheduler's statistics and
    every client's requests (`observers`), from the moment `start` runs until `aclose`.
    """

    def __init__(self, metrics: SchedulerMetrics | None, host: str, port: int | None) -> None:
        self._metrics = metrics
        self._host = host
        self._port = port
        self._server: MetricsServer | None = None

    @property
    def observers(self) -> tuple[RequestObserver, ...]:
        """What every client of the run is given."""
        return () if self._metrics is None else (self._metrics.observer,)

    async def start(self) -> None:
        """
        Listen, and say where on stderr (a port of 0 picks a free one).

        Raises:
            ConfigurationError: the address cannot be listened on.
        """
        if self._metrics is None or self._port is None:
            return
        try:
            self._server = await self._metrics.serve(self._host, self._port)
        except OSError as exc:
            msg = f"--metrics-port {self._port}: cannot listen on {self._host}: {exc.strerror}"
            raise ConfigurationError(msg) from exc
        print(f"bitget-keys: metrics at {self._server.url}", file=sys.stderr, flush=True)

    async def aclose(self) -> None:
        """Stop serving (the run is over)."""
        if self._server is not None:
            await self._server.aclose()
            self._server = None


def apply_metrics(args: argparse.Namespace, scheduler: StatisticsSource | None) -> ApplyMetrics:
    """
    The run's metrics: of ``scheduler``, or of the loop's shared one that the run's
    clients use when it is ``None``.

    Raises:
        ConfigurationError: ``--metrics-port`` without the ``metrics`` extra installed.
    """
    port: int | None = args.metrics_port
    if port is None:
        return ApplyMetrics(None, args.metrics_host, None)
    try:
        from bitget_keys.metrics import SchedulerMetrics  # noqa: PLC0415 - an optional extra
    except ImportError as exc:
        msg = f"--metrics-port: {exc}"
        raise ConfigurationError(msg) from exc
    source = scheduler if scheduler is not None else shared_scheduler()
    return ApplyMetrics(SchedulerMetrics(source), args.metrics_host, port)
