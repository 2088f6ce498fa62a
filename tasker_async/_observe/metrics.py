"""Task metrics: the collector protocol, its records, and the built-in collector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = (
    "MetricsCollector",
    "TaskLifecycleTimestamps",
    "TaskMetrics",
)


class TaskLifecycleTimestamps(NamedTuple):
    """When one run of a task was queued, started and finished.

    Times are seconds on ``time.monotonic()``. A run starts when its task is
    queued and a worker is free for it (for a worker going straight on from
    its previous run, that run's end).
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
