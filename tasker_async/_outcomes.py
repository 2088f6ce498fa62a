"""What becomes of a task whose run raised: fail it, retry it, or abort it; and of its worker.

Called by a worker off the hot path. Exactly one outcome per task: ``_end``
settles it; ``requeue`` hands it back to the queues for another run.
"""

from __future__ import annotations

import asyncio
import math
from time import monotonic
from typing import TYPE_CHECKING, Any

import anyio

from ._events import TaskEventKind
from ._handle import TaskHandle
from ._health import RetryVerdict, retry_backoff, retry_verdict
from ._metrics import TaskLifecycleTimestamps
from .errors import MaxRetriesExceededError, PermanentError, RetryableError, TaskAbortedError, TaskTimeoutError

if TYPE_CHECKING:
    from ._runtime import Runtime

__all__ = ("settle_failure",)


async def settle_failure(rt: Runtime[Any], job: TaskHandle[Any], exc: BaseException, started: float) -> bool:
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
    if isinstance(exc, PermanentError):
        rt.log.debug("task %r failed for good: %r", job, exc)
        _end(rt, job, "failed", started, exc, count=True)
        return False
    if isinstance(exc, RetryableError):
        rt.log.warning("task %r asked to be retried after run %d: %r", job, job._attempts, exc)
        _retry_or_fail(rt, job, exc, started, extra_wait=exc.retry_after or 0.0)
        return False
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
    _retry_or_fail(rt, job, exc, started)
    return True


def _retry_or_fail(
    rt: Runtime[Any], job: TaskHandle[Any], exc: Exception, started: float, extra_wait: float = 0.0
) -> None:
    if job.done():
        _end(rt, job, "cancelled", started)
        return
    verdict = retry_verdict(attempts=job._attempts, max_retries=rt.max_retries, once=job._options.once)
    if verdict is RetryVerdict.RETRY and rt.state != "killed":
        delay = max(extra_wait, _retry_delay(rt, job._attempts))
        rt.log.warning(
            "retrying task %r in %.3f s (run %d of at most %d)", job, delay, job._attempts + 1, rt.max_retries + 1
        )
        rt.requeue(job, started, monotonic(), exc, delay)
    elif verdict is RetryVerdict.RETRY:
        _end(rt, job, "aborted", started, TaskAbortedError("the manager was killed before the task could retry"))
    elif verdict is RetryVerdict.FAIL_ONCE:
        _end(rt, job, "failed", started, exc, count=True)
    else:
        error = MaxRetriesExceededError(job._attempts)
        error.__cause__ = exc
        _end(rt, job, "failed", started, error, count=True)


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
    if job.cancelled():
        # Its caller cancelled it while the run ended some other way: that is all it was.
        kind, error, count = "cancelled", None, False
    if error is not None and not job.done():
        job.set_exception(error)
        if count:
            rt.collector.record_failure(TaskLifecycleTimestamps(job._queued_at, started, finished))
    rt.settle(job)
    if rt.hooks.active:
        rt.task_event(kind, job, started, finished, error)


def _retry_delay(rt: Runtime[Any], attempts: int) -> float:
    """The backoff before the re-run that follows run number ``attempts``."""
    config = rt.config
    return retry_backoff(
        attempts,
        base=config.retry_delay,
        multiplier=config.retry_multiplier,
        cap=config.retry_max_delay,
        jitter=config.retry_jitter,
        draw=rt.rng.random() if config.retry_jitter else 0.0,
    )
