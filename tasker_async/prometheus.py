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

import contextlib
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ._events import LifecycleEvent, ResourceCreationFailed, ScalingEvent, TaskEvent, WorkerEvent
from ._metrics import TaskMetrics
from ._stats import TaskStats

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise ImportError(
        "tasker_async.prometheus needs prometheus_client: install the extra, pip install 'tasker-async[prometheus]'"
    ) from exc

if TYPE_CHECKING:
    from typing import Self

    from ._manager import AsyncManager

__all__ = ("PrometheusMetrics", "instrument")

_OUTCOMES = ("succeeded", "failed", "timed_out", "aborted", "cancelled")
# The runs TaskMetrics times too: a task cancelled or aborted midway counts as neither.
_TIMED = frozenset(("succeeded", "failed", "timed_out"))
_STATES = ("created", "running", "stopping", "stopped", "killed")
_C = TypeVar("_C", bound=Collector)


_Reading = float | tuple[tuple[str, float], ...]

# name, help, label (None: a single series); the values come from _read.
_GAUGES: tuple[tuple[str, str, str | None], ...] = (
    ("base_workers", "The configured worker_count.", None),
    ("active_workers", "Base and burst workers now holding a resource.", None),
    ("burst_workers", "Burst workers now alive.", None),
    ("queued_tasks", "Tasks waiting, by queue.", "queue"),
    ("running_tasks", "Tasks a worker is running now.", None),
    ("available_resources", "Idle resources in the run_task pool.", None),
    ("state", "1 for the manager's lifecycle state, 0 for the others.", "state"),
    ("task_arrivals_per_second", "Tasks accepted per second over the collector's recent window.", None),
    ("task_completions_per_second", "Tasks succeeded per second over the collector's recent window.", None),
    ("task_success_ratio", "Succeeded / (succeeded + failed) since start.", None),
    ("task_execution_time_seconds", "Run time quantiles since start.", "quantile"),
    ("task_average_execution_time_seconds", "Mean run time since start.", None),
    ("task_wait_time_seconds", "Wait time quantiles since start.", "quantile"),
    ("task_average_wait_time_seconds", "Mean wait time since start.", None),
)


def _read(s: TaskStats, m: TaskMetrics) -> dict[str, _Reading]:
    return {
        "base_workers": s.base_workers,
        "active_workers": s.active_workers,
        "burst_workers": s.burst_workers,
        "queued_tasks": (("main", s.queued_tasks), ("priority", s.priority_tasks)),
        "running_tasks": s.running_tasks,
        "available_resources": s.available_resources,
        "state": tuple((state, float(state == s.state)) for state in _STATES),
        "task_arrivals_per_second": m.task_arrival_rate,
        "task_completions_per_second": m.task_completion_rate,
        "task_success_ratio": m.success_rate,
        "task_execution_time_seconds": (
            ("0.5", m.p50_execution_time),
            ("0.95", m.p95_execution_time),
            ("0.99", m.p99_execution_time),
        ),
        "task_average_execution_time_seconds": m.average_execution_time,
        "task_wait_time_seconds": (("0.95", m.p95_wait_time),),
        "task_average_wait_time_seconds": m.average_wait_time,
    }


class _Gauges(Collector):
    """Reads ``stats()`` and ``metrics()`` at each scrape."""

    def __init__(self, manager: AsyncManager[Any], prefix: str) -> None:
        self._manager = manager
        self._prefix = prefix

    def _families(self, readings: dict[str, _Reading] | None) -> list[GaugeMetricFamily]:
        families = []
        for name, doc, label in _GAUGES:
            family = GaugeMetricFamily(f"{self._prefix}_{name}", doc, labels=None if label is None else [label])
            reading = None if readings is None else readings[name]
            if isinstance(reading, tuple):
                for key, value in reading:
                    family.add_metric([key], value)
            elif reading is not None:
                family.add_metric([], reading)
            families.append(family)
        return families

    def collect(self) -> list[GaugeMetricFamily]:
        """Return every gauge with the manager's current values."""
        return self._families(_read(self._manager.stats(), self._manager.metrics()))

    def describe(self) -> list[GaugeMetricFamily]:
        """Return every gauge without values: the registry checks names without reading the manager."""
        return self._families(None)


class PrometheusMetrics:
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
        self.prefix = prefix
        self._manager: AsyncManager[Any] | None = manager
        reg = self.registry
        p = prefix
        self._collectors: list[Collector] = []
        try:
            self._submitted = self._add(Counter(f"{p}_tasks_submitted", "Tasks accepted into a queue.", registry=reg))
            finished = self._add(
                Counter(f"{p}_tasks_finished", "Tasks that ended, by outcome.", ["outcome"], registry=reg)
            )
            self._retries = self._add(
                Counter(f"{p}_task_retries", "Tasks re-queued after an unhealthy error.", registry=reg)
            )
            workers = self._add(
                Counter(f"{p}_worker_events", "Workers created, destroyed or replaced.", ["kind"], registry=reg)
            )
            self._creation_failures = self._add(
                Counter(f"{p}_resource_creation_failures", "on_create failures.", registry=reg)
            )
            scaling = self._add(
                Counter(f"{p}_scaling_events", "Burst scaling decisions, by kind.", ["kind"], registry=reg)
            )
            bounds = Histogram.DEFAULT_BUCKETS if buckets is None else buckets
            self._run = self._add(
                Histogram(
                    f"{p}_task_run_duration_seconds",
                    "Run time of tasks that succeeded, failed or timed out.",
                    registry=reg,
                    buckets=bounds,
                )
            )
            self._wait = self._add(
                Histogram(
                    f"{p}_task_wait_duration_seconds",
                    "Submission to the start of the last run, of tasks that succeeded, failed or timed out.",
                    registry=reg,
                    buckets=bounds,
                )
            )
            self._add(_Gauges(manager, p))
        except BaseException:
            self._unregister()
            raise
        # Label children made once, so every series shows from the first scrape and the hook skips the lookup.
        self._finished = {outcome: finished.labels(outcome) for outcome in _OUTCOMES}
        self._workers = {kind: workers.labels(kind) for kind in ("created", "destroyed", "replaced")}
        self._scaling = {kind: scaling.labels(kind) for kind in ("scale_up", "scale_down")}
        manager.add_hook(self)

    def _add(self, collector: _C) -> _C:
        if isinstance(collector, _Gauges):  # the metric classes registered themselves
            self.registry.register(collector)
        self._collectors.append(collector)
        return collector

    def _unregister(self) -> None:
        for collector in self._collectors:
            self.registry.unregister(collector)
        self._collectors.clear()

    def __call__(self, event: LifecycleEvent) -> None:
        """Count ``event`` (the manager calls this; it must not block)."""
        if isinstance(event, TaskEvent):
            kind = event.kind
            if kind == "queued":
                self._submitted.inc()
            elif kind == "retried":
                self._retries.inc()
            elif kind != "started":
                self._finished[kind].inc()
                if kind in _TIMED:
                    run, wait = event.run_time, event.wait_time
                    if run is not None and wait is not None:
                        self._run.observe(run)
                        self._wait.observe(wait)
        elif isinstance(event, WorkerEvent):
            self._workers[event.kind].inc()
        elif isinstance(event, ResourceCreationFailed):
            self._creation_failures.inc()
        elif isinstance(event, ScalingEvent):
            self._scaling[event.kind].inc()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._manager is None

    def close(self) -> None:
        """Detach from the manager and unregister every metric; calling it again does nothing."""
        manager, self._manager = self._manager, None
        if manager is None:
            return
        self._unregister()
        with contextlib.suppress(ValueError):  # its hook was already removed by hand
            manager.remove_hook(self)

    def __enter__(self) -> Self:
        """Return itself; leaving the block calls :meth:`close`."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Call :meth:`close`."""
        self.close()

    def __repr__(self) -> str:
        """Show the prefix and whether it is attached, e.g. ``<PrometheusMetrics prefix='tasker' attached>``."""
        return f"<PrometheusMetrics prefix={self.prefix!r} {'closed' if self.closed else 'attached'}>"


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
