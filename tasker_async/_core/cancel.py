"""Cancelling one run the asyncio way: one ``CancelledError``, then the run's own cleanup may finish.

A run is cancelled when its caller gives up or its timeout expires. Like
``Task.cancel()`` and ``asyncio.timeout``, and unlike an anyio cancel scope,
the cancellation is edge-triggered: the run gets a single ``CancelledError``
and every later await works, so an ``except CancelledError: await
conn.execute("ROLLBACK"); raise`` completes before the resource serves
another task. The worker's task is cancelled natively and ``uncancel()``-ed
once the run ends, so the worker itself carries on.

The cleanup is bounded by ``Config.cancel_grace``: a run still going that long
after its cancellation *overran*. Its caller stops waiting (a timed-out
caller gets ``TaskTimeoutError`` then), and the worker's anyio scope is
cancelled (level-triggered, as for any worker that ends): the resource is
destroyed, never reused, and a fresh worker replaces it.

Ending workers (kill, retirement, replacement) still goes through anyio
cancel scopes, as SPEC §1 says.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio

from ..errors import TaskTimeoutError

if TYPE_CHECKING:
    from .handle import TaskHandle
    from .runtime import Runtime
    from .workers import Worker

__all__ = (
    "CALLER",
    "TIMEOUT",
    "CancelReason",
    "RunDeadline",
    "cancel_run",
    "cancel_running",
    "end_cancel",
    "is_stray_cancellation",
    "uncancellable",
)

T = TypeVar("T")

CancelReason = Literal["caller", "timeout"]
CALLER: CancelReason = "caller"  # its caller gave up on it
TIMEOUT: CancelReason = "timeout"  # it outlived its timeout


def cancel_run(rt: Runtime[Any], worker: Worker, job: TaskHandle[Any], reason: CancelReason) -> None:
    """Cancel ``worker``'s run of ``job`` once; a second cancellation of the same run does nothing."""
    task = worker.task
    if worker.cancelling is not None or worker.job is not job or task is None:
        return
    worker.mark_cancelling(reason, task.get_loop().call_later(rt.config.cancel_grace, _overrun, rt, worker, job))
    task.cancel()


def cancel_running(rt: Runtime[Any], job: TaskHandle[Any]) -> None:
    """Cancel the run of ``job``, whose caller gave up, on whichever worker holds it.

    A search, done only when a caller gives up on a run, so that taking a
    task costs the hot path no store on the task. ``Task.cancel()`` and
    ``call_later`` work from the loop's thread even between two runs of the
    loop, so this may be called from a plain callback.
    """
    worker = rt.workers.running(job)
    if worker is not None:
        cancel_run(rt, worker, job, CALLER)


def time_out(rt: Runtime[Any], worker: Worker, job: TaskHandle[Any]) -> None:
    """The timer callback of a run's ``timeout``."""
    cancel_run(rt, worker, job, TIMEOUT)


def end_cancel(worker: Worker) -> tuple[CancelReason, bool]:
    """Close the books on a cancelled run that has ended: why it was cancelled, and whether it overran.

    Takes back the worker task's cancellation (``uncancel``), so its next
    awaits are not cancelled and anyio scopes around it see no stray request.
    """
    assert worker.task is not None
    ended = worker.clear_cancelling()
    worker.task.uncancel()
    return ended


def _overrun(rt: Runtime[Any], worker: Worker, job: TaskHandle[Any]) -> None:
    """``cancel_grace`` passed and the cancelled run still goes: give up on the run and its resource."""
    if not worker.mark_overran(job):
        return
    rt.log.warning(
        "task %s (id %d) still ran %s s after its cancellation; its worker's resource is treated as unhealthy",
        job.name,
        job.task_id,
        rt.config.cancel_grace,
    )
    if worker.cancelling == TIMEOUT and not job.done():
        # The caller is not kept waiting for a cleanup that overran.
        timeout = job._options.timeout
        assert timeout is not None
        job.set_exception(TaskTimeoutError(timeout))
    worker.scope.cancel()


class RunDeadline:
    """A ``run_task`` run's timeout, in the caller's own task: cancel once, then once more after the grace.

    Used as ``with RunDeadline(timeout, grace): result = await fn(...)``.
    On exit after its own cancellation it raises ``TaskTimeoutError`` (also
    when the run swallowed the cancellation and returned: the deadline is the
    contract), unless someone else cancels the task too: then that
    cancellation goes on. ``overran`` tells whether the run needed the second
    cancellation, i.e. its resource must not be reused.
    """

    __slots__ = ("_cancels", "_grace", "_task", "_timeout", "_timer", "overran")

    def __init__(self, timeout: float, grace: float) -> None:
        """Prepare a deadline ``timeout`` seconds after entering, bounded cleanup ``grace`` seconds after that."""
        self._timeout = timeout
        self._grace = grace
        self._cancels = 0
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self.overran = False

    def __enter__(self) -> RunDeadline:
        """Start the clock."""
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._timer = task.get_loop().call_later(self._timeout, self._expire)
        return self

    def _expire(self) -> None:
        assert self._task is not None
        self._cancels += 1
        self._task.cancel()
        self._timer = self._task.get_loop().call_later(self._grace, self._overrun)

    def _overrun(self) -> None:
        assert self._task is not None
        self.overran = True
        self._cancels += 1
        self._task.cancel()
        self._timer = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the clock; turn this deadline's own cancellation into ``TaskTimeoutError``."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._cancels:
            return
        assert self._task is not None
        for _ in range(self._cancels):
            self._task.uncancel()
        if self._task.cancelling():
            return  # the caller is being cancelled too: that goes on
        if exc is None or isinstance(exc, asyncio.CancelledError):
            raise TaskTimeoutError(self._timeout) from None
        raise TaskTimeoutError(self._timeout) from exc


def is_stray_cancellation() -> bool:
    """Whether a ``CancelledError`` just caught came from user code, not from cancelling this task.

    User code can raise one without anybody cancelling us, e.g. by awaiting a
    future that another caller cancelled. Treating that as our own
    cancellation would end a worker for nothing; so it counts as the failure
    of the callback that raised it.
    """
    if anyio.current_effective_deadline() == -math.inf:
        return False  # an enclosing cancel scope is cancelled: it is ours
    task = asyncio.current_task()
    return not (task is not None and task.cancelling())


async def uncancellable(awaitable: Awaitable[T], timeout: float | None = None) -> T:
    """Await ``awaitable`` to its end even if the caller is cancelled meanwhile, then re-raise that.

    An anyio shield stops the cancellation of an enclosing cancel scope, but a
    plain ``task.cancel()`` of the caller (``run_task`` runs in its caller's
    task) still lands; so the work runs in a task of its own, which the caller
    waits out before its cancellation goes on.

    Raises:
        TimeoutError: ``timeout`` seconds passed first; the work is cancelled
            and left to end on its own.
    """
    task = asyncio.ensure_future(awaitable)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    interrupted: asyncio.CancelledError | None = None
    with anyio.CancelScope(shield=True):
        while not task.done():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                task.cancel()
                break
            try:
                await asyncio.wait({task}, timeout=remaining)
            except asyncio.CancelledError as exc:
                interrupted = exc
    if interrupted is not None:
        raise interrupted
    if not task.done():
        raise TimeoutError
    if task.cancelled():  # by its own code: nobody here cancelled it
        raise RuntimeError(f"{awaitable!r} was cancelled from within")
    return task.result()
