"""One ``run_task`` call as the metrics and the hooks see it: arrival, start, and exactly one end."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from time import monotonic

from .._observe.events import EventHooks, TaskEvent, TaskEventKind
from .._observe.metrics import MetricsCollector, TaskLifecycleTimestamps
from ..errors import TaskAbortedError, TaskTimeoutError
from .names import task_name

__all__ = ("SideRun",)

# Ids of run_task calls: small ints, never equal to a TaskHandle's id (its address), and never
# reused, as an address would be once a record is freed: events of two calls never share one.
_ids = itertools.count(1)


class SideRun:
    """The record of one ``run_task`` call; its id is never reused."""

    __slots__ = ("_collector", "_hooks", "fn", "queued", "started", "task_id")

    def __init__(self, fn: Callable[..., object], collector: MetricsCollector, hooks: EventHooks) -> None:
        """Count the call's arrival and report it ``queued``."""
        self.fn = fn
        self.task_id = next(_ids)
        self._collector = collector
        self._hooks = hooks
        self.queued = monotonic()
        self.started: float | None = None
        collector.record_arrival()
        if hooks.active:
            self.report("queued")

    def start(self, started: float) -> None:
        """The run starts now that it holds a resource."""
        self.started = started
        if self._hooks.active:
            self.report("started")

    def succeeded(self, finished: float) -> None:
        """The run returned at ``finished``."""
        assert self.started is not None
        self._collector.record_completion(TaskLifecycleTimestamps(self.queued, self.started, finished))
        if self._hooks.active:
            self.report("succeeded", finished)

    def failed(self, exc: BaseException, *, count: bool, finished: float | None = None) -> None:
        """The run (ended at ``finished``, default now), or the wait for a resource, raised ``exc``: a failure.

        Counted in the metrics if ``count``.
        """
        if finished is None:
            finished = monotonic()
        if count:
            started = finished if self.started is None else self.started
            self._collector.record_failure(TaskLifecycleTimestamps(self.queued, started, finished))
        if self._hooks.active:
            self.report("timed_out" if isinstance(exc, TaskTimeoutError) else "failed", finished, exc)

    def ended_by_cancellation(self, *, killed: bool) -> None:
        """The call was cancelled: by ``kill()`` (aborted) or by its own caller."""
        if self._hooks.active:
            if killed:
                when = "while run_task ran" if self.started is not None else "before run_task got a resource"
                self.report("aborted", monotonic(), TaskAbortedError(f"the manager was killed {when}"))
            else:
                self.report("cancelled", monotonic())

    def unstarted(self, exc: BaseException, *, killed: bool) -> None:
        """The call never got a resource: its one terminal event (and a failure counted as one)."""
        if isinstance(exc, asyncio.CancelledError):
            self.ended_by_cancellation(killed=killed)
        else:
            self.failed(exc, count=True)

    def report(self, kind: TaskEventKind, finished: float | None = None, error: BaseException | None = None) -> None:
        """Tell the hooks (callers check ``hooks.active`` first)."""
        self._hooks.emit(
            TaskEvent(
                kind=kind,
                name=task_name(self.fn),
                task_id=self.task_id,
                priority=False,
                attempt=1,
                queued_at=self.queued,
                started_at=self.started,
                finished_at=finished,
                error=error,
            )
        )
