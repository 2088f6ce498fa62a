"""The state a manager's workers, pool and public methods share, and the moves on it.

Everything here runs on the event loop's thread. A task is *unfinished*
from the moment it is accepted until it is settled, exactly once, by
whoever ends it: the worker that ran it, a caller that removed it from a
queue, or ``kill()``. ``stop()`` is done draining when nothing is unfinished.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from anyio.abc import TaskGroup

from ._cancel import cancel_running
from ._collector import DefaultCollector
from ._events import EventHooks, TaskEvent, TaskEventKind
from ._handle import DELAYED, QUEUED, RUNNING, SETTLED, RunOptions, TaskHandle
from ._metrics import MetricsCollector, TaskLifecycleTimestamps
from ._names import task_name
from ._queue import JobQueue
from ._ratelimit import StartLimiter
from ._resources import Resources
from ._stats import ManagerState
from ._supervisor import NEVER
from .errors import TaskAbortedError

if TYPE_CHECKING:
    from ._config import Config, LoggerProtocol
    from ._worker import Worker

__all__ = ("Runtime",)

R = TypeVar("R")


class Runtime(Resources[R], Generic[R]):
    """Counters, queues and resource lifecycle of one manager."""

    def __init__(self, config: Config[R]) -> None:
        """Take the settings out of ``config`` once, so the hot path reads plain attributes."""
        self.config = config
        self.log: logging.Logger | LoggerProtocol = config.logger or logging.getLogger("tasker_async")
        self.collector: MetricsCollector = config.collector or DefaultCollector()
        # The built-in collector is fed inline, without a method call per task (see _collector).
        self.builtin_collector = self.collector if type(self.collector) is DefaultCollector else None
        self.hooks = EventHooks(tuple(config.hooks), self.log)
        self.worker_ids = itertools.count(1)
        self.queue: JobQueue[TaskHandle[Any]] = JobQueue(config.max_queue_size, _is_queued)
        self.bounded = config.max_queue_size > 0
        self.max_retries = config.max_retries
        self.rng = config.rng or random.Random()
        self.limiter = StartLimiter(config.max_per_second, config.rate_limit_burst) if config.max_per_second else None
        self._init_breaker()
        self.default_timeout = config.task_timeout
        # What most tasks run with, and the few other RunOptions in use (see options()).
        self.default_options = RunOptions(self, priority=False, once=False, timeout=self.default_timeout)
        self._options: dict[tuple[bool, bool, float | None], RunOptions] = {}
        self.state: ManagerState = "created"
        self.accepting = False
        self.unfinished = 0  # accepted and not yet settled: queued, delayed or running
        self.side_runs = 0  # run_task calls in flight
        self.active_workers = 0  # workers holding a resource
        self.burst_workers = 0
        self.burst_workers_added = 0
        self.burst_workers_retired = 0
        assert config.max_worker_count is not None
        self.max_workers = config.max_worker_count
        self.creation_failures = 0
        self.workers: set[Worker] = set()
        # Tasks waiting out a retry delay, and the timer that will queue each again
        # (None once it fired): kept here rather than on each task, which stays smaller.
        self.delayed: dict[TaskHandle[Any], asyncio.TimerHandle | None] = {}
        self.tg: TaskGroup | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # set by start()
        # Set once the host task should cancel the workers: drained while stopping, or killed.
        self.closing = asyncio.Event()
        # The supervisor's early wake-up (see _supervisor._next_turn): accept() sets the event
        # when no worker is parked and ``unfinished`` passes the mark; NEVER while unarmed.
        self.scale_wake = asyncio.Event()
        self.scale_wake_at = NEVER

    # -- tasks -------------------------------------------------------------

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
        this, so the collector's arrival count and the queue's ``put_nowait``
        are done inline.
        """
        job._fn = fn
        job._args = args
        job._options = options
        job._queued_at = monotonic()
        job._phase = QUEUED
        job._attempts = 0
        self.unfinished += 1
        if self.builtin_collector is not None:
            self.builtin_collector._arrived += 1
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
            self.task_event("queued", job)

    @property
    def running(self) -> int:
        """Tasks held by a worker now: whatever is unfinished and not waiting.

        Derived rather than counted, so the hot path writes one counter less.
        """
        return self.unfinished - len(self.queue) - len(self.delayed)

    def settle(self, job: TaskHandle[Any]) -> None:
        """Account for a task that has ended; exactly once per task."""
        job._phase = SETTLED
        self.unfinished -= 1
        if not self.unfinished and self.state == "stopping":
            self.check_drained()

    def check_drained(self) -> None:
        """Let the host close the workers once a stopping manager has nothing left to do."""
        if self.state == "stopping" and not self.unfinished and not self.side_runs:
            self.closing.set()

    def abandon(self, job: TaskHandle[Any]) -> None:
        """Make sure ``job``, whose caller gave up, never runs, or cancel its run."""
        state = job._phase
        if state == QUEUED:
            # Marked dead where it lies, then counted out of its lane: O(1) (see JobQueue.remove).
            job._phase = SETTLED
            self.queue.remove(job._options.priority)
            self.settle(job)
            if self.hooks.active:
                self.task_event("cancelled", job)
        elif state == DELAYED:
            timer = self.delayed.pop(job, None)
            if timer is not None:
                timer.cancel()
            self.settle(job)
            if self.hooks.active:
                self.task_event("cancelled", job)
        elif state == RUNNING:
            cancel_running(self, job)

    def requeue(
        self, job: TaskHandle[Any], started: float, finished: float, error: BaseException, delay: float
    ) -> None:
        """Queue ``job`` again on the priority lane, after ``delay`` seconds.

        Retries bypass ``max_queue_size``: a retry never fails for lack of room.
        ``started``, ``finished`` and ``error`` describe the unhealthy run, for the hooks.
        """
        self.collector.record_retry()
        options = job._options
        if not options.priority:
            job._options = self.options(True, options.once, options.timeout)
        if self.hooks.active:
            self.task_event("retried", job, started, finished, error)
        # The next run's wait starts now, not at the first submission.
        job._queued_at = monotonic()
        if delay > 0:
            job._phase = DELAYED
            self.delayed[job] = asyncio.get_running_loop().call_later(delay, self._release, job)
        else:
            job._phase = QUEUED
            self.queue.put_nowait(job, True)

    def _release(self, job: TaskHandle[Any]) -> None:
        if self.breaker_open:
            # No worker can take it: fail it fast, like the tasks that were queued.
            self.delayed[job] = None
            self.fail_waiting(self.refusal())
            return
        del self.delayed[job]
        job._queued_at = monotonic()
        job._phase = QUEUED
        self.queue.put_nowait(job, True)

    def abort_waiting(self) -> None:
        """End every queued and delayed task with ``TaskAbortedError`` (``kill()``)."""
        self.fail_waiting(TaskAbortedError("the manager was killed before the task ran"), kind="aborted")

    def fail_waiting(self, error: BaseException, kind: TaskEventKind = "failed") -> None:
        """End every queued and delayed task with ``error``."""
        waiting = self.queue.drain()
        for job, timer in self.delayed.items():
            if timer is not None:
                timer.cancel()
            waiting.append(job)
        self.delayed.clear()
        now = monotonic()
        for job in waiting:
            if not job.done():
                job.set_exception(error)
                if kind == "failed":
                    self.collector.record_failure(TaskLifecycleTimestamps(job._queued_at, now, now))
            self.settle(job)
            if self.hooks.active:
                self.task_event(kind, job, None, now, error)

    def task_event(
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

    # -- workers -------------------------------------------------------------

    def spawn_worker(self, *, burst: bool = False, reason: str) -> None:
        """Start a worker that creates its own resource (with backoff on failure)."""
        self._start_worker(self._new_worker(burst, reason))

    def adopt_worker(self, resource: R) -> None:
        """Start a base worker on a resource made by ``start()``."""
        worker = self._new_worker(False, "start")
        # Counted and held on the worker from here on, so the host can destroy it
        # even if the worker is cancelled before its first step.
        worker.resource = resource
        worker.holds_resource = True
        self.active_workers += 1
        self._start_worker(worker)

    def _new_worker(self, burst: bool, reason: str) -> Worker:
        from ._worker import Worker

        worker = Worker(next(self.worker_ids), burst=burst, reason=reason)
        self.workers.add(worker)
        if burst:
            self.burst_workers += 1
        return worker

    def _start_worker(self, worker: Worker) -> None:
        from ._worker import run_worker

        assert self.tg is not None, "workers are only started while the host task group is open"
        self.tg.start_soon(run_worker, self, worker)


def _is_queued(job: TaskHandle[Any]) -> bool:
    """Whether a task in a lane is still waiting there (not cancelled where it lay)."""
    return job._phase == QUEUED
