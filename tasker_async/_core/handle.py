"""``TaskHandle``: one submitted task, as the caller sees it and as the manager tracks it.

The handle is the task's only record and its future at once: the queues,
the workers and the caller all hold the same object, so a submission
allocates one object, and ``asyncio.gather`` takes handles as they are
instead of wrapping each in a task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import TYPE_CHECKING, Any, TypeVar

from .names import task_name

if TYPE_CHECKING:
    from .ledger import TaskLedger

__all__ = ("QUEUED", "RUNNING", "FINISHING", "DELAYED", "SETTLED", "RunOptions", "TaskHandle")

T = TypeVar("T")


# Where a task is; only ever moves forward, except RUNNING -> QUEUED/DELAYED on a retry.
QUEUED = 0  # in a lane of the JobQueue; must stay 0: workers drop a popped task whose phase is truthy
DELAYED = 1  # waiting out retry_delay on a timer, in no lane
RUNNING = 2  # a worker is awaiting its function
FINISHING = 3  # its function returned; the worker is settling the outcome
SETTLED = 4  # accounted for; nothing refers to it any more


class RunOptions:
    """How a task runs, and which manager runs it; shared by the tasks submitted alike.

    One field on each task instead of four (see ``TaskHandle.__slots__``). Never changed
    once made: a retry, which moves its task to the priority lane, gets
    other options.
    """

    __slots__ = ("ledger", "once", "priority", "timeout")

    def __init__(self, ledger: TaskLedger, *, priority: bool, once: bool, timeout: float | None) -> None:
        """Hold the options; ``TaskLedger.options`` makes and shares them."""
        self.ledger = ledger  # which manager's tasks these are
        self.priority = priority  # queued on the priority lane
        self.once = once  # never re-run after an unhealthy error
        self.timeout = timeout  # seconds a run may take; None: no limit


class TaskHandle(asyncio.Future[T]):
    """A submitted task: an ``asyncio.Future`` of its outcome that also owns the task.

    Await it (or pass it to ``asyncio.gather``/``asyncio.wait``) for the
    task's result; it raises the task's exception, or a
    :class:`~tasker_async.TaskerError`. Cancelling the handle, or a task
    awaiting it, cancels the task: it is removed from its queue if it had not
    started, or its run is cancelled (the worker and its resource survive).
    Only the manager sets its outcome.
    """

    # Few fields: the garbage collector visits each of them, of every task alive, at every full pass.
    __slots__ = ("_args", "_attempts", "_fn", "_options", "_phase", "_queued_at")

    # No __init__: Future's own (C) initialiser runs, and ``TaskLedger.accept`` fills
    # the fields; a Python __init__ calling super() costs a frame per task. For the
    # same reason the hot path (``accept``, ``finish``, the worker loop) writes them
    # inline; every other change goes through the methods below.
    _fn: Callable[..., Awaitable[T]]
    _args: tuple[Any, ...]
    _options: RunOptions
    _queued_at: float  # when it last entered a queue (time.monotonic())
    _phase: int
    _attempts: int

    def cancel(self, msg: Any | None = None) -> bool:
        """Cancel the task: dequeue it if it has not started, else cancel its run.

        Returns:
            ``True`` if the task was not done yet and is now cancelled.
        """
        if not super().cancel(msg):
            return False  # already done: nothing to undo
        if self._phase < FINISHING:
            self._options.ledger.abandon(self)
        return True

    def _wait_again(self, phase: int) -> None:
        """Back to waiting for another run, ``QUEUED`` or ``DELAYED``: its wait starts now."""
        self._queued_at = monotonic()
        self._phase = phase

    def _run_with(self, options: RunOptions) -> None:
        """Run from now on with ``options`` (a retry moves to the priority lane)."""
        self._options = options

    def _settle(self) -> None:
        """Accounted for: a worker that pops it from its lane drops it."""
        self._phase = SETTLED

    @property
    def name(self) -> str:
        """The task function's qualified name, as logs and ``TaskEvent.name`` give it."""
        return task_name(self._fn)

    @property
    def task_id(self) -> int:
        """The id that log lines and every ``TaskEvent`` about this task carry; unique among live tasks."""
        return id(self)

    def __repr__(self) -> str:
        """Show the task function, its id and its state."""
        if self.done():
            state = "cancelled" if self.cancelled() else "done"
        else:
            state = ("queued", "delayed", "running", "finishing", "done")[self._phase]
        return f"<TaskHandle {self.name} id={self.task_id} {state}>"
