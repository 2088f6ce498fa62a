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
managers on one registry different prefixes. With ``consumer=``, a durable
consumer's queue depths per lane, running and dead jobs, and its job events
(``<prefix>_durable_jobs_total{event="redelivered"}``...) too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._api.manager import AsyncManager
from ._observe.exporter import Count, Exporter, Observe, Source, needs_extra
from ._observe.exporter_table import Gauge, Metric
from ._observe.stats import TaskStats

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise needs_extra("prometheus", "prometheus_client") from exc

if TYPE_CHECKING:
    from .durable import Consumer

__all__ = ("PrometheusMetrics", "instrument")

_STATES = ("created", "running", "stopping", "stopped", "killed")
_STATE_DOC = "1 for the manager's lifecycle state, 0 for the others."
_C = TypeVar("_C", bound=Collector)


class _Gauges(Collector):
    """Reads each source's snapshot (``stats()``, ``metrics()``, ``consumer.queue_stats()``) at each scrape."""

    def __init__(self, sources: Sequence[Source], stats: Callable[[], TaskStats | None], prefix: str) -> None:
        self._sources = sources
        self._stats = stats  # for the state gauge, Prometheus' own
        self._prefix = prefix

    def _family(self, gauge: Gauge, snapshot: object | None) -> GaugeMetricFamily:
        family = GaugeMetricFamily(f"{self._prefix}_{gauge.prometheus}", gauge.doc, labels=gauge.labels)
        if snapshot is not None:
            for values, reading in gauge.read(snapshot):
                family.add_metric(values, reading)
        return family

    def _state(self, stats: TaskStats | None) -> GaugeMetricFamily:
        family = GaugeMetricFamily(f"{self._prefix}_state", _STATE_DOC, labels=["state"])
        if stats is not None:
            for state in _STATES:
                family.add_metric([state], float(state == stats.state))
        return family

    def _families(self, *, read: bool) -> list[GaugeMetricFamily]:
        families = []
        for gauges, source in self._sources:
            snapshot = source() if read else None
            families += [self._family(gauge, snapshot) for gauge in gauges]
        families.append(self._state(self._stats() if read else None))
        return families

    def collect(self) -> list[GaugeMetricFamily]:
        """Return every gauge with the current values."""
        return self._families(read=True)

    def describe(self) -> list[GaugeMetricFamily]:
        """Return every gauge without values: the registry checks names without reading the manager."""
        return self._families(read=False)


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
        consumer: Consumer | None = None,
        registry: CollectorRegistry | None = None,
        prefix: str = "tasker",
        buckets: Sequence[float] | None = None,
    ) -> None:
        """Register the metrics and attach to ``manager``; see :func:`instrument`."""
        self.registry = REGISTRY if registry is None else registry
        self._buckets = Histogram.DEFAULT_BUCKETS if buckets is None else buckets
        self._collectors: list[Collector] = []
        try:
            self._attach(manager, prefix, consumer)
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

    def _gauges(self, sources: Sequence[Source]) -> None:
        gauges = _Gauges(sources, self._stats, self.prefix)
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
    consumer: Consumer | None = None,
) -> PrometheusMetrics:
    """Expose ``manager``'s events, stats and metrics on a Prometheus registry.

    Registers the counters, histograms and scrape-time gauges on
    ``registry`` and attaches a lifecycle hook to ``manager``. Events before
    this call are not counted; ``stats()`` and ``metrics()`` gauges cover the
    manager's whole life.

    With a durable ``consumer`` feeding ``manager``, also the gauges
    ``<prefix>_durable_ready_jobs{queue,lane}`` (``lane`` is ``priority`` or
    ``main``), ``<prefix>_durable_delayed_jobs{queue}``,
    ``<prefix>_durable_running_jobs{queue}`` and
    ``<prefix>_durable_dead_jobs{queue}`` of each queue it serves, read from
    ``consumer.queue_stats()`` (the store's counts, at most a second or so
    old, the same in every process serving the queue), and the counter
    ``<prefix>_durable_jobs_total{event}`` of the job events the manager's
    hooks are told (``delivered``, ``redelivered``, ``acked``, ``dead``,
    ``released``).

    Args:
        manager: the manager to watch, started or not.
        registry: where to register (``None``: prometheus_client's global ``REGISTRY``).
        prefix: the start of every metric name, e.g. ``tasker`` gives ``tasker_tasks_finished_total``.
        buckets: the run and wait histograms' upper bounds in seconds
            (``None``: prometheus_client's defaults, 5 ms to 10 s).
        consumer: a ``tasker_async.durable.Consumer`` feeding ``manager``,
            whose queues and job events to export too.

    Returns:
        The instrumentation; call its ``close()`` to detach and unregister.

    Raises:
        ValueError: a metric name is already on ``registry`` (another manager
            with the same prefix), or ``prefix`` makes an invalid name.
        TypeError: ``consumer`` is not a durable consumer.
    """
    return PrometheusMetrics(manager, registry=registry, prefix=prefix, buckets=buckets, consumer=consumer)
