"""``submit_threadsafe``: queue a task from any thread, get a ``concurrent.futures.Future``.

The calling thread only schedules a callback on the manager's loop; the
submission itself, and every move on the handle, happens on the loop's
thread. The concurrent future stays pending until the task ends, so
cancelling it from any thread still reaches the task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from typing_extensions import TypeVarTuple, Unpack

from ._handle import TaskHandle
from .errors import ManagerNotRunningError, QueueFullError

if TYPE_CHECKING:
    from ._callbacks import CallbackRunner

__all__ = ("ThreadsafeMethods",)

R = TypeVar("R")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

Task = Callable[[R, Unpack[Ts]], Awaitable[T]]


class ThreadsafeMethods(Generic[R]):
    """``submit_threadsafe`` of ``AsyncManager``."""

    if TYPE_CHECKING:
        _host: asyncio.Task[None] | None
        _callbacks: CallbackRunner

        async def submit(
            self, fn: Task[R, Unpack[Ts], T], *args: Unpack[Ts], priority: bool = ..., once: bool = ...,
            timeout: float | None = ...,
        ) -> TaskHandle[T]: ...  # fmt: skip

        def submit_nowait(
            self, fn: Task[R, Unpack[Ts], T], *args: Unpack[Ts], priority: bool = ..., once: bool = ...,
            timeout: float | None = ...,
        ) -> TaskHandle[T]: ...  # fmt: skip

        def _timeout(self, timeout: float | None) -> float | None: ...

    def submit_threadsafe(
        self,
        fn: Task[R, Unpack[Ts], T],
        *args: Unpack[Ts],
        priority: bool = False,
        once: bool = False,
        timeout: float | None = None,
    ) -> concurrent.futures.Future[T]:
        """Queue ``fn(resource, *args)`` from any thread; return a future of its outcome.

        Callable from any thread, the loop's own included (there, await
        ``asyncio.wrap_future(future)`` rather than block on it). The future
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
            ValueError: ``timeout`` is not a positive number.
        """
        if timeout is not None:
            self._timeout(timeout)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        host = self._host
        if host is None or host.done():
            state = "not started: call start() or use 'async with'" if host is None else "stopped"
            future.set_exception(ManagerNotRunningError(f"the manager is {state}"))
            return future
        loop = host.get_loop()
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
