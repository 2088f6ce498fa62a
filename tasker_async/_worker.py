"""A worker: one resource, one loop taking tasks, priority first, until it must go.

The hot path lives in ``_serve``: no task, scope or closure is made per job
unless the job asks for one (a timeout). Each worker owns two cancel scopes:
``scope`` ends the worker (kill, retirement), ``job_scope`` ends only the
run in hand (its caller gave up) and is replaced only after it was used.
"""

from __future__ import annotations

import asyncio
import math
from time import monotonic
from typing import TYPE_CHECKING, Any

import anyio

from ._events import TaskEventKind, WorkerEvent
from ._handle import FINISHING, RUNNING, SETTLED, TaskHandle
from ._health import RetryVerdict, creation_backoff, retry_verdict
from ._metrics import TaskLifecycleTimestamps
from ._runtime import call_with_timeout
from .errors import MaxRetriesExceededError, ResourceCreationError, TaskAbortedError, TaskTimeoutError

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ("Worker", "run_worker")


class Worker:
    """Bookkeeping of one worker coroutine."""

    __slots__ = (
        "burst",
        "holds_resource",
        "id",
        "idle_since",
        "job_scope",
        "parked",
        "reason",
        "resource",
        "retiring",
        "scope",
    )

    def __init__(self, worker_id: int, *, burst: bool, reason: str) -> None:
        """Make the record; the coroutine is ``run_worker``."""
        self.id = worker_id
        self.burst = burst
        self.reason = reason  # why it was started, for its "created" event
        self.scope = anyio.CancelScope()
        self.job_scope: anyio.CancelScope | None = None
        self.resource: Any = None
        self.holds_resource = False
        self.parked = False  # waiting for a task, nothing in hand
        self.idle_since = 0.0  # when it last ran out of work
        self.retiring = False  # set by the supervisor before it cancels ``scope``

    def cancel_job(self) -> None:
        """Cancel the run in hand; the worker and its resource carry on."""
        if self.job_scope is not None:
            self.job_scope.cancel()


async def run_worker(rt: Runtime[Any], worker: Worker) -> None:
    """Live one worker's life: get a resource, serve tasks, destroy the resource."""
    replace = False
    try:
        with worker.scope:
            if not worker.holds_resource:
                worker.resource = await _create_with_backoff(rt)
                worker.holds_resource = True
                rt.active_workers += 1
            rt.log.info("worker %d started (%s)", worker.id, worker.reason)
            if rt.hooks:
                rt.hooks.emit(
                    WorkerEvent(kind="created", worker_id=worker.id, burst=worker.burst, reason=worker.reason)
                )
            replace = await _serve(rt, worker, worker.resource)
    finally:
        rt.workers.discard(worker)
        if worker.burst:
            rt.burst_workers -= 1
        if worker.holds_resource:
            worker.holds_resource = False
            rt.active_workers -= 1
            await rt.destroy_resource(worker.resource)
            worker.resource = None
            reason = "unhealthy" if replace else "retired" if worker.retiring else "shutdown"
            rt.log.info("worker %d stopped (%s)", worker.id, reason)
            if rt.hooks:
                rt.hooks.emit(WorkerEvent(kind="destroyed", worker_id=worker.id, burst=worker.burst, reason=reason))
    # A burst worker is replaced only while there is work it would take.
    if replace and rt.state in ("running", "stopping") and (not worker.burst or rt.queue):
        if rt.hooks:
            rt.hooks.emit(WorkerEvent(kind="replaced", worker_id=worker.id, burst=worker.burst, reason="unhealthy"))
        rt.spawn_worker(burst=worker.burst, reason="replacement")


async def _create_with_backoff(rt: Runtime[Any]) -> Any:
    failures = 0
    while True:
        delay = creation_backoff(failures + 1)
        try:
            return await rt.create_resource(failures=failures, retry_in=delay)
        except ResourceCreationError:
            failures += 1
            await anyio.sleep(delay)


async def _serve(rt: Runtime[Any], worker: Worker, resource: Any) -> bool:
    """Run tasks until the resource goes bad (returns ``True``) or the worker is cancelled."""
    queue = rt.queue
    collector = rt.collector
    clock = monotonic
    was_idle = False
    while True:
        with anyio.CancelScope() as job_scope:
            worker.job_scope = job_scope
            # Once a caller has cancelled the run in hand, this scope stays
            # cancelled (anyio cancellation is level-triggered): leave it and
            # take a fresh one before the next task, or the next task would
            # inherit the cancellation.
            while not job_scope.cancel_called:
                job = queue.take_nowait()
                if job is None:
                    if not was_idle:
                        was_idle = True
                        worker.idle_since = clock()
                    worker.parked = True
                    try:
                        await queue.wait_for_item()
                    finally:
                        worker.parked = False
                    if worker.retiring:
                        # Woken in the instant it was retired: leave, and hand the wake-up on.
                        queue.pass_wake()
                        return False
                    continue
                was_idle = False
                job._phase = RUNNING
                job._worker = worker
                job._attempts += 1
                started = clock()
                if rt.hooks:
                    rt.task_event("started", job, started)
                try:
                    if job._timeout is None:
                        result = await job._fn(resource, *job._args)
                    else:
                        result = await call_with_timeout(job._fn, resource, job._args, job._timeout)
                except BaseException as exc:
                    job._phase = FINISHING
                    if await _settle_failure(rt, job, exc, started):
                        return True
                else:
                    if not job.done():
                        job.set_result(result)
                        finished = clock()
                        collector.record_completion(TaskLifecycleTimestamps(job._queued_at, started, finished))
                        if rt.hooks:
                            rt.task_event("succeeded", job, started, finished)
                    # rt.settle(job), inlined: this is the hot path.
                    job._phase = SETTLED
                    rt.unfinished -= 1
                    if not rt.unfinished and rt.state == "stopping":
                        rt.check_drained()
        worker.job_scope = None


async def _settle_failure(rt: Runtime[Any], job: TaskHandle[Any], exc: BaseException, started: float) -> bool:
    """End or re-queue a task whose run raised ``exc``; ``True`` if the resource went bad.

    Re-raises ``exc`` when it is a cancellation meant for this worker.
    """
    if isinstance(exc, asyncio.CancelledError):
        if job.done():
            # Its caller cancelled it: nothing to report but the cancellation.
            _end(rt, job, "cancelled", started)
            raise exc
        if anyio.current_effective_deadline() == -math.inf:
            _end(rt, job, "aborted", started, TaskAbortedError("the manager was killed while the task ran"))
            raise exc
        # Nobody here cancelled it: the task cancelled itself.
        job.cancel()
        _end(rt, job, "cancelled", started)
        return False
    if not isinstance(exc, Exception):
        # KeyboardInterrupt, SystemExit: the caller sees it, and so does the loop.
        _end(rt, job, "failed", started, exc)
        raise exc
    try:
        healthy = await rt.is_healthy(exc)
    except BaseException:
        _end(rt, job, "aborted", started, TaskAbortedError("the manager was killed while the task ran"))
        raise
    if healthy:
        rt.log.debug("task %r failed: %r", job, exc)
        _end(rt, job, "timed_out" if isinstance(exc, TaskTimeoutError) else "failed", started, exc, count=True)
        return False
    rt.log.warning("task %r hit an unhealthy error on run %d: %r; its worker will be replaced", job, job._attempts, exc)
    if job.done():
        _end(rt, job, "cancelled", started)
        return True
    verdict = retry_verdict(attempts=job._attempts, max_retries=rt.max_retries, once=job._once)
    if verdict is RetryVerdict.RETRY and rt.state != "killed":
        rt.log.warning("retrying task %r (run %d of at most %d)", job, job._attempts + 1, rt.max_retries + 1)
        rt.requeue(job, started, monotonic(), exc)
    elif verdict is RetryVerdict.RETRY:
        _end(rt, job, "aborted", started, TaskAbortedError("the manager was killed before the task could retry"))
    elif verdict is RetryVerdict.FAIL_ONCE:
        _end(rt, job, "failed", started, exc, count=True)
    else:
        error = MaxRetriesExceededError(job._attempts)
        error.__cause__ = exc
        _end(rt, job, "failed", started, error, count=True)
    return True


def _end(
    rt: Runtime[Any],
    job: TaskHandle[Any],
    kind: TaskEventKind,
    started: float,
    error: BaseException | None = None,
    *,
    count: bool = False,
) -> None:
    """Give ``job`` its outcome (unless its caller already cancelled it), settle and report it.

    Args:
        count: record it as a failure in the metrics (aborts and cancellations are neither).
    """
    finished = monotonic()
    if error is not None and not job.done():
        job.set_exception(error)
        if count:
            rt.collector.record_failure(TaskLifecycleTimestamps(job._queued_at, started, finished))
    rt.settle(job)
    if rt.hooks:
        rt.task_event(kind, job, started, finished, error)
