"""The task ledger: the one owner of every accepted task, from ``accept`` to its single end.

A task is *unfinished* from the moment it is accepted until :meth:`TaskLedger.finish`
settles it, exactly once, whoever ends it: the worker that ran it, a caller that
gave up while it waited, ``kill()``, the creation breaker, or the failure path
itself. Every end goes through ``finish`` — the worker's success path does the
same inline, as it is the measured hot path — so the durable layer (and any
other observer) has one place to watch. ``stop()`` is done draining when
nothing is unfinished.

Everything here runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any

from .._observe.collector import DefaultCollector
from .._observe.events import EventHooks, TaskEvent, TaskEventKind
from .._observe.metrics import MetricsCollector, TaskLifecycleTimestamps
from .handle import DELAYED, QUEUED, RUNNING, SETTLED, RunOptions, TaskHandle
from .names import task_name
from .queue import JobQueue

__all__ = ("NEVER", "TaskLedger")

# The supervisor's wake-up mark while no early decision is wanted: ``unfinished`` never gets there.
NEVER = sys.maxsize


def _is_queued(job: TaskHandle[Any]) -> bool:
    """Whether a task in a lane is still waiting there (not cancelled where it lay)."""
    return job._phase == QUEUED


class TaskLedger:
    """Accepts, re-queues, abandons and finishes tasks; counts what is unfinished.

    Args:
        queue_size: ``Config.max_queue_size`` (0: unbounded).
        collector: the metrics collector; the built-in one is fed inline.
        hooks: the manager's lifecycle hooks.
        default_timeout: ``Config.task_timeout``.
        cancel_run: cancels the run of a task whose caller gave up.
        refusal: the error a task due back from a retry delay gets instead
            of a queue slot, or ``None`` while workers can take it.
        drained: called once nothing is unfinished while draining.
    """

    def __init__(
        self,
        *,
        queue_size: int,
        collector: MetricsCollector,
        hooks: EventHooks,
        default_timeout: float | None,
        cancel_run: Callable[[TaskHandle[Any]], None],
        refusal: Callable[[], BaseException | None],
        drained: Callable[[], None],
    ) -> None:
        """Start with no task."""
        self.queue: JobQueue[TaskHandle[Any]] = JobQueue(queue_size, _is_queued)
        self.collector = collector
        # The built-in collector is fed inline, through its fast feed (see _observe.collector).
        self.builtin = collector if type(collector) is DefaultCollector else None
        self.hooks = hooks
        self.unfinished = 0  # accepted and not yet finished: queued, delayed or running
        # Tasks waiting out a retry delay, and the timer that will queue each again
        # (None once it fired): kept here rather than on each task, which stays smaller.
        self.delayed: dict[TaskHandle[Any], asyncio.TimerHandle | None] = {}
        self.draining = False  # stop() began: tell ``drained`` once nothing is unfinished
        self.drained = drained
        self._cancel_run = cancel_run
        self._refusal = refusal
        self.default_timeout = default_timeout
        # What most tasks run with, and the few other RunOptions in use (see options()).
        self.default_options = RunOptions(self, priority=False, once=False, timeout=default_timeout)
        self._options: dict[tuple[bool, bool, float | None], RunOptions] = {}
        # The supervisor's early wake-up: accept() sets the event when no worker is
        # parked and ``unfinished`` passes the mark (see _scaling.supervisor._next_turn).
        self.scale_wake = asyncio.Event()
        self.scale_wake_at = NEVER
        # Tasks waiting outside this process that this manager's workers may take (a durable
        # store's backlog, told by its consumer): the scaling policy counts them as queued.
        self.outside_backlog = 0

    def options(self, priority: bool, once: bool, timeout: float | None) -> RunOptions:
        """The shared ``RunOptions`` for these settings (``timeout`` already checked)."""
        if not priority and not once and timeout == self.default_timeout:
            return self.default_options
        key = (priority, once, timeout)
        options = self._options.get(key)
        if options is None:
            if len(self._options) >= 64:
                self._options.clear()  # a caller choosing ever new timeouts: share nothing rather than hoard
            options = self._options[key] = RunOptions(self, priority=priority, once=once, timeout=timeout)
        return options

    def accept(
        self, job: TaskHandle[Any], fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], options: RunOptions
    ) -> None:
        """Record a new task on ``job`` (a fresh one) and queue it.

        The caller has checked the state and the room. Every submission runs
        this, so the handle's fields (``TaskHandle``'s), the collector's arrival
        count (``DefaultCollector``'s fast feed) and the queue's ``put_nowait``
        are written inline: each a call less per task.
        """
        job._fn = fn
        job._args = args
        job._options = options
        job._queued_at = monotonic()
        job._phase = QUEUED
        job._attempts = 0
        self.unfinished += 1
        if self.builtin is not None:
            self.builtin.arrived += 1
        else:
            self.collector.record_arrival()
        queue = self.queue
        (queue.priority if options.priority else queue.main).append(job)
        if queue.takers or queue.spare_takers:
            queue.wake_taker()
        elif self.unfinished > self.scale_wake_at:
            # No worker free and a backlog past the supervisor's mark: let it decide now, once.
            self.scale_wake_at = NEVER
            self.scale_wake.set()
        if self.hooks.active:
            self.event("queued", job)

    def set_outside_backlog(self, count: int) -> None:
        """Tell the scaling policy how many tasks wait outside the process for these workers."""
        self.outside_backlog = max(0, count)

    def start_draining(self) -> None:
        """``stop()`` began: call ``drained`` once nothing is unfinished (now, if nothing is)."""
        self.draining = True
        if not self.unfinished:
            self.drained()

    def arm_scale_wake(self, mark: int) -> None:
        """Wake the supervisor once ``unfinished`` passes ``mark`` with no worker parked (``NEVER``: don't)."""
        self.scale_wake_at = mark

    @property
    def running(self) -> int:
        """Tasks held by a worker now: whatever is unfinished and not waiting.

        Derived rather than counted, so the hot path writes one counter less.
        """
        return self.unfinished - len(self.queue) - len(self.delayed)

    def finish(
        self,
        job: TaskHandle[Any],
        kind: TaskEventKind,
        started: float | None = None,
        finished: float | None = None,
        error: BaseException | None = None,
        *,
        count: bool = False,
    ) -> None:
        """End ``job``: give it ``error`` (unless its caller cancelled it first), settle it, report it.

        The one way a task ends; exactly once per task. A result is set by the
        worker before it calls this (or inline, on the hot path).

        Args:
            kind: what the hooks are told.
            started: when its last run started, if it ran.
            finished: when it ended (``None``: it never ran and ends now).
            count: record it as a failure in the metrics (aborts and
                cancellations are neither).
        """
        if job.cancelled():
            # Its caller cancelled it while it ended some other way: that is all it was.
            kind, error, count = "cancelled", None, False
        if error is not None and not job.done():
            job.set_exception(error)
        try:
            if count:
                now = monotonic() if finished is None else finished
                self.collector.record_failure(TaskLifecycleTimestamps(job._queued_at, started or now, now))
        finally:
            # Settled and reported even if a custom collector raised: one outcome, one event.
            # (The phase is written inline, like ``accept``'s fields: this ends every task that fails.)
            job._phase = SETTLED
            self.unfinished -= 1
            if not self.unfinished and self.draining:
                self.drained()
            if self.hooks.active:
                self.event(kind, job, started, finished, error)

    def abandon(self, job: TaskHandle[Any]) -> None:
        """Make sure ``job``, whose caller gave up, never runs, or cancel its run."""
        state = job._phase
        if state == QUEUED:
            # Marked dead where it lies, then counted out of its lane: O(1) (see JobQueue.remove).
            job._settle()
            self.queue.remove(job._options.priority)
            self.finish(job, "cancelled")
        elif state == DELAYED:
            timer = self.delayed.pop(job, None)
            if timer is not None:
                timer.cancel()
            self.finish(job, "cancelled")
        elif state == RUNNING:
            self._cancel_run(job)

    def requeue(
        self, job: TaskHandle[Any], started: float, finished: float, error: BaseException, delay: float
    ) -> None:
        """Queue ``job`` again on the priority lane, after ``delay`` seconds.

        Retries bypass ``max_queue_size``: a retry never fails for lack of room.
        ``started``, ``finished`` and ``error`` describe the run that asked for it, for the hooks.
        """
        self.collector.record_retry()
        options = job._options
        if not options.priority:
            job._run_with(self.options(True, options.once, options.timeout))
        if self.hooks.active:
            self.event("retried", job, started, finished, error)
        # The next run's wait starts now, not at the first submission.
        if delay > 0:
            job._wait_again(DELAYED)
            self.delayed[job] = asyncio.get_running_loop().call_later(delay, self._release, job)
        else:
            job._wait_again(QUEUED)
            self.queue.put_nowait(job, True)

    def _release(self, job: TaskHandle[Any]) -> None:
        refusal = self._refusal()
        if refusal is not None:
            # No worker can take it: fail it fast, like the tasks that were queued.
            self.delayed[job] = None
            self.fail_waiting(refusal)
            return
        del self.delayed[job]
        job._wait_again(QUEUED)
        self.queue.put_nowait(job, True)

    def fail_waiting(self, error: BaseException, kind: TaskEventKind = "failed") -> None:
        """End every queued and delayed task with ``error`` (the breaker opening, ``kill()``)."""
        waiting = self.queue.drain()
        for job, timer in self.delayed.items():
            if timer is not None:
                timer.cancel()
            waiting.append(job)
        self.delayed.clear()
        now = monotonic()
        for job in waiting:
            self.finish(job, kind, None, now, error, count=kind == "failed")

    def event(
        self,
        kind: TaskEventKind,
        job: TaskHandle[Any],
        started_at: float | None = None,
        finished_at: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Report what happened to ``job`` to the hooks (callers check ``self.hooks.active`` first)."""
        self.hooks.emit(
            TaskEvent(
                kind=kind,
                name=task_name(job._fn),
                task_id=id(job),
                priority=job._options.priority,
                attempt=job._attempts,
                queued_at=job._queued_at,
                started_at=started_at,
                finished_at=finished_at,
                error=error,
            )
        )
