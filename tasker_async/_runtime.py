"""The state a manager's workers, pool and public methods share, and the moves on it.

Everything here runs on the event loop's thread. A task is *unfinished*
from the moment it is accepted until it is settled, exactly once, by
whoever ends it: the worker that ran it, a caller that removed it from a
queue, or ``kill()``. ``stop()`` is done draining when nothing is unfinished.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

from ._events import EventHooks, ResourceCreationFailed, TaskEvent, TaskEventKind
from ._handle import DELAYED, QUEUED, RUNNING, SETTLED, TaskHandle
from ._metrics import DefaultCollector, MetricsCollector
from ._queue import JobQueue
from ._stats import ManagerState
from .errors import ResourceCreationError, TaskAbortedError, TaskTimeoutError

if TYPE_CHECKING:
    from ._config import Config, LoggerProtocol
    from ._worker import Worker

__all__ = ("Runtime", "call_with_timeout", "task_name", "uncancellable")

R = TypeVar("R")
T = TypeVar("T")


class Runtime(Generic[R]):
    """Counters, queues and resource lifecycle of one manager."""

    def __init__(self, config: Config[R]) -> None:
        """Take the settings out of ``config`` once, so the hot path reads plain attributes."""
        self.config = config
        self.log: logging.Logger | LoggerProtocol = config.logger or logging.getLogger("tasker_async")
        self.collector: MetricsCollector = config.collector or DefaultCollector()
        self.hooks = EventHooks(tuple(config.hooks), self.log)
        self.worker_ids = itertools.count(1)
        self.queue: JobQueue[TaskHandle[Any]] = JobQueue(config.max_queue_size)
        self.bounded = config.max_queue_size > 0
        self.max_retries = config.max_retries
        self.retry_delay = config.retry_delay
        self.default_timeout = config.task_timeout
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
        self.delayed: set[TaskHandle[Any]] = set()
        self.tg: TaskGroup | None = None
        # Set once the host task should cancel the workers: drained while stopping, or killed.
        self.closing = asyncio.Event()

    # -- tasks -------------------------------------------------------------

    def accept(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        priority: bool,
        once: bool,
        timeout: float | None,
    ) -> TaskHandle[T]:
        """Record a new task and queue it; the caller has checked state and room."""
        job = TaskHandle(self, fn, args, priority, once, timeout)
        self.unfinished += 1
        self.collector.record_arrival()
        self.queue.put_nowait(job, priority)
        if self.hooks:
            self.task_event("queued", job)
        return job

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
            if self.queue.remove(job, job._lane):
                self.settle(job)
                if self.hooks:
                    self.task_event("cancelled", job)
        elif state == DELAYED:
            if job._timer is not None:
                job._timer.cancel()
            self.delayed.discard(job)
            self.settle(job)
            if self.hooks:
                self.task_event("cancelled", job)
        elif state == RUNNING and job._worker is not None:
            job._worker.cancel_job()

    def requeue(self, job: TaskHandle[Any], started: float, finished: float, error: BaseException) -> None:
        """Queue ``job`` again on the priority lane, after ``retry_delay`` if set.

        Retries bypass ``max_queue_size``: a retry never fails for lack of room.
        ``started``, ``finished`` and ``error`` describe the unhealthy run, for the hooks.
        """
        self.collector.record_retry()
        job._lane = True
        if self.hooks:
            self.task_event("retried", job, started, finished, error)
        # The next run's wait starts now, not at the first submission.
        job._queued_at = monotonic()
        if self.retry_delay:
            job._phase = DELAYED
            self.delayed.add(job)
            job._timer = asyncio.get_running_loop().call_later(self.retry_delay, self._release, job)
        else:
            job._phase = QUEUED
            self.queue.put_nowait(job, True)

    def _release(self, job: TaskHandle[Any]) -> None:
        self.delayed.discard(job)
        job._queued_at = monotonic()
        job._timer = None
        job._phase = QUEUED
        self.queue.put_nowait(job, True)

    def abort_waiting(self) -> None:
        """End every queued and delayed task with ``TaskAbortedError``."""
        waiting = self.queue.drain()
        for job in self.delayed:
            if job._timer is not None:
                job._timer.cancel()
            waiting.append(job)
        self.delayed.clear()
        for job in waiting:
            error = TaskAbortedError("the manager was killed before the task ran")
            if not job.done():
                job.set_exception(error)
            self.settle(job)
            if self.hooks:
                self.task_event("aborted", job, None, monotonic(), error)

    # -- resources -----------------------------------------------------------

    async def create_resource(self, *, failures: int = 0, retry_in: float | None = None) -> R:
        """Call ``on_create``; its failure is logged, reported and raised as ``ResourceCreationError``.

        Args:
            failures: failures in a row before this call, for the report.
            retry_in: when the caller will try again, for the report.
        """
        try:
            made = self.config.on_create()
            if inspect.isawaitable(made):
                return await made
            return made
        except Exception as exc:
            self.creation_failures += 1
            if retry_in is None:
                self.log.error("on_create failed: %r", exc)
            else:
                self.log.error(
                    "on_create failed for a worker (%d in a row): %r; retrying in %.2f s", failures + 1, exc, retry_in
                )
            if self.hooks:
                self.hooks.emit(ResourceCreationFailed(error=exc, consecutive_failures=failures + 1, retry_in=retry_in))
            raise ResourceCreationError(f"on_create failed: {exc!r}") from exc

    async def destroy_resource(self, resource: R) -> None:
        """Call ``on_destroy`` and see it through whatever cancellation arrives; log what it raises."""
        on_destroy = self.config.on_destroy
        if on_destroy is None:
            return
        try:
            done = on_destroy(resource)
            if inspect.isawaitable(done):
                await uncancellable(done)
        except Exception:
            self.log.error("on_destroy failed for %r", resource, exc_info=True)

    async def is_healthy(self, exc: BaseException) -> bool:
        """Ask ``check_health``; it raising counts as unhealthy and is logged."""
        check = self.config.check_health
        if check is None:
            return True
        try:
            verdict = check(exc)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            return bool(verdict)
        except Exception:
            self.log.error("check_health raised on %r; treating the resource as unhealthy", exc, exc_info=True)
            return False

    def task_event(
        self,
        kind: TaskEventKind,
        job: TaskHandle[Any],
        started_at: float | None = None,
        finished_at: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Report what happened to ``job`` to the hooks (callers check ``self.hooks`` first)."""
        self.hooks.emit(
            TaskEvent(
                kind=kind,
                name=task_name(job._fn),
                task_id=id(job),
                priority=job._lane,
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


async def uncancellable(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to its end even if the caller is cancelled meanwhile, then re-raise that.

    An anyio shield stops the cancellation of an enclosing cancel scope, but a
    plain ``task.cancel()`` of the caller (``run_task`` runs in its caller's
    task) still lands; so the work runs in a task of its own, which the caller
    waits out before its cancellation goes on.
    """
    task = asyncio.ensure_future(awaitable)
    interrupted: asyncio.CancelledError | None = None
    with anyio.CancelScope(shield=True):
        while not task.done():
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError as exc:
                interrupted = exc
    if interrupted is not None:
        raise interrupted
    return task.result()


def task_name(fn: Callable[..., object]) -> str:
    """A task function's qualified name, for logs and events."""
    return getattr(fn, "__qualname__", None) or repr(fn)


async def call_with_timeout(
    fn: Callable[..., Awaitable[T]], resource: object, args: tuple[Any, ...], timeout: float
) -> T:
    """Run ``fn(resource, *args)``, cancelling it after ``timeout`` seconds.

    Raises:
        TaskTimeoutError: the run was cancelled at its deadline.
    """
    with anyio.CancelScope(deadline=anyio.current_time() + timeout):
        return await fn(resource, *args)
    raise TaskTimeoutError(timeout)
