"""What the Prometheus and OpenTelemetry exporters share: the hook that feeds the metrics of one table.

The table (``exporter_table``, and ``exporter_durable`` for a durable consumer) names each
metric under both of its names; this skeleton makes every instrument through the exporter's
own three makers, counts the events, and hands the gauges what they read.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .events import LifecycleEvent, TaskEvent
from .exporter_durable import JOB_EVENTS, QUEUE_GAUGES, RUN_EVENTS, STEP_EVENTS, QueueSource, flow_event, job_event_kind
from .exporter_table import COUNTERS, METRICS_GAUGES, RUN_TIME, STATS_GAUGES, TIMED, WAIT_TIME, Gauge, Metric, counted
from .metrics import TaskMetrics
from .stats import TaskStats

if TYPE_CHECKING:
    from typing import Self

    from .._api.manager import AsyncManager

__all__ = ("Count", "Exporter", "Observe", "Read", "Source", "counted", "needs_extra")

Count = Callable[[], object]  # adds one to a counter's series
Observe = Callable[[float], object]  # records one value in a histogram
Read = Callable[[], object | None]  # the snapshot some gauges read now; None once the exporter is closed
Source = tuple[tuple[Gauge, ...], Read]  # gauges, and what reads the snapshot they read


def needs_extra(extra: str, distribution: str) -> ImportError:
    """The error ``tasker_async.<extra>`` raises when ``distribution``, its dependency, is not installed."""
    message = f"tasker_async.{extra} needs {distribution}: install the extra, pip install 'tasker-async[{extra}]'"
    return ImportError(message)


class Exporter(abc.ABC):
    """A lifecycle hook that exports a manager's events, stats and metrics, and a durable consumer's.

    A subclass's ``__init__`` ends with :meth:`_attach`, which makes the
    instruments through :meth:`_counter`, :meth:`_histogram` and
    :meth:`_gauges`, in that order, then registers the hook.
    """

    def _attach(self, manager: AsyncManager[Any], prefix: str, consumer: QueueSource | None = None) -> None:
        """Make every instrument, its name starting with ``prefix``, then start counting ``manager``'s events.

        With ``consumer`` (a durable ``Consumer`` feeding ``manager``), its queues' gauges and the
        job events' counter too.
        """
        if consumer is not None and not callable(getattr(consumer, "queue_stats", None)):
            raise TypeError(f"consumer must be a tasker_async.durable.Consumer, got {consumer!r}")
        self.prefix = prefix
        self._manager: AsyncManager[Any] | None = manager
        self._consumer = consumer
        self._counts = {(row, value): count for row in COUNTERS for value, count in self._counter(row).items()}
        self._jobs = None if consumer is None else self._counter(JOB_EVENTS)
        self._flows = {} if consumer is None else {row: self._counter(row) for row in (STEP_EVENTS, RUN_EVENTS)}
        self._run_time = self._histogram(RUN_TIME)
        self._wait_time = self._histogram(WAIT_TIME)
        sources: list[Source] = [(STATS_GAUGES, self._stats), (METRICS_GAUGES, self._metrics)]
        if consumer is not None:
            sources.append((QUEUE_GAUGES, self._queue_counts))
        self._gauges(sources)
        manager.add_hook(self)

    @abc.abstractmethod
    def _counter(self, row: Metric) -> Mapping[str, Count]:
        """Make the counter of ``row``: what adds one to each of its series, by label value."""

    @abc.abstractmethod
    def _histogram(self, row: Metric) -> Observe:
        """Make the histogram of ``row`` (seconds, one series): what records a value in it."""

    @abc.abstractmethod
    def _gauges(self, sources: Sequence[Source]) -> None:
        """Make the gauges of each source, each read from its source's snapshot at a scrape."""

    def _stats(self) -> TaskStats | None:
        manager = self._manager
        return None if manager is None else manager.stats()

    def _metrics(self) -> TaskMetrics | None:
        manager = self._manager
        return None if manager is None else manager.metrics()

    def _queue_counts(self) -> Mapping[str, object] | None:
        consumer = self._consumer
        return None if consumer is None else consumer.queue_stats()

    def __call__(self, event: LifecycleEvent) -> None:
        """Count ``event`` (the manager calls this; it must not block)."""
        key = counted(event)
        if key is not None:
            self._counts[key]()
        elif self._jobs is not None and (kind := job_event_kind(event)) is not None:
            self._jobs[kind]()
        elif self._flows and (flow := flow_event(event)) is not None:
            self._flows[flow[0]][flow[1]]()
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
        """Detach from the manager (and the consumer); calling it again does nothing."""
        manager, self._manager = self._manager, None
        self._consumer = None
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
