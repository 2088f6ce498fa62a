"""OpenTelemetry metrics, and optionally one span per task, for an ``AsyncManager``.

Needs the ``otel`` extra (``pip install 'tasker-async[otel]'``) and, to
export anything, an OpenTelemetry SDK set up by the application::

    from tasker_async.otel import instrument

    telemetry = instrument(manager, tracer=trace.get_tracer("my-app"))
    ...
    telemetry.close()

Counters and histograms (``<prefix>.tasks.finished{outcome}``,
``<prefix>.task.run.duration``...) count the lifecycle events seen from
:func:`instrument` on; observable gauges (``<prefix>.tasks.queued{queue}``,
``<prefix>.task.execution_time{quantile}``...) read ``manager.stats()`` and
``manager.metrics()`` at each collection. With a tracer, every task gets a
span from its submission to its end, made when it ends, as a child of the
span current where it was submitted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._events import LifecycleEvent, ResourceCreationFailed, ScalingEvent, TaskEvent, WorkerEvent
from ._metrics import TaskMetrics
from ._stats import TaskStats

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise ImportError(
        "tasker_async.otel needs opentelemetry-api: install the extra, pip install 'tasker-async[otel]'"
    ) from exc

if TYPE_CHECKING:
    from typing import Self

    from ._manager import AsyncManager

__all__ = ("OtelMetrics", "instrument")

# The runs TaskMetrics times too: a task cancelled or aborted midway counts as neither.
_TIMED = frozenset(("succeeded", "failed", "timed_out"))
_FAILED = frozenset(("failed", "timed_out", "aborted"))
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_Fields = tuple[tuple[dict[str, str], str], ...]  # (attributes, field of stats() or metrics()) per series

# name, unit, description, series: read from stats() at each collection.
_STATS_GAUGES: tuple[tuple[str, str, str, _Fields], ...] = (
    ("workers.base", "{worker}", "The configured worker_count.", (({}, "base_workers"),)),
    ("workers.active", "{worker}", "Base and burst workers now holding a resource.", (({}, "active_workers"),)),
    ("workers.burst", "{worker}", "Burst workers now alive.", (({}, "burst_workers"),)),
    (
        "tasks.queued",
        "{task}",
        "Tasks waiting, by queue.",
        (({"queue": "main"}, "queued_tasks"), ({"queue": "priority"}, "priority_tasks")),
    ),
    ("tasks.running", "{task}", "Tasks a worker is running now.", (({}, "running_tasks"),)),
    ("resources.available", "{resource}", "Idle resources in the run_task pool.", (({}, "available_resources"),)),
)
# The same, from metrics().
_METRICS_GAUGES: tuple[tuple[str, str, str, _Fields], ...] = (
    ("task.arrival_rate", "{task}/s", "Tasks accepted per second, recently.", (({}, "task_arrival_rate"),)),
    ("task.completion_rate", "{task}/s", "Tasks succeeded per second, recently.", (({}, "task_completion_rate"),)),
    ("task.success_ratio", "1", "Succeeded / (succeeded + failed) since start.", (({}, "success_rate"),)),
    (
        "task.execution_time",
        "s",
        "Run time quantiles since start.",
        (
            ({"quantile": "0.5"}, "p50_execution_time"),
            ({"quantile": "0.95"}, "p95_execution_time"),
            ({"quantile": "0.99"}, "p99_execution_time"),
        ),
    ),
    ("task.execution_time.average", "s", "Mean run time since start.", (({}, "average_execution_time"),)),
    ("task.wait_time", "s", "Wait time quantiles since start.", (({"quantile": "0.95"}, "p95_wait_time"),)),
    ("task.wait_time.average", "s", "Mean wait time since start.", (({}, "average_wait_time"),)),
)


class _Trace:
    """What a task's span needs from before its end: where it was submitted, and its runs."""

    __slots__ = ("context", "marks")

    def __init__(self, context: otel_context.Context) -> None:
        self.context = context
        self.marks: list[tuple[str, float, int]] = []  # (event name, monotonic time, attempt)


class OtelMetrics:
    """A manager's OpenTelemetry instruments and spans; make one with :func:`instrument`.

    It is the lifecycle hook :func:`instrument` registered: calling it with an
    event records the event.

    Attributes:
        prefix: the prefix of every instrument name and span attribute.
        tracer: the tracer spans are made with, if any.
    """

    def __init__(
        self,
        manager: AsyncManager[Any],
        *,
        meter_provider: MeterProvider | None = None,
        tracer: Tracer | None = None,
        prefix: str = "tasker",
    ) -> None:
        """Create the instruments and attach to ``manager``; see :func:`instrument`."""
        from . import __version__

        provider = otel_metrics.get_meter_provider() if meter_provider is None else meter_provider
        meter = provider.get_meter("tasker_async", __version__)
        self.prefix = p = prefix
        self.tracer = tracer
        self._manager: AsyncManager[Any] | None = manager
        self._traces: dict[int, _Trace] = {}
        self._submitted = meter.create_counter(f"{p}.tasks.submitted", "{task}", "Tasks accepted into a queue.")
        self._finished = meter.create_counter(f"{p}.tasks.finished", "{task}", "Tasks that ended, by outcome.")
        self._retries = meter.create_counter(
            f"{p}.task.retries", "{retry}", "Tasks re-queued after an unhealthy error."
        )
        self._workers = meter.create_counter(f"{p}.worker.events", "{event}", "Workers created, destroyed or replaced.")
        self._creation_failures = meter.create_counter(
            f"{p}.resource.creation_failures", "{failure}", "on_create failures."
        )
        self._scaling = meter.create_counter(f"{p}.scaling.events", "{event}", "Burst scaling decisions, by kind.")
        self._run = meter.create_histogram(
            f"{p}.task.run.duration",
            "s",
            "Run time of tasks that succeeded, failed or timed out.",
            explicit_bucket_boundaries_advisory=_BUCKETS,
        )
        self._wait = meter.create_histogram(
            f"{p}.task.wait.duration",
            "s",
            "Submission to the start of the last run, of tasks that succeeded, failed or timed out.",
            explicit_bucket_boundaries_advisory=_BUCKETS,
        )
        for gauges, from_metrics in ((_STATS_GAUGES, False), (_METRICS_GAUGES, True)):
            for name, unit, description, fields in gauges:
                observe = self._observer(fields, from_metrics=from_metrics)
                meter.create_observable_gauge(f"{p}.{name}", [observe], unit, description)
        manager.add_hook(self)

    def _observer(self, fields: _Fields, *, from_metrics: bool) -> Callable[[CallbackOptions], list[Observation]]:
        def observe(options: CallbackOptions) -> list[Observation]:
            manager = self._manager
            if manager is None:
                return []
            snapshot: TaskStats | TaskMetrics = manager.metrics() if from_metrics else manager.stats()
            return [Observation(getattr(snapshot, field), attributes) for attributes, field in fields]

        return observe

    def __call__(self, event: LifecycleEvent) -> None:
        """Record ``event`` (the manager calls this; it must not block)."""
        if isinstance(event, TaskEvent):
            kind = event.kind
            if kind == "queued":
                self._submitted.add(1)
                if self.tracer is not None:
                    self._traces[event.task_id] = _Trace(otel_context.get_current())
            elif kind == "started" or kind == "retried":
                if kind == "retried":
                    self._retries.add(1)
                trace = self._traces.get(event.task_id)
                if trace is not None:
                    at = event.started_at if kind == "started" else event.finished_at
                    trace.marks.append((kind, time.monotonic() if at is None else at, event.attempt))
            else:
                self._finished.add(1, {"outcome": kind})
                if kind in _TIMED:
                    run, wait = event.run_time, event.wait_time
                    if run is not None and wait is not None:
                        self._run.record(run)
                        self._wait.record(wait)
                if self.tracer is not None:
                    self._span(self.tracer, event, self._traces.pop(event.task_id, None))
        elif isinstance(event, WorkerEvent):
            self._workers.add(1, {"kind": event.kind})
        elif isinstance(event, ResourceCreationFailed):
            self._creation_failures.add(1)
        elif isinstance(event, ScalingEvent):
            self._scaling.add(1, {"kind": event.kind})

    def _span(self, tracer: Tracer, event: TaskEvent, trace: _Trace | None) -> None:
        """Make and end the span of a task that just ended."""
        # One reading of both clocks: span times are epoch ns, event times are time.monotonic().
        wall_ns, mono = time.time_ns(), time.monotonic()

        def ns(at: float) -> int:
            return wall_ns - round((mono - at) * 1e9)

        p = self.prefix
        attributes: dict[str, str | bool | int | float] = {
            f"{p}.task.name": event.name,
            f"{p}.task.attempt": event.attempt,
            f"{p}.task.priority": event.priority,
            f"{p}.task.outcome": event.kind,
        }
        if event.wait_time is not None:
            attributes[f"{p}.task.wait_seconds"] = event.wait_time
        if event.run_time is not None:
            attributes[f"{p}.task.run_seconds"] = event.run_time
        # Without a trace (run_task, or a task queued before instrument()) the caller's context is current.
        parent = trace.context if trace is not None else None
        span = tracer.start_span(event.name, parent, SpanKind.INTERNAL, attributes, start_time=ns(event.queued_at))
        marks = trace.marks if trace is not None else []
        if not marks and event.started_at is not None:
            marks = [("started", event.started_at, event.attempt)]
        for name, at, attempt in marks:
            span.add_event(name, {f"{p}.task.attempt": attempt}, timestamp=ns(at))
        end = ns(mono if event.finished_at is None else event.finished_at)
        if event.kind in _FAILED:
            if event.error is not None:
                span.record_exception(event.error, timestamp=end, escaped=True)
            span.set_status(Status(StatusCode.ERROR, event.kind if event.error is None else repr(event.error)))
        span.end(end_time=end)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._manager is None

    def close(self) -> None:
        """Detach from the manager; calling it again does nothing.

        OpenTelemetry cannot remove instruments: from now on the counters
        keep their totals and the gauges report nothing.
        """
        manager, self._manager = self._manager, None
        self._traces.clear()
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
        """Show the prefix and whether it is attached, e.g. ``<OtelMetrics prefix='tasker' attached>``."""
        return f"<OtelMetrics prefix={self.prefix!r} {'closed' if self.closed else 'attached'}>"


def instrument(
    manager: AsyncManager[Any],
    *,
    meter_provider: MeterProvider | None = None,
    tracer: Tracer | None = None,
    prefix: str = "tasker",
) -> OtelMetrics:
    """Record ``manager``'s events, stats and metrics as OpenTelemetry metrics, and optionally spans.

    Events before this call are not recorded; the ``stats()`` and
    ``metrics()`` gauges cover the manager's whole life.

    Args:
        manager: the manager to watch, started or not.
        meter_provider: where the instruments are made (``None``: the global meter provider).
        tracer: if given, each task gets a span named after its function,
            from its submission to its end, child of the span current where
            it was submitted; with a ``started`` event per run and a
            ``retried`` event per re-queue, its name, attempt, priority,
            wait and run seconds and outcome as attributes, and status ERROR
            (with the exception recorded) when it failed, timed out or was
            aborted. ``run_task`` calls get a span too.
        prefix: the start of every instrument name and span attribute, e.g.
            ``tasker`` gives ``tasker.tasks.finished``.

    Returns:
        The instrumentation; call its ``close()`` to detach.
    """
    return OtelMetrics(manager, meter_provider=meter_provider, tracer=tracer, prefix=prefix)
