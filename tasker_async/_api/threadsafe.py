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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, TypeVarTuple, Unpack

from .._core.handle import TaskHandle
from ..errors import ManagerNotRunningError, QueueFullError
from .checks import check_task

if TYPE_CHECKING:
    from .callbacks import CallbackRunner

__all__ = ("LoopBoundFuture", "ThreadsafeMethods")

R = TypeVar("R")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

Task = Callable[[R, Unpack[Ts]], Awaitable[T]]


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


class ThreadsafeMethods(Generic[R]):
    """``submit_threadsafe`` of ``AsyncManager``."""

    if TYPE_CHECKING:
        _host: asyncio.Task[None] | None
        _callbacks: CallbackRunner

        async def submit(
            self, fn: Task[R, *Ts, T], *args: *Ts, priority: bool = ..., once: bool = ...,
            timeout: float | None = ...,
        ) -> TaskHandle[T]: ...  # fmt: skip

        def submit_nowait(
            self, fn: Task[R, *Ts, T], *args: *Ts, priority: bool = ..., once: bool = ...,
            timeout: float | None = ...,
        ) -> TaskHandle[T]: ...  # fmt: skip

        def _timeout(self, timeout: float | None) -> float | None: ...

    def submit_threadsafe(
        self,
        fn: Task[R, *Ts, T],
        *args: *Ts,
        priority: bool = False,
        once: bool = False,
        timeout: float | None = None,
    ) -> concurrent.futures.Future[T]:
        """Queue ``fn(resource, *args)`` from any thread; return a future of its outcome.

        Callable from any thread, the loop's own included (there, await
        ``asyncio.wrap_future(future)``: a blocking ``future.result()`` or
        ``future.exception()`` raises ``RuntimeError`` at once). The future
        gets the task's result, its exception, or is cancelled. Cancelling
        the future cancels the task: removed from its queue if it has not
        started, its run cancelled otherwise. When ``max_queue_size`` is
        reached the submission waits on the loop for room; it never fails
        for lack of room.

        Args:
            fn: ``async def fn(resource, *args)``.
            args: positional arguments after the resource.
            priority: queue it on the priority queue.
            once: never re-run it after an unhealthy error.
            timeout: seconds its run may take (default ``Config.task_timeout``).

        Returns:
            A future that holds ``ManagerNotRunningError`` if the manager is
            not running (or stops while the submission waits for room), or
            ``ResourceCreationError`` while the creation breaker is open.

        Raises:
            TypeError: ``fn`` is not an async function (see ``submit``).
            ValueError: ``timeout`` is not a finite number of seconds > 0.
        """
        check_task(fn)
        if timeout is not None:
            self._timeout(timeout)
        host = self._host
        if host is None or host.done():
            future: concurrent.futures.Future[T] = LoopBoundFuture(None)
            state = "not started: call start() or use 'async with'" if host is None else "stopped"
            future.set_exception(ManagerNotRunningError(f"the manager is {state}"))
            return future
        loop = host.get_loop()
        future = LoopBoundFuture(loop)
        try:
            loop.call_soon_threadsafe(self._submit_on_loop, future, fn, args, priority, once, timeout)
        except RuntimeError:  # the loop is closed
            future.set_exception(ManagerNotRunningError("the manager's event loop is closed"))
        return future

    def _submit_on_loop(
        self,
        future: concurrent.futures.Future[Any],
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        priority: bool,
        once: bool,
        timeout: float | None,
    ) -> None:
        if future.cancelled():
            return
        try:
            handle = self.submit_nowait(fn, *args, priority=priority, once=once, timeout=timeout)
        except QueueFullError:
            self._callbacks.spawn(self._submit_when_room(future, fn, args, priority, once, timeout))
        except Exception as exc:
            _set_exception(future, exc)
        else:
            _chain(handle, future)

    async def _submit_when_room(
        self,
        future: concurrent.futures.Future[Any],
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        priority: bool,
        once: bool,
        timeout: float | None,
    ) -> None:
        waiter = asyncio.current_task()
        assert waiter is not None
        loop = waiter.get_loop()
        # Cancelling the future while this waits for room ends the wait: nothing is queued.
        future.add_done_callback(lambda done: _call_on(loop, waiter.cancel) if done.cancelled() else None)
        try:
            handle = await self.submit(fn, *args, priority=priority, once=once, timeout=timeout)
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
