"""Task metrics: the collector protocol, its records, and the built-in collector."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

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
    """Aggregated task metrics; times are in seconds.

    ``total_tasks_completed`` counts successes only. A task cancelled by its
    caller or aborted by ``kill()`` counts as neither completed nor failed.
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
    average_wait_time: float = 0.0


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
    """Built-in collector: running totals and sums, constant memory."""

    __slots__ = (
        "_arrived",
        "_completed",
        "_exec_max",
        "_exec_min",
        "_exec_sum",
        "_failed",
        "_retried",
        "_wait_sum",
    )

    def __init__(self) -> None:
        """Start with every count at zero."""
        self._arrived = 0
        self._completed = 0
        self._failed = 0
        self._retried = 0
        self._exec_sum = 0.0
        self._exec_min = math.inf
        self._exec_max = 0.0
        self._wait_sum = 0.0

    def record_arrival(self) -> None:
        """Count one accepted task."""
        self._arrived += 1

    def record_completion(self, stamps: TaskLifecycleTimestamps) -> None:
        """Count one success and its times."""
        self._completed += 1
        queued_at, started_at, finished_at = stamps
        run = finished_at - started_at
        self._exec_sum += run
        if run < self._exec_min:
            self._exec_min = run
        if run > self._exec_max:
            self._exec_max = run
        self._wait_sum += started_at - queued_at

    def record_failure(self, stamps: TaskLifecycleTimestamps) -> None:
        """Count one failure and its times."""
        self._failed += 1
        queued_at, started_at, finished_at = stamps
        run = finished_at - started_at
        self._exec_sum += run
        if run < self._exec_min:
            self._exec_min = run
        if run > self._exec_max:
            self._exec_max = run
        self._wait_sum += started_at - queued_at

    def record_retry(self) -> None:
        """Count one re-queue."""
        self._retried += 1

    def metrics(self) -> TaskMetrics:
        """Return the totals, rates and averages recorded so far."""
        ended = self._completed + self._failed
        if not ended:
            return TaskMetrics(total_tasks_arrived=self._arrived, total_tasks_retried=self._retried)
        return TaskMetrics(
            total_tasks_arrived=self._arrived,
            total_tasks_completed=self._completed,
            total_tasks_failed=self._failed,
            total_tasks_retried=self._retried,
            success_rate=self._completed / ended,
            failure_rate=self._failed / ended,
            average_execution_time=self._exec_sum / ended,
            min_execution_time=self._exec_min,
            max_execution_time=self._exec_max,
            average_wait_time=self._wait_sum / ended,
        )
