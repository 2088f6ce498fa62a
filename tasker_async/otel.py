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
span current where it was submitted. With ``consumer=``, a durable consumer's
queue depths per lane, running and dead jobs, and its job events
(``<prefix>.durable.job.events{event="redelivered"}``...) too.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._api.manager import AsyncManager
from ._observe.events import LifecycleEvent, TaskEvent
from ._observe.exporter import Count, Exporter, Observe, Read, Source, needs_extra
from ._observe.exporter_table import Gauge, Metric

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise needs_extra("otel", "opentelemetry-api") from exc

if TYPE_CHECKING:
    from .durable import Consumer

__all__ = ("OtelMetrics", "instrument")

_FAILED = frozenset(("failed", "timed_out", "aborted"))
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class _Trace:
    """What a task's span needs from before its end: where it was submitted, and its runs."""

    __slots__ = ("context", "marks")

    def __init__(self, context: otel_context.Context) -> None:
        self.context = context
        self.marks: list[tuple[str, float, int]] = []  # (event name, monotonic time, attempt)


def _observer(gauge: Gauge, read: Read) -> Callable[[CallbackOptions], list[Observation]]:
    """The callback of ``gauge``'s observable gauge: it reads a snapshot, none once the exporter is closed."""

    def observe(options: CallbackOptions) -> list[Observation]:
        snapshot = read()
        if snapshot is None:
            return []
        return [Observation(reading, gauge.attributes_of(values)) for values, reading in gauge.read(snapshot)]

    return observe


class OtelMetrics(Exporter):
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
        consumer: Consumer | None = None,
        meter_provider: MeterProvider | None = None,
        tracer: Tracer | None = None,
        prefix: str = "tasker",
    ) -> None:
        """Create the instruments and attach to ``manager``; see :func:`instrument`."""
        from . import __version__

        provider = otel_metrics.get_meter_provider() if meter_provider is None else meter_provider
        self._meter = provider.get_meter("tasker_async", __version__)
        self.tracer = tracer
        self._traces: dict[int, _Trace] = {}
        self._attach(manager, prefix, consumer)

    def _counter(self, row: Metric) -> Mapping[str, Count]:
        counter = self._meter.create_counter(f"{self.prefix}.{row.otel}", row.unit, row.doc)
        if row.label is None:
            return {"": functools.partial(counter.add, 1)}
        return {value: functools.partial(counter.add, 1, row.attributes(value)) for value in row.values}

    def _histogram(self, row: Metric) -> Observe:
        name = f"{self.prefix}.{row.otel}"
        return self._meter.create_histogram(
            name, row.unit, row.doc, explicit_bucket_boundaries_advisory=_BUCKETS
        ).record

    def _gauges(self, sources: Sequence[Source]) -> None:
        for gauges, read in sources:
            for gauge in gauges:
                observe = _observer(gauge, read)
                description = gauge.doc if gauge.otel_doc is None else gauge.otel_doc
                self._meter.create_observable_gauge(f"{self.prefix}.{gauge.otel}", [observe], gauge.unit, description)

    def __call__(self, event: LifecycleEvent) -> None:
        """Record ``event`` (the manager calls this; it must not block)."""
        super().__call__(event)
        if self.tracer is not None and isinstance(event, TaskEvent):
            self._trace(self.tracer, event)

    def _trace(self, tracer: Tracer, event: TaskEvent) -> None:
        """Keep what ``event`` tells of its task's span, or make the span if the task ended."""
        kind = event.kind
        if kind == "queued":
            self._traces[event.task_id] = _Trace(otel_context.get_current())
        elif kind == "started" or kind == "retried":
            trace = self._traces.get(event.task_id)
            if trace is not None:
                at = event.started_at if kind == "started" else event.finished_at
                trace.marks.append((kind, time.monotonic() if at is None else at, event.attempt))
        else:
            self._span(tracer, event, self._traces.pop(event.task_id, None))

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

    def close(self) -> None:
        """Detach from the manager; calling it again does nothing.

        OpenTelemetry cannot remove instruments: from now on the counters
        keep their totals and the gauges report nothing.
        """
        super().close()
        self._traces.clear()


def instrument(
    manager: AsyncManager[Any],
    *,
    meter_provider: MeterProvider | None = None,
    tracer: Tracer | None = None,
    prefix: str = "tasker",
    consumer: Consumer | None = None,
) -> OtelMetrics:
    """Record ``manager``'s events, stats and metrics as OpenTelemetry metrics, and optionally spans.

    Events before this call are not recorded; the ``stats()`` and
    ``metrics()`` gauges cover the manager's whole life.

    With a durable ``consumer`` feeding ``manager``, also the observable
    gauges ``<prefix>.durable.jobs.ready{queue,lane}`` (``lane`` is
    ``priority`` or ``main``), ``<prefix>.durable.jobs.delayed{queue}``,
    ``<prefix>.durable.jobs.running{queue}`` and
    ``<prefix>.durable.jobs.dead{queue}`` of each queue it serves, read from
    ``consumer.queue_stats()``, and the counter
    ``<prefix>.durable.job.events{event}`` of the job events the manager's
    hooks are told (``delivered``, ``redelivered``, ``acked``, ``dead``,
    ``released``).

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
        consumer: a ``tasker_async.durable.Consumer`` feeding ``manager``,
            whose queues and job events to record too.

    Returns:
        The instrumentation; call its ``close()`` to detach.

    Raises:
        TypeError: ``consumer`` is not a durable consumer.
    """
    return OtelMetrics(manager, meter_provider=meter_provider, tracer=tracer, prefix=prefix, consumer=consumer)
