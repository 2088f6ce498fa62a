"""What the Prometheus and OpenTelemetry exporters share: one table of metrics, and the hook that feeds them.

Each row is one metric under both of its names (``<prefix>_tasks_finished``,
``<prefix>.tasks.finished``): a metric added here shows in both exporters.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .events import LifecycleEvent, ResourceCreationFailed, ScalingEvent, TaskEvent, WorkerEvent
from .metrics import TaskMetrics
from .stats import TaskStats

if TYPE_CHECKING:
    from typing import Self

    from .._api.manager import AsyncManager

Count = Callable[[], object]  # adds one to a counter's series
Observe = Callable[[float], object]  # records one value in a histogram


def needs_extra(extra: str, distribution: str) -> ImportError:
    """The error ``tasker_async.<extra>`` raises when ``distribution``, its dependency, is not installed."""
    message = f"tasker_async.{extra} needs {distribution}: install the extra, pip install 'tasker-async[{extra}]'"
    return ImportError(message)


# The runs TaskMetrics times too: a task cancelled or aborted midway counts as neither.
TIMED = frozenset(("succeeded", "failed", "timed_out"))


# eq=False: a row is one metric, found by identity on every event (no hashing of its fields).
@dataclass(frozen=True, slots=True, eq=False)
class Metric:
    """One metric as both exporters name it.

    Attributes:
        prometheus: its name after ``<prefix>_`` (a counter's without ``_total``).
        otel: its name after ``<prefix>.``.
        unit: its OpenTelemetry unit.
        doc: its help text, and its OpenTelemetry description.
        label: the label (attribute) its series differ by; ``None``: one series.
        values: the label's values, one series each (``("",)`` without a label).
    """

    prometheus: str
    otel: str
    unit: str
    doc: str
    label: str | None = field(default=None, kw_only=True)
    values: tuple[str, ...] = field(default=("",), kw_only=True)

    def attributes(self, value: str) -> dict[str, str]:
        """The OpenTelemetry attributes of the series labelled ``value``."""
        return {} if self.label is None else {self.label: value}


@dataclass(frozen=True, slots=True, eq=False)
class Gauge(Metric):
    """A metric read from ``stats()`` or ``metrics()`` at each scrape or collection.

    Attributes:
        reads: the field behind each series, in the order of ``values``.
        otel_doc: a shorter OpenTelemetry description, where it has one.
    """

    reads: tuple[str, ...]
    otel_doc: str | None = field(default=None, kw_only=True)

    def read(self, snapshot: TaskStats | TaskMetrics) -> list[tuple[str, float]]:
        """Each series' label value and reading in ``snapshot``."""
        return [(value, getattr(snapshot, name)) for value, name in zip(self.values, self.reads, strict=True)]


_OUTCOMES = ("succeeded", "failed", "timed_out", "aborted", "cancelled")
_SCALINGS = ("scale_up", "scale_down")

SUBMITTED = Metric("tasks_submitted", "tasks.submitted", "{task}", "Tasks accepted into a queue.")
FINISHED = Metric(
    "tasks_finished", "tasks.finished", "{task}", "Tasks that ended, by outcome.", label="outcome", values=_OUTCOMES
)
RETRIES = Metric("task_retries", "task.retries", "{retry}", "Tasks re-queued after an unhealthy error.")
WORKER_EVENTS = Metric(
    "worker_events",
    "worker.events",
    "{event}",
    "Workers created, destroyed or replaced.",
    label="kind",
    values=("created", "destroyed", "replaced"),
)
CREATION_FAILURES = Metric(
    "resource_creation_failures", "resource.creation_failures", "{failure}", "on_create failures."
)
SCALING_EVENTS = Metric(
    "scaling_events", "scaling.events", "{event}", "Burst scaling decisions, by kind.", label="kind", values=_SCALINGS
)
COUNTERS = (SUBMITTED, FINISHED, RETRIES, WORKER_EVENTS, CREATION_FAILURES, SCALING_EVENTS)

RUN_TIME = Metric(
    "task_run_duration_seconds", "task.run.duration", "s", "Run time of tasks that succeeded, failed or timed out."
)
WAIT_TIME = Metric(
    "task_wait_duration_seconds",
    "task.wait.duration",
    "s",
    "Submission to the start of the last run, of tasks that succeeded, failed or timed out.",
)

# Read from stats(), in the order they are exported.
STATS_GAUGES = (
    Gauge("base_workers", "workers.base", "{worker}", "The configured worker_count.", ("base_workers",)),
    Gauge(
        "active_workers",
        "workers.active",
        "{worker}",
        "Base and burst workers now holding a resource.",
        ("active_workers",),
    ),
    Gauge("burst_workers", "workers.burst", "{worker}", "Burst workers now alive.", ("burst_workers",)),
    Gauge(
        "queued_tasks",
        "tasks.queued",
        "{task}",
        "Tasks waiting, by queue.",
        ("queued_tasks", "priority_tasks"),
        label="queue",
        values=("main", "priority"),
    ),
    Gauge("running_tasks", "tasks.running", "{task}", "Tasks a worker is running now.", ("running_tasks",)),
    Gauge(
        "available_resources",
        "resources.available",
        "{resource}",
        "Idle resources in the run_task pool.",
        ("available_resources",),
    ),
)
# Read from metrics(), in the order they are exported.
METRICS_GAUGES = (
    Gauge(
        "task_arrivals_per_second",
        "task.arrival_rate",
        "{task}/s",
        "Tasks accepted per second over the collector's recent window.",
        ("task_arrival_rate",),
        otel_doc="Tasks accepted per second, recently.",
    ),
    Gauge(
        "task_completions_per_second",
        "task.completion_rate",
        "{task}/s",
        "Tasks succeeded per second over the collector's recent window.",
        ("task_completion_rate",),
        otel_doc="Tasks succeeded per second, recently.",
    ),
    Gauge(
        "task_success_ratio",
        "task.success_ratio",
        "1",
        "Succeeded / (succeeded + failed) since start.",
        ("success_rate",),
    ),
    Gauge(
        "task_execution_time_seconds",
        "task.execution_time",
        "s",
        "Run time quantiles since start.",
        ("p50_execution_time", "p95_execution_time", "p99_execution_time"),
        label="quantile",
        values=("0.5", "0.95", "0.99"),
    ),
    Gauge(
        "task_average_execution_time_seconds",
        "task.execution_time.average",
        "s",
        "Mean run time since start.",
        ("average_execution_time",),
    ),
    Gauge(
        "task_wait_time_seconds",
        "task.wait_time",
        "s",
        "Wait time quantiles since start.",
        ("p95_wait_time",),
        label="quantile",
        values=("0.95",),
    ),
    Gauge(
        "task_average_wait_time_seconds",
        "task.wait_time.average",
        "s",
        "Mean wait time since start.",
        ("average_wait_time",),
    ),
)


def counted(event: LifecycleEvent) -> tuple[Metric, str] | None:
    """The counter ``event`` adds one to and the series' label value; ``None`` if it counts nowhere (a start)."""
    if isinstance(event, TaskEvent):
        kind = event.kind
        if kind == "queued":
            return SUBMITTED, ""
        if kind == "retried":
            return RETRIES, ""
        return None if kind == "started" else (FINISHED, kind)
    if isinstance(event, WorkerEvent):
        return WORKER_EVENTS, event.kind
    if isinstance(event, ScalingEvent):
        return SCALING_EVENTS, event.kind
    if isinstance(event, ResourceCreationFailed):
        return CREATION_FAILURES, ""
    return None


class Exporter(abc.ABC):
    """A lifecycle hook that exports a manager's events, stats and metrics.

    A subclass's ``__init__`` ends with :meth:`_attach`, which makes the
    instruments through :meth:`_counter`, :meth:`_histogram` and
    :meth:`_gauges`, in that order, then registers the hook.
    """

    def _attach(self, manager: AsyncManager[Any], prefix: str) -> None:
        """Make every instrument, its name starting with ``prefix``, then start counting ``manager``'s events."""
        self.prefix = prefix
        self._manager: AsyncManager[Any] | None = manager
        self._counts = {(row, value): count for row in COUNTERS for value, count in self._counter(row).items()}
        self._run_time = self._histogram(RUN_TIME)
        self._wait_time = self._histogram(WAIT_TIME)
        self._gauges(manager)
        manager.add_hook(self)

    @abc.abstractmethod
    def _counter(self, row: Metric) -> Mapping[str, Count]:
        """Make the counter of ``row``: what adds one to each of its series, by label value."""

    @abc.abstractmethod
    def _histogram(self, row: Metric) -> Observe:
        """Make the histogram of ``row`` (seconds, one series): what records a value in it."""

    @abc.abstractmethod
    def _gauges(self, manager: AsyncManager[Any]) -> None:
        """Make the gauges of :data:`STATS_GAUGES` and :data:`METRICS_GAUGES`, read from ``manager``."""

    def __call__(self, event: LifecycleEvent) -> None:
        """Count ``event`` (the manager calls this; it must not block)."""
        key = counted(event)
        if key is not None:
            self._counts[key]()
        if isinstance(event, TaskEvent) and event.kind in TIMED:
            run, wait = event.run_time, event.wait_time
            if run is not None and wait is not None:
                self._run_time(run)
                self._wait_time(wait)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._manager is None

    def close(self) -> None:
        """Detach from the manager; calling it again does nothing."""
        manager, self._manager = self._manager, None
        if manager is not None:
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
        """Show the class, the prefix and whether it is attached, e.g. ``<OtelMetrics prefix='tasker' attached>``."""
        return f"<{type(self).__name__} prefix={self.prefix!r} {'closed' if self.closed else 'attached'}>"
