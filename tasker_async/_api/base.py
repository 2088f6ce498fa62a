"""The core of ``AsyncManager``: the pieces it holds, how it starts and stops, and the accept path.

``AsyncManager`` (``_api.manager``) adds the other ways to submit, each written
with the methods here, and what a manager reports. Coming up and going down is
the composed ``Lifecycle``'s work (``_api.lifecycle``); taking a task is
``TaskLedger.accept``'s, behind ``submit_nowait``.
"""

from __future__ import annotations

import asyncio
from _thread import get_ident
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Generic, Self, TypeVar, TypeVarTuple, Unpack

import anyio

from .._core.config import Config, _is_number
from .._core.handle import RunOptions, TaskHandle
from .._core.pool import SidePool
from .._core.runtime import Runtime
from ..errors import QueueFullError
from .callbacks import CallbackRunner
from .checks import NO_TASK, check_task, wrong_loop
from .lifecycle import Lifecycle

__all__ = ("ManagerBase",)

R = TypeVar("R")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class ManagerBase(Generic[R]):
    """What every method of ``AsyncManager`` is written with: its pieces, start/stop/kill, and submission."""

    def __init__(self, config: Config[R]) -> None:
        """Prepare a manager; nothing runs until :meth:`start`."""
        if not isinstance(config, Config):
            raise TypeError(f"AsyncManager needs a tasker_async.Config, got {config!r}")
        self._rt: Runtime[R] = Runtime(config)
        self._pool: SidePool[R] = SidePool(self._rt)
        self._callbacks = CallbackRunner(self._rt.log)
        self._lifecycle = Lifecycle(self._rt, self._pool, self._callbacks)
        self._loop_thread: int | None = None  # the thread running the manager's loop, once a submission saw it
        self._last_task: object = NO_TASK  # the task function last found fine: the same one again needs no check

    async def __aenter__(self) -> Self:
        """Start the manager."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop gracefully on a normal exit; kill on an exception or cancellation."""
        if exc_type is None:
            try:
                await self.stop()
            except BaseException:
                await self._kill_shielded()
                raise
        else:
            await self._kill_shielded()

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Create every base worker's resource and the ``run_task`` pool, then start the workers.

        Raises:
            ResourceCreationError: ``on_create`` failed; whatever was made is
                destroyed first, and ``start()`` may be called again.
            ManagerNotRunningError: the manager was stopped or killed (before
                or during this call): a manager is single-use.
            RuntimeError: ``start()`` was already called.
        """
        await self._lifecycle.start()

    async def stop(self, timeout: float | None = None) -> None:
        """Refuse new tasks, finish every queued and running one, destroy every resource.

        Running tasks are not cancelled. Safe to call more than once and
        concurrently with :meth:`kill`; before ``start()`` it just marks the
        manager stopped.

        Args:
            timeout: seconds to wait for the drain before escalating to
                :meth:`kill` (``None`` or ``math.inf``: wait as long as it takes).

        Raises:
            ValueError: ``timeout`` is negative, ``nan``, too large for a float or not a number.
            RuntimeError: called from inside one of this manager's own tasks
                (or a ``run_task`` body), whose end it would wait for; nothing
                changes. Stop it from elsewhere, e.g. a task of its own:
                ``asyncio.create_task(manager.stop())`` (keep a reference).
        """
        await self._lifecycle.stop(timeout)

    async def kill(self) -> None:
        """Refuse new tasks, cancel running ones, end queued ones with ``TaskAbortedError``.

        Every resource is destroyed before it returns. Safe to call more
        than once and concurrently with :meth:`stop`. Awaited from inside one
        of the manager's own tasks (or a ``run_task`` body), it cancels that
        run too: the call ends in that cancellation rather than returning,
        and the task's caller gets ``TaskAbortedError``.
        """
        await self._lifecycle.kill()

    async def _kill_shielded(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.kill()

    # -- the accept path: checks -------------------------------------------------
    # In the steady state each check costs an attribute compare, inline at the call
    # site: ``fn is not self._last_task`` and ``get_ident() != self._loop_thread``.

    def _check_task(self, fn: object) -> None:
        check_task(fn)
        self._last_task = fn

    def _check_caller(self, method: str) -> None:
        error = self._caller_error(method)
        if error is not None:
            raise error

    def _caller_error(self, method: str) -> Exception | None:
        """Why ``method`` may take no task now: the manager is not running, or the caller is off its loop.

        ``None`` if it may: then the calling thread is the one running the loop, and later calls only
        compare thread ids (on Python 3.11, ``asyncio._get_running_loop()`` makes a getpid() system call).
        """
        rt = self._rt
        if not rt.accepting:
            return rt.refusal()
        if get_ident() != self._loop_thread:
            if asyncio._get_running_loop() is not rt.loop:
                return wrong_loop(method)
            self._loop_thread = get_ident()
        return None

    def _timeout(self, timeout: float | None) -> float | None:
        if timeout is None:
            return self._rt.ledger.default_timeout
        if not _is_number(timeout) or timeout <= 0:  # also nan, inf, and ints too big for a float
            raise ValueError(f"timeout must be a finite number of seconds > 0 or None, got {timeout!r}")
        return timeout

    def _options(self, priority: bool, once: bool, timeout: float | None) -> RunOptions:
        # Callers take the ledger's default_options themselves when nothing is asked for: most calls.
        return self._rt.ledger.options(priority, once, self._timeout(timeout))

    def _queue_full(self, priority: bool) -> QueueFullError:
        lane = "priority" if priority else "main"
        return QueueFullError(f"the {lane} queue holds max_queue_size={self._rt.config.max_queue_size} tasks")

    # -- the accept path: submission ---------------------------------------------

    async def submit(
        self, fn: Callable[[R, Unpack[Ts]], Awaitable[T]], *args: *Ts, priority: bool = False, once: bool = False,
        timeout: float | None = None,
    ) -> TaskHandle[T]:  # fmt: skip
        """Queue ``fn(resource, *args)`` and return its handle at once.

        Waits for room when ``max_queue_size`` is reached.

        Args:
            fn: ``async def fn(resource, *args)``.
            args: positional arguments after the resource.
            priority: queue it on the priority queue.
            once: never re-run it after an unhealthy error.
            timeout: seconds its run may take (default ``Config.task_timeout``).

        Raises:
            ManagerNotRunningError: the manager is not running, or stopped
                while this call waited for room.
            ResourceCreationError: the creation breaker is open (see
                ``Config.creation_breaker_threshold``).
            RuntimeError: called outside the manager's event loop (from another
                thread, use :meth:`submit_threadsafe`).
            TypeError: ``fn`` is not an async function: not callable, an async
                generator function, or a plain ``def`` function.
            ValueError: ``timeout`` is not a finite number of seconds > 0.
        """
        rt = self._rt
        if not rt.accepting or get_ident() != self._loop_thread:
            self._check_caller("submit")
        while True:
            try:
                return self.submit_nowait(fn, *args, priority=priority, once=once, timeout=timeout)
            except QueueFullError:
                await rt.queue.wait_for_room(priority)

    def submit_nowait(
        self, fn: Callable[[R, Unpack[Ts]], Awaitable[T]], *args: *Ts, priority: bool = False, once: bool = False,
        timeout: float | None = None,
    ) -> TaskHandle[T]:  # fmt: skip
        """Queue ``fn(resource, *args)`` without waiting; see :meth:`submit`.

        Raises:
            QueueFullError: the queue is at ``max_queue_size``.
            ManagerNotRunningError: the manager is not running.
            RuntimeError: called outside the manager's event loop (from another
                thread, use :meth:`submit_threadsafe`).
            TypeError: ``fn`` is not an async function (see :meth:`submit`).
            ValueError: ``timeout`` is not a finite number of seconds > 0.
        """
        # The one accept path of every submission: submit waits for room and tries it
        # again, queue_task awaits the handle it returns.
        if fn is not self._last_task:
            self._check_task(fn)
        rt = self._rt
        if not rt.accepting or get_ident() != self._loop_thread:
            self._check_caller("submit_nowait")
        ledger = rt.ledger
        if timeout is None and not (priority or once):
            options = ledger.default_options
        else:
            options = self._options(priority, once, timeout)
        if rt.bounded and ledger.queue.full(priority):
            raise self._queue_full(priority)
        handle: TaskHandle[T] = TaskHandle(loop=rt.loop)
        ledger.accept(handle, fn, args, options)
        return handle

    async def queue_task(
        self, fn: Callable[[R, Unpack[Ts]], Awaitable[T]], *args: *Ts, priority: bool = False, once: bool = False,
        timeout: float | None = None,
    ) -> T:  # fmt: skip
        """Queue ``fn(resource, *args)`` and wait for its result.

        If this call is cancelled, the task is removed from its queue, or
        its run is cancelled; the worker keeps its resource.

        Raises:
            ManagerNotRunningError: the manager is not running.
            RuntimeError: called outside the manager's event loop (from another
                thread, use :meth:`submit_threadsafe`).
            TypeError: ``fn`` is not an async function (see :meth:`submit`).
            ValueError: ``timeout`` is not a finite number of seconds > 0.
            TaskTimeoutError: the run outlived its timeout.
            MaxRetriesExceededError: every allowed run hit an unhealthy error.
            TaskAbortedError: ``kill()`` ended the task.
            Exception: whatever ``fn`` raised, unchanged.
        """
        rt = self._rt
        if not rt.accepting or get_ident() != self._loop_thread:
            self._check_caller("queue_task")
        try:
            handle = self.submit_nowait(fn, *args, priority=priority, once=once, timeout=timeout)
        except QueueFullError:
            handle = await self.submit(fn, *args, priority=priority, once=once, timeout=timeout)
        return await handle

    async def run_task(
        self,
        fn: Callable[[R, Unpack[Ts]], Awaitable[T]],
        *args: *Ts,
        timeout: float | None = None,
    ) -> T:
        """Run ``fn(resource, *args)`` now, bypassing the queues.

        Takes a resource from the ``run_task`` pool, or creates a temporary
        one (destroyed afterwards) when the pool is empty.

        Raises:
            ManagerNotRunningError: the manager is not running.
            RuntimeError: called outside the manager's event loop.
            TypeError: ``fn`` is not an async function (see :meth:`submit`).
            ValueError: ``timeout`` is not a finite number of seconds > 0.
            ResourceCreationError: a temporary resource could not be made.
            TaskTimeoutError: the run outlived its timeout.
            TaskAbortedError: ``kill()`` cancelled the run.
            Exception: whatever ``fn`` raised, unchanged.
        """
        if fn is not self._last_task:
            self._check_task(fn)
        rt = self._rt
        if not rt.accepting or get_ident() != self._loop_thread:
            self._check_caller("run_task")
        return await self._pool.run(fn, args, self._timeout(timeout))
