"""``submit_threadsafe``: queue a task from any thread, get a ``concurrent.futures.Future``.

The calling thread only schedules a callback on the manager's loop; the
submission itself, and every move on the handle, happens on the loop's
thread. The concurrent future stays pending until the task ends, so
cancelling it from any thread still reaches the task. Blocking on it from
the loop's own thread would wait for a task that loop can no longer run:
it refuses that at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._core.handle import TaskHandle
from ..errors import ManagerNotRunningError, QueueFullError

if TYPE_CHECKING:
    from .base import ManagerBase
    from .submission import Submission

__all__ = ("LoopBoundFuture", "submit_threadsafe")

T = TypeVar("T")


class LoopBoundFuture(concurrent.futures.Future[T]):
    """A ``concurrent.futures.Future`` settled on an event loop, refusing to block that loop's thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """Make a pending future whose outcome ``loop`` (``None``: none) will set."""
        super().__init__()
        self._settling_loop = loop

    def result(self, timeout: float | None = None) -> T:
        """Wait for the outcome, as ``concurrent.futures.Future.result``.

        Raises:
            RuntimeError: the outcome is not there yet and this is the settling
                loop's own thread, which would block until ``timeout`` (or for
                ever): await ``asyncio.wrap_future(future)`` there instead.
        """
        self._refuse_to_block(timeout, "result")
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait for the outcome and return its exception, as ``concurrent.futures.Future.exception``.

        Raises:
            RuntimeError: as :meth:`result`, on the settling loop's own thread.
        """
        self._refuse_to_block(timeout, "exception")
        return super().exception(timeout)

    def _refuse_to_block(self, timeout: float | None, method: str) -> None:
        if (timeout is None or timeout > 0) and not self.done():
            loop = self._settling_loop
            if loop is not None and asyncio._get_running_loop() is loop:
                raise RuntimeError(
                    f"future.{method}() called on the thread of the event loop that runs the task: it would block "
                    "that loop, so the task could never finish; use 'await asyncio.wrap_future(future)' instead"
                )


def submit_threadsafe(manager: ManagerBase[Any], submission: Submission) -> concurrent.futures.Future[Any]:
    """Carry ``submission`` to ``manager``'s loop, from any thread; return the future of its outcome.

    See ``AsyncManager.submit_threadsafe``, which has checked the task function and the timeout.
    """
    host = manager._lifecycle.host
    if host is None or host.done():
        future: concurrent.futures.Future[Any] = LoopBoundFuture(None)
        state = "not started: call start() or use 'async with'" if host is None else "stopped"
        future.set_exception(ManagerNotRunningError(f"the manager is {state}"))
        return future
    loop = host.get_loop()
    future = LoopBoundFuture(loop)
    try:
        loop.call_soon_threadsafe(_submit_on_loop, manager, future, submission)
    except RuntimeError:  # the loop is closed
        future.set_exception(ManagerNotRunningError("the manager's event loop is closed"))
    return future


def _submit_on_loop(manager: ManagerBase[Any], future: concurrent.futures.Future[Any], submission: Submission) -> None:
    if future.cancelled():
        return
    try:
        handle = submission.now(manager)
    except QueueFullError:
        manager._callbacks.spawn(_submit_when_room(manager, future, submission))
    except Exception as exc:
        _set_exception(future, exc)
    else:
        _chain(handle, future)


async def _submit_when_room(
    manager: ManagerBase[Any], future: concurrent.futures.Future[Any], submission: Submission
) -> None:
    waiter = asyncio.current_task()
    assert waiter is not None
    loop = waiter.get_loop()
    # Cancelling the future while this waits for room ends the wait: nothing is queued.
    future.add_done_callback(lambda done: _call_on(loop, waiter.cancel) if done.cancelled() else None)
    try:
        handle = await submission.when_room(manager)
    except asyncio.CancelledError:
        future.cancel()  # the loop is going down, say: a thread waiting on the future must wake
        raise
    except Exception as exc:
        _set_exception(future, exc)
    else:
        _chain(handle, future)


def _chain(handle: TaskHandle[Any], future: concurrent.futures.Future[Any]) -> None:
    """Copy the handle's outcome into ``future``; cancel the handle when ``future`` is cancelled."""
    loop = handle.get_loop()

    def settle(done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            future.cancel()
            return
        error = done.exception()
        if error is not None:
            _set_exception(future, error)
        elif future.set_running_or_notify_cancel():
            future.set_result(done.result())

    # Runs at once if ``future`` was already cancelled (by another thread, in the meantime).
    future.add_done_callback(lambda done: _call_on(loop, handle.cancel) if done.cancelled() else None)
    handle.add_done_callback(settle)


def _set_exception(future: concurrent.futures.Future[Any], exc: BaseException) -> None:
    # A cancel() from another thread may win the race: then the outcome has no taker.
    if future.set_running_or_notify_cancel():
        future.set_exception(exc)


def _call_on(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
    """Run ``callback`` on ``loop``'s thread, from whichever thread cancelled a future."""
    with contextlib.suppress(RuntimeError):  # the loop is closed: nothing is left to cancel
        loop.call_soon_threadsafe(callback)
