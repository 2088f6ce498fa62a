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

from ._handle import FINISHING, RUNNING, SETTLED, TaskHandle
from ._health import RetryVerdict, creation_backoff, retry_verdict
from ._metrics import TaskLifecycleTimestamps
from ._runtime import call_with_timeout
from .errors import MaxRetriesExceededError, ResourceCreationError, TaskAbortedError

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ("Worker", "run_worker")


class Worker:
    """Bookkeeping of one worker coroutine."""

    __slots__ = ("burst", "holds_resource", "job_scope", "resource", "scope")

    def __init__(self, *, burst: bool) -> None:
        """Make the record; the coroutine is ``run_worker``."""
        self.burst = burst
        self.scope = anyio.CancelScope()
        self.job_scope: anyio.CancelScope | None = None
        self.resource: Any = None
        self.holds_resource = False

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
                rt.log.info("worker started with a new resource")
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
    if replace and rt.state in ("running", "stopping"):
        rt.log.info("replacing a worker whose resource went bad")
        rt.spawn_worker(burst=worker.burst)


async def _create_with_backoff(rt: Runtime[Any]) -> Any:
    failures = 0
    while True:
        try:
            return await rt.create_resource()
        except ResourceCreationError as exc:
            failures += 1
            delay = creation_backoff(failures)
            rt.log.error(
                "could not create a worker's resource (%d failure(s) in a row): %r; retrying in %.2f s",
                failures,
                exc.__cause__,
                delay,
            )
            await anyio.sleep(delay)


async def _serve(rt: Runtime[Any], worker: Worker, resource: Any) -> bool:
    """Run tasks until the resource goes bad (returns ``True``) or the worker is cancelled."""
    queue = rt.queue
    collector = rt.collector
    clock = monotonic
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
                    await queue.wait_for_item()
                    continue
                job._phase = RUNNING
                job._worker = worker
                job._attempts += 1
                started = clock()
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
                        collector.record_completion(TaskLifecycleTimestamps(job._queued_at, started, clock()))
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
    future = job
    if isinstance(exc, asyncio.CancelledError):
        if future.done():
            # Its caller cancelled it: nothing to report.
            rt.settle(job)
            raise exc
        if anyio.current_effective_deadline() == -math.inf:
            future.set_exception(TaskAbortedError("the manager was killed while the task ran"))
            rt.settle(job)
            raise exc
        # Nobody here cancelled it: the task cancelled itself.
        future.cancel()
        rt.settle(job)
        return False
    if not isinstance(exc, Exception):
        # KeyboardInterrupt, SystemExit: the caller sees it, and so does the loop.
        if not future.done():
            future.set_exception(exc)
        rt.settle(job)
        raise exc
    try:
        healthy = await rt.is_healthy(exc)
    except BaseException:
        if not future.done():
            future.set_exception(TaskAbortedError("the manager was killed while the task ran"))
        rt.settle(job)
        raise
    stamps = TaskLifecycleTimestamps(job._queued_at, started, monotonic())
    if healthy:
        if not future.done():
            future.set_exception(exc)
            rt.collector.record_failure(stamps)
        rt.settle(job)
        return False
    rt.log.warning(
        "task %r hit an unhealthy error on run %d: %r; its worker will be replaced",
        job,
        job._attempts,
        exc,
    )
    if future.done():
        rt.settle(job)
        return True
    verdict = retry_verdict(attempts=job._attempts, max_retries=rt.max_retries, once=job._once)
    if verdict is RetryVerdict.RETRY and rt.state != "killed":
        rt.log.warning("retrying task %r (run %d of at most %d)", job, job._attempts + 1, rt.max_retries + 1)
        rt.requeue(job)
        return True
    if verdict is RetryVerdict.RETRY:
        future.set_exception(TaskAbortedError("the manager was killed before the task could retry"))
    elif verdict is RetryVerdict.FAIL_ONCE:
        future.set_exception(exc)
        rt.collector.record_failure(stamps)
    else:
        error = MaxRetriesExceededError(job._attempts)
        error.__cause__ = exc
        future.set_exception(error)
        rt.collector.record_failure(stamps)
    rt.settle(job)
    return True
