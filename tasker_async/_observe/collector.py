"""The built-in metrics collector: cheap to feed, fixed in memory, exact enough to read.

Feeding it is on every task's hot path, so it does almost nothing per task:
an arrival bumps a counter, a success appends its wait and run times to a
short flat buffer. The buffer is folded into two log-bucketed histograms a
batch at a time when a worker runs out of work (``flush``, while the CPU is
spare), when it fills, when the clock moves into a new rate slot, and on
every read, so it never holds more than a slot's worth of tasks (and at most
``FOLD_AT``). Folding inline only when it must keeps it off task latency.
The arrivals and successes between two folds are spread evenly over the
time between them, for the rates.

The fast feed: a manager feeds its built-in collector inline rather than
through ``record_arrival``/``record_completion`` (a method call per task is
a measurable share of the hot path), through three documented attributes
and one method — ``arrived += 1`` for an arrival; for a success,
``pending.extend((wait, run))`` then ``fold_due(finished_at)`` once
``len(pending) >= FOLD_LEN`` or ``finished_at >= fold_by``. That is exactly
what ``record_arrival`` and ``record_completion`` do; anything else goes
through the methods.

Only the thread that feeds the collector (the event loop's) folds: a read
from another thread (a Prometheus scrape, an OpenTelemetry exporter) sees
what was folded last, at most one rate slot or ``FOLD_AT`` tasks old, and
never races the loop over the buffer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .histogram import LogHistogram
from .metrics import TaskLifecycleTimestamps, TaskMetrics
from .rates import WindowRate

__all__ = ("DefaultCollector",)

FOLD_AT = 512
FLUSH_AT = 16  # below this, an idle flush is not worth its fixed cost; reads and slot changes fold anyway
# The same, in floats of the flat buffer: two per task.
FOLD_LEN = 2 * FOLD_AT
FLUSH_LEN = 2 * FLUSH_AT


class DefaultCollector:
    """The built-in collector: totals, log-bucketed percentiles and windowed rates.

    Memory is fixed (two histograms, two rate rings, a buffer of at most
    ``FOLD_AT`` stamps), whatever the number of tasks; percentiles are within
    1% of the exact nearest-rank values.

    Args:
        window: seconds the arrival and completion rates look back over.
        clock: the clock arrivals are stamped with; it must be the one the
            ``stamps`` passed in come from (``time.monotonic`` for a manager).

    Attributes:
        arrived: tasks accepted so far (the fast feed adds to it).
        pending: wait and run times of successes not folded yet, two floats
            a task (the fast feed extends it).
        fold_by: when the current rate slot ends: a success finishing then
            or later calls ``fold_due``.

    Raises:
        ValueError: ``window`` is not a positive number.
    """

    __slots__ = (
        "_arrivals",
        "_clock",
        "_completed",
        "_completions",
        "_exec",
        "_failed",
        "_folded_arrivals",
        "_folder",
        "_last_fold",
        "_retried",
        "_slot_width",
        "_wait",
        "arrived",
        "fold_by",
        "pending",
    )

    def __init__(self, *, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        """Start with every count at zero."""
        if not window > 0:
            raise ValueError(f"window must be a number of seconds > 0, got {window!r}")
        now = clock()
        self._clock = clock
        self._arrivals = WindowRate(window, now)
        self._completions = WindowRate(window, now)
        self._slot_width = self._arrivals._width
        self._exec = LogHistogram()
        self._wait = LogHistogram()
        # The successes not folded yet, flat: wait, run, wait, run...
        # (floats, unlike tuples, are no work for the garbage collector).
        self.pending: list[float] = []
        self.arrived = 0
        self._folded_arrivals = 0
        self._completed = 0
        self._failed = 0
        self._retried = 0
        self._last_fold = now
        self.fold_by = now + self._slot_width
        self._folder: int | None = None  # the thread that feeds (and so folds), once known

    def record_arrival(self) -> None:
        """Count one accepted task."""
        self.arrived += 1

    def record_completion(self, stamps: tuple[float, float, float]) -> None:
        """Count one success and its times: ``(queued_at, started_at, finished_at)``, a plain tuple or not."""
        queued_at, started_at, finished_at = stamps
        # A manager's workers feed the built-in collector the same way, inline (``_core.worker._serve``).
        pending = self.pending
        pending.extend((started_at - queued_at, finished_at - started_at))
        if len(pending) >= FOLD_LEN or finished_at >= self.fold_by:
            self.fold_due(finished_at)

    def record_failure(self, stamps: TaskLifecycleTimestamps) -> None:
        """Count one failure and its times."""
        queued_at, started_at, finished_at = stamps
        self._failed += 1
        self._exec.add(finished_at - started_at)
        self._wait.add(started_at - queued_at)

    def flush(self) -> None:
        """Fold the buffer now; the manager calls it when a worker is about to go idle.

        Folding while there is spare time keeps the fold off the latency of
        the tasks that follow.
        """
        if len(self.pending) >= FLUSH_LEN:
            self.fold_due(self._clock())

    def record_retry(self) -> None:
        """Count one re-queue."""
        self._retried += 1

    def fold_due(self, now: float) -> None:
        """Fold the buffer now, from the feeding thread (which becomes the only one that folds)."""
        self._folder = threading.get_ident()
        self._fold(now)

    def _fold(self, now: float) -> None:
        pending = self.pending
        done = len(pending) // 2
        if done:
            self._completed += done
            # Columns by slicing: in C, and no object per task.
            waits = pending[0::2]
            runs = pending[1::2]
            pending.clear()
            self._exec.add_many(runs)
            self._wait.add_many(waits)
            self._completions.spread(done, self._last_fold, now)
        arrived = self.arrived - self._folded_arrivals
        if arrived:
            self._arrivals.spread(arrived, self._last_fold, now)
            self._folded_arrivals = self.arrived
        self._last_fold = max(self._last_fold, now)
        self.fold_by = (int(now / self._slot_width) + 1) * self._slot_width

    def metrics(self) -> TaskMetrics:
        """Return the totals, percentiles and recent rates."""
        now = self._clock()
        if self._folder is None or self._folder == threading.get_ident():
            self._fold(now)
        runs = self._exec
        completed = self._completed
        failed = self._failed
        ended = completed + failed
        p50, p95, p99 = runs.quantiles((0.5, 0.95, 0.99))
        (wait_p95,) = self._wait.quantiles((0.95,))
        return TaskMetrics(
            total_tasks_arrived=self.arrived,
            total_tasks_completed=completed,
            total_tasks_failed=failed,
            total_tasks_retried=self._retried,
            success_rate=completed / ended if ended else 0.0,
            failure_rate=failed / ended if ended else 0.0,
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
