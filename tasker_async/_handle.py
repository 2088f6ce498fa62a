"""``TaskHandle``: one submitted task, as the caller sees it and as the manager tracks it.

The handle is the task's only record: the queues, the workers and the
caller all hold the same object, so a submission allocates just the handle
and its future.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from ._runtime import Runtime
    from ._worker import Worker

__all__ = ("QUEUED", "RUNNING", "FINISHING", "DELAYED", "SETTLED", "TaskHandle")

T = TypeVar("T")

# Where a task is; only ever moves forward, except RUNNING -> QUEUED/DELAYED on a retry.
QUEUED = 0  # in a lane of the JobQueue
DELAYED = 1  # waiting out retry_delay on a timer, in no lane
RUNNING = 2  # a worker is awaiting its function
FINISHING = 3  # its function returned; the worker is settling the outcome
SETTLED = 4  # accounted for; nothing refers to it any more


class TaskHandle(Generic[T]):
    """A submitted task: await it for its result, or cancel it.

    Awaiting a handle gives the task's result or raises its exception (or a
    :class:`~tasker_async.TaskerError`). If the awaiting task is cancelled,
    the task is cancelled too: removed from its queue if it had not started,
    or its run cancelled (the worker and its resource survive).
    """

    __slots__ = (
        "__weakref__",
        "_args",
        "_attempts",
        "_fn",
        "_future",
        "_lane",
        "_once",
        "_queued_at",
        "_rt",
        "_state",
        "_timeout",
        "_timer",
        "_worker",
    )

    def __init__(
        self,
        rt: Runtime[Any],
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        *,
        priority: bool,
        once: bool,
        timeout: float | None,
        future: asyncio.Future[T],
        queued_at: float,
    ) -> None:
        """Record a task; only the manager makes handles."""
        self._rt = rt
        self._fn = fn
        self._args = args
        self._lane = priority
        self._once = once
        self._timeout = timeout
        self._future = future
        self._queued_at = queued_at
        self._state = QUEUED
        self._attempts = 0
        self._worker: Worker | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __await__(self) -> Generator[Any, None, T]:
        """Wait for the outcome; cancelling the waiter cancels the task."""
        try:
            return (yield from self._future.__await__())
        except asyncio.CancelledError:
            self.cancel()
            raise

    def cancel(self) -> bool:
        """Cancel the task: dequeue it if it has not started, else cancel its run.

        Returns:
            ``True`` if the task was not done yet and is now cancelled.
        """
        cancelled = self._future.cancel()
        if self._state < FINISHING:
            self._rt.abandon(self)
        return cancelled

    def cancelled(self) -> bool:
        """Whether the task was cancelled."""
        return self._future.cancelled()

    def done(self) -> bool:
        """Whether the task has an outcome (result, exception or cancellation)."""
        return self._future.done()

    def result(self) -> T:
        """Return the result.

        Raises:
            asyncio.InvalidStateError: the task is not done yet.
            asyncio.CancelledError: the task was cancelled.
            BaseException: whatever the task (or the manager) ended it with.
        """
        return self._future.result()

    def exception(self) -> BaseException | None:
        """Return the exception the task ended with, or ``None`` on success.

        Raises:
            asyncio.InvalidStateError: the task is not done yet.
            asyncio.CancelledError: the task was cancelled.
        """
        return self._future.exception()

    def add_done_callback(self, callback: Callable[[TaskHandle[T]], object]) -> None:
        """Call ``callback(handle)`` once the task is done, like ``asyncio.Future``."""
        self._future.add_done_callback(lambda _: callback(self))

    def __repr__(self) -> str:
        """Show the task function and its state."""
        name = getattr(self._fn, "__qualname__", repr(self._fn))
        state = ("queued", "delayed", "running", "finishing", "done")[self._state]
        if self._future.done():
            state = "cancelled" if self._future.cancelled() else "done"
        return f"<TaskHandle {name} {state}>"
