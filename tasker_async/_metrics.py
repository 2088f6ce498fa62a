"""Task metrics: the collector protocol, its records, and the built-in collector."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from ._histogram import LogHistogram
from ._rates import WindowRate

__all__ = (
    "DefaultCollector",
    "MetricsCollector",
    "TaskLifecycleTimestamps",
    "TaskMetrics",
)


class TaskLifecycleTimestamps(NamedTuple):
    """When one run of a task was queued, started and finished.

    Times are seconds on ``time.monotonic()``.
    """

    queued_at: float
    started_at: float
    finished_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskMetrics:
    """Aggregated task metrics; times are in seconds, rates in tasks per second.

    ``total_tasks_completed`` counts successes only, and
    ``success_rate = completed / (completed + failed)``. A task cancelled by
    its caller or aborted by ``kill()`` counts as neither. Execution and wait
    times cover every finished run, successful or not; the two rates cover
    the collector's recent window, not the manager's lifetime.
    """

    total_tasks_arrived: int = 0
    total_tasks_completed: int = 0
    total_tasks_failed: int = 0
    total_tasks_retried: int = 0
    success_rate: float = 0.0
    failure_rate: float = 0.0
    average_execution_time: float = 0.0
    min_execution_time: float = 0.0
    max_execution_time: float = 0.0
    p50_execution_time: float = 0.0
    p95_execution_time: float = 0.0
    p99_execution_time: float = 0.0
    average_wait_time: float = 0.0
    p95_wait_time: float = 0.0
    task_arrival_rate: float = 0.0
    task_completion_rate: float = 0.0


@runtime_checkable
class MetricsCollector(Protocol):
    """What the manager reports to; plug your own through ``Config.collector``.

    The manager calls these on the event loop's thread, on the task hot path:
    keep them cheap and never raise.
    """

    def record_arrival(self) -> None:
        """Count a task accepted into a queue."""

    def record_completion(self, stamps: TaskLifecycleTimestamps) -> None:
        """Count a task whose run succeeded."""

    def record_failure(self, stamps: TaskLifecycleTimestamps) -> None:
        """Count a task that ended with an error (its own, a timeout, no retries left)."""

    def record_retry(self) -> None:
        """Count a task re-queued after an unhealthy error."""

    def metrics(self) -> TaskMetrics:
        """Return a snapshot of everything recorded so far."""
        ...


class DefaultCollector:
    """The built-in collector: totals, log-bucketed percentiles and windowed rates.

    Memory is fixed (two histograms and two rate rings), whatever the number
    of tasks; percentiles are within 1% of the exact nearest-rank values.

    Args:
        window: seconds the arrival and completion rates look back over.
        clock: the clock arrivals are stamped with; it must be the one the
            ``stamps`` passed in come from (``time.monotonic`` for a manager).
    """

    __slots__ = ("_arrivals", "_clock", "_completions", "_exec", "_failed", "_retried", "_wait")

    def __init__(self, *, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        """Start with every count at zero."""
        if not window > 0:
            raise ValueError(f"window must be a number of seconds > 0, got {window!r}")
        now = clock()
        self._clock = clock
        self._arrivals = WindowRate(window, now)
        self._completions = WindowRate(window, now)
        self._exec = LogHistogram()
        self._wait = LogHistogram()
        self._failed = 0
        self._retried = 0

    def record_arrival(self) -> None:
        """Count one accepted task."""
        self._arrivals.add(self._clock())

    def record_completion(self, stamps: TaskLifecycleTimestamps) -> None:
        """Count one success and its times."""
        queued_at, started_at, finished_at = stamps
        self._exec.add(finished_at - started_at)
        self._wait.add(started_at - queued_at)
        self._completions.add(finished_at)

    def record_failure(self, stamps: TaskLifecycleTimestamps) -> None:
        """Count one failure and its times."""
        queued_at, started_at, finished_at = stamps
        self._failed += 1
        self._exec.add(finished_at - started_at)
        self._wait.add(started_at - queued_at)

    def record_retry(self) -> None:
        """Count one re-queue."""
        self._retried += 1

    def metrics(self) -> TaskMetrics:
        """Return the totals, percentiles and recent rates."""
        now = self._clock()
        runs = self._exec
        failed = self._failed
        completed = runs.count - failed
        p50, p95, p99 = runs.quantiles((0.5, 0.95, 0.99))
        (wait_p95,) = self._wait.quantiles((0.95,))
        return TaskMetrics(
            total_tasks_arrived=self._arrivals.total,
            total_tasks_completed=completed,
            total_tasks_failed=failed,
            total_tasks_retried=self._retried,
            success_rate=completed / runs.count if runs.count else 0.0,
            failure_rate=failed / runs.count if runs.count else 0.0,
            average_execution_time=runs.total / runs.count if runs.count else 0.0,
            min_execution_time=runs.min if runs.count else 0.0,
            max_execution_time=runs.max,
            p50_execution_time=p50,
            p95_execution_time=p95,
            p99_execution_time=p99,
            average_wait_time=self._wait.total / runs.count if runs.count else 0.0,
            p95_wait_time=wait_p95,
            task_arrival_rate=self._arrivals.rate(now),
            task_completion_rate=self._completions.rate(now),
        )
