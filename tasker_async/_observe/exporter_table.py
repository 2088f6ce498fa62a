"""The table of what the Prometheus and OpenTelemetry exporters export of a manager, under both names.

Each row is one metric under both of its names (``<prefix>_tasks_finished``,
``<prefix>.tasks.finished``): a metric added here shows in both exporters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .events import LifecycleEvent, ResourceCreationFailed, ScalingEvent, TaskEvent, WorkerEvent

__all__ = (
    "COUNTERS",
    "FINISHED",
    "METRICS_GAUGES",
    "RUN_TIME",
    "STATS_GAUGES",
    "TIMED",
    "WAIT_TIME",
    "Gauge",
    "Metric",
    "counted",
)

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
    """A metric read from a snapshot (``stats()``, ``metrics()``...) at each scrape or collection.

    Attributes:
        reads: the snapshot's field behind each series, in the order of ``values``.
        otel_doc: a shorter OpenTelemetry description, where it has one.
    """

    reads: tuple[str, ...]
    otel_doc: str | None = field(default=None, kw_only=True)

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels its series differ by, in the order :meth:`read` gives their values."""
        return () if self.label is None else (self.label,)

    def read(self, snapshot: object) -> list[tuple[tuple[str, ...], float]]:
        """Each series' label values and reading in ``snapshot``."""
        labelled = self.label is not None
        pairs = zip(self.values, self.reads, strict=True)
        return [((value,) if labelled else (), getattr(snapshot, name)) for value, name in pairs]

    def attributes_of(self, values: tuple[str, ...]) -> dict[str, str]:
        """The OpenTelemetry attributes of the series whose label values :meth:`read` gave as ``values``."""
        return dict(zip(self.labels, values, strict=True))


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
