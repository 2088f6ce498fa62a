"""What becomes of a task whose run raised: fail it, retry it, or abort it; and of its worker.

Called by a worker off the hot path. Exactly one outcome per task: ``_end``
settles it; ``requeue`` hands it back to the queues for another run. Whatever
goes wrong while deciding (a logger, a collector or ``check_health`` that
misbehaves, an arithmetic surprise) fails that one task, never the manager,
and never leaves the task without an outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from time import monotonic
from typing import TYPE_CHECKING, Any

import anyio

from .._observe.events import TaskEventKind
from ..errors import MaxRetriesExceededError, PermanentError, RetryableError, TaskAbortedError, TaskTimeoutError
from .cancel import TIMEOUT, end_cancel
from .classify import Verdict, classify
from .handle import DELAYED, QUEUED, SETTLED, TaskHandle
from .health import RetryVerdict, retry_backoff, retry_verdict

if TYPE_CHECKING:
    from .runtime import Runtime
    from .workers import Worker

__all__ = ("settle_failure", "settle_swallowed")


async def settle_failure(
    rt: Runtime[Any], worker: Worker, job: TaskHandle[Any], exc: BaseException, started: float
) -> bool:
    """End or re-queue a task whose run raised ``exc``; ``True`` if the resource went bad.

    Re-raises ``exc`` when it is a cancellation meant for this worker, or an
    interpreter exit (``KeyboardInterrupt``, ``SystemExit``).
    """
    try:
        if worker.cancelling is not None:
            return await _settle_cancelled(rt, worker, job, exc, started)
        misuse = _not_awaitable(job, exc)
        if misuse is not None:
            rt.log.error("%s", misuse)
            _end(rt, job, "failed", started, misuse, count=True)
            return False
        return await _settle(rt, job, exc, started)
    except Exception as bug:
        _fail_unresolved(rt, job, bug, started)
        if not isinstance(exc, Exception):
            raise exc from None
        # Whether check_health was asked or not, the resource's state is unknown: replace it.
        return not isinstance(exc, (PermanentError, RetryableError))


def settle_swallowed(rt: Runtime[Any], worker: Worker, job: TaskHandle[Any], started: float) -> bool:
    """End a cancelled run that returned anyway; ``True`` if it overran its grace (the resource is not reused)."""
    reason, overran = end_cancel(worker)
    try:
        if reason == TIMEOUT:
            # The deadline is the contract: a result that came after it is not delivered.
            timeout = job._options.timeout
            assert timeout is not None
            _end(rt, job, "timed_out", started, TaskTimeoutError(timeout), count=True)
        else:
            _end(rt, job, "cancelled", started)
    except Exception as bug:
        _fail_unresolved(rt, job, bug, started)
    return overran


async def _settle_cancelled(
    rt: Runtime[Any], worker: Worker, job: TaskHandle[Any], exc: BaseException, started: float
) -> bool:
    """End a run this manager cancelled once (its caller gave up, or its timeout expired)."""
    reason, overran = end_cancel(worker)
    cancelled = isinstance(exc, asyncio.CancelledError)
    if cancelled and not overran and anyio.current_effective_deadline() == -math.inf:
        # kill() arrived while the run was cleaning up: the worker ends, and so does the task.
        if reason == TIMEOUT:
            _end(rt, job, "aborted", started, TaskAbortedError("the manager was killed while the task ran"))
        else:
            _end(rt, job, "cancelled", started)
        raise exc
    if reason == TIMEOUT:
        timeout = job._options.timeout
        assert timeout is not None
        error = TaskTimeoutError(timeout)
        if not cancelled:
            error.__cause__ = exc  # its cleanup failed: keep what it raised
        if overran:
            _end(rt, job, "timed_out", started, error, count=True)
        elif not isinstance(exc, Exception) and not cancelled:
            _end(rt, job, "failed", started, exc)
            raise exc
        else:
            # As if the run had raised TaskTimeoutError: check_health judges it.
            return await _settle(rt, job, error, started)
    else:
        # Its caller has its answer (the cancellation). What the cleanup raised may still
        # say the resource went bad: check_health judges it, and no retry follows.
        unhealthy = False
        if isinstance(exc, Exception) and not isinstance(exc, (PermanentError, RetryableError)) and not overran:
            unhealthy = not await _is_healthy(rt, job, started, exc)
        _end(rt, job, "cancelled", started)
        if not isinstance(exc, Exception) and not cancelled:
            raise exc
        if unhealthy:
            return True
    if overran and cancelled:
        raise exc  # the worker's own scope was cancelled to end the run: it leaves, replaced
    return overran


async def _settle(rt: Runtime[Any], job: TaskHandle[Any], exc: BaseException, started: float) -> bool:
    killed = anyio.current_effective_deadline() == -math.inf  # the worker's own scope is cancelled
    verdict = classify(exc, caller_cancelled=job.done(), killed=killed)
    if verdict is Verdict.CANCELLED:
        _end(rt, job, "cancelled", started)
        raise exc
    if verdict is Verdict.ABORTED:
        _end(rt, job, "aborted", started, TaskAbortedError("the manager was killed while the task ran"))
        raise exc
    if verdict is Verdict.SELF_CANCELLED:
        job.cancel()
        _end(rt, job, "cancelled", started)
        return False
    if verdict is Verdict.EXIT:
        # The caller sees it, and so does the loop.
        _end(rt, job, "failed", started, exc)
        raise exc
    assert isinstance(exc, Exception)
    if verdict is Verdict.PERMANENT:
        rt.log.debug("task %s (id %d) failed for good: %r", job.name, job.task_id, exc)
        _end(rt, job, "failed", started, exc, count=True)
        return False
    if isinstance(exc, RetryableError):  # Verdict.RETRY
        rt.log.warning(
            "task %s (id %d) asked to be retried after run %d: %r", job.name, job.task_id, job._attempts, exc
        )
        _retry_or_fail(rt, job, exc, started, extra_wait=exc.retry_after or 0.0)
        return False
    if not await _is_healthy(rt, job, started, exc):
        rt.log.warning(
            "task %s (id %d) hit an unhealthy error on run %d: %r; its worker will be replaced",
            job.name,
            job.task_id,
            job._attempts,
            exc,
        )
        _retry_or_fail(rt, job, exc, started)
        return True
    rt.log.debug("task %s (id %d) failed: %r", job.name, job.task_id, exc)
    _end(rt, job, "timed_out" if isinstance(exc, TaskTimeoutError) else "failed", started, exc, count=True)
    return False


async def _is_healthy(rt: Runtime[Any], job: TaskHandle[Any], started: float, exc: BaseException) -> bool:
    """Ask ``check_health``; if the manager is killed meanwhile, abort the task and let the cancellation go on."""
    try:
        return await rt.resources.is_healthy(exc)
    except BaseException:
        _end(rt, job, "aborted", started, TaskAbortedError("the manager was killed while the task ran"))
        raise


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
            "retrying task %s (id %d) in %.3f s (run %d of at most %d)",
            job.name,
            job.task_id,
            delay,
            job._attempts + 1,
            rt.max_retries + 1,
        )
        rt.ledger.requeue(job, started, monotonic(), exc, delay)
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
    """End the run of ``job`` that started at ``started``, now: the ledger's ``finish``."""
    rt.ledger.finish(job, kind, started, monotonic(), error, count=count)


def _fail_unresolved(rt: Runtime[Any], job: TaskHandle[Any], bug: Exception, started: float) -> None:
    """End ``job`` with ``bug``, raised while deciding its outcome, unless it was settled or re-queued first."""
    if job._phase in (QUEUED, DELAYED, SETTLED):
        return  # it got its outcome (or its retry) before the failure
    with contextlib.suppress(Exception):  # the logger itself may be what failed
        rt.log.error("deciding the outcome of task %s (id %d) failed", job.name, job.task_id, exc_info=bug)
    rt.ledger.finish(job, "failed", started, monotonic(), bug)


def _not_awaitable(job: TaskHandle[Any], exc: BaseException) -> TypeError | None:
    """A clear error for a task function that returned something the worker could not await.

    Plain ``def`` functions are refused at submission; a ``functools.partial``
    or a callable object can only be found out here: Python's own message
    (``object int can't be used in 'await' expression``) is raised in the
    worker's frame, not in the task's.
    """
    if not isinstance(exc, TypeError) or "'await' expression" not in str(exc):
        return None
    traceback = exc.__traceback__
    if traceback is None or traceback.tb_next is not None:
        return None  # raised inside the task: its own error
    error = TypeError(
        f"task {job.name} returned a non-awaitable ({exc}); tasks must be `async def fn(resource, ...)` "
        "or return an awaitable"
    )
    error.__cause__ = exc
    return error


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
