"""Prometheus metrics for an ``AsyncManager``: event counters, run and wait histograms, live gauges.

Needs the ``prometheus`` extra (``pip install 'tasker-async[prometheus]'``)::

    from tasker_async.prometheus import instrument

    exporter = instrument(manager)  # on prometheus_client's global REGISTRY
    ...
    exporter.close()  # stop counting and unregister

Counters and histograms (``<prefix>_tasks_finished_total{outcome}``,
``<prefix>_task_run_duration_seconds``...) count the lifecycle events seen
from :func:`instrument` on. Gauges (``<prefix>_queued_tasks{queue}``,
``<prefix>_task_execution_time_seconds{quantile}``...) are read from
``manager.stats()`` and ``manager.metrics()`` at each scrape. Give two
managers on one registry different prefixes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from ._api.manager import AsyncManager
from ._observe.exporter import METRICS_GAUGES, STATS_GAUGES, Count, Exporter, Gauge, Metric, Observe, needs_extra
from ._observe.metrics import TaskMetrics
from ._observe.stats import TaskStats

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise needs_extra("prometheus", "prometheus_client") from exc

__all__ = ("PrometheusMetrics", "instrument")

_STATES = ("created", "running", "stopping", "stopped", "killed")
_STATE_DOC = "1 for the manager's lifecycle state, 0 for the others."
_C = TypeVar("_C", bound=Collector)


class _Gauges(Collector):
    """Reads ``stats()`` and ``metrics()`` at each scrape."""

    def __init__(self, manager: AsyncManager[Any], prefix: str) -> None:
        self._manager = manager
        self._prefix = prefix

    def _family(self, gauge: Gauge, snapshot: TaskStats | TaskMetrics | None) -> GaugeMetricFamily:
        labels = None if gauge.label is None else [gauge.label]
        family = GaugeMetricFamily(f"{self._prefix}_{gauge.prometheus}", gauge.doc, labels=labels)
        if snapshot is not None:
            for value, reading in gauge.read(snapshot):
                family.add_metric([] if labels is None else [value], reading)
        return family

    def _state(self, stats: TaskStats | None) -> GaugeMetricFamily:
        family = GaugeMetricFamily(f"{self._prefix}_state", _STATE_DOC, labels=["state"])
        if stats is not None:
            for state in _STATES:
                family.add_metric([state], float(state == stats.state))
        return family

    def _families(self, stats: TaskStats | None, metrics: TaskMetrics | None) -> list[GaugeMetricFamily]:
        return [
            *(self._family(gauge, stats) for gauge in STATS_GAUGES),
            self._state(stats),
            *(self._family(gauge, metrics) for gauge in METRICS_GAUGES),
        ]

    def collect(self) -> list[GaugeMetricFamily]:
        """Return every gauge with the manager's current values."""
        return self._families(self._manager.stats(), self._manager.metrics())

    def describe(self) -> list[GaugeMetricFamily]:
        """Return every gauge without values: the registry checks names without reading the manager."""
        return self._families(None, None)


class PrometheusMetrics(Exporter):
    """A manager's metrics on a Prometheus registry; make one with :func:`instrument`.

    It is the lifecycle hook :func:`instrument` registered: calling it with an
    event counts the event.

    Attributes:
        registry: the registry the metrics are on.
        prefix: the prefix of every metric name.
    """

    def __init__(
        self,
        manager: AsyncManager[Any],
        *,
        registry: CollectorRegistry | None = None,
        prefix: str = "tasker",
        buckets: Sequence[float] | None = None,
    ) -> None:
        """Register the metrics and attach to ``manager``; see :func:`instrument`."""
        self.registry = REGISTRY if registry is None else registry
        self._buckets = Histogram.DEFAULT_BUCKETS if buckets is None else buckets
        self._collectors: list[Collector] = []
        try:
            self._attach(manager, prefix)
        except BaseException:
            self._unregister()
            raise

    def _counter(self, row: Metric) -> Mapping[str, Count]:
        labels = () if row.label is None else (row.label,)
        counter = self._add(Counter(f"{self.prefix}_{row.prometheus}", row.doc, labels, registry=self.registry))
        if row.label is None:
            return {"": counter.inc}
        # Label children made once, so every series shows from the first scrape and the hook skips the lookup.
        return {value: counter.labels(value).inc for value in row.values}

    def _histogram(self, row: Metric) -> Observe:
        name = f"{self.prefix}_{row.prometheus}"
        return self._add(Histogram(name, row.doc, registry=self.registry, buckets=self._buckets)).observe

    def _gauges(self, manager: AsyncManager[Any]) -> None:
        gauges = _Gauges(manager, self.prefix)
        self.registry.register(gauges)  # the metric classes above registered themselves
        self._add(gauges)

    def _add(self, collector: _C) -> _C:
        self._collectors.append(collector)
        return collector

    def _unregister(self) -> None:
        for collector in self._collectors:
            self.registry.unregister(collector)
        self._collectors.clear()

    def close(self) -> None:
        """Detach from the manager and unregister every metric; calling it again does nothing."""
        if not self.closed:
            self._unregister()
        super().close()


def instrument(
    manager: AsyncManager[Any],
    *,
    registry: CollectorRegistry | None = None,
    prefix: str = "tasker",
    buckets: Sequence[float] | None = None,
) -> PrometheusMetrics:
    """Expose ``manager``'s events, stats and metrics on a Prometheus registry.

    Registers the counters, histograms and scrape-time gauges on
    ``registry`` and attaches a lifecycle hook to ``manager``. Events before
    this call are not counted; ``stats()`` and ``metrics()`` gauges cover the
    manager's whole life.

    Args:
        manager: the manager to watch, started or not.
        registry: where to register (``None``: prometheus_client's global ``REGISTRY``).
        prefix: the start of every metric name, e.g. ``tasker`` gives ``tasker_tasks_finished_total``.
        buckets: the run and wait histograms' upper bounds in seconds
            (``None``: prometheus_client's defaults, 5 ms to 10 s).

    Returns:
        The instrumentation; call its ``close()`` to detach and unregister.

    Raises:
        ValueError: a metric name is already on ``registry`` (another manager
            with the same prefix), or ``prefix`` makes an invalid name.
    """
    return PrometheusMetrics(manager, registry=registry, prefix=prefix, buckets=buckets)
