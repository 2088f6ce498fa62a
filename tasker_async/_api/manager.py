"""``AsyncManager``: the public face; lifecycle in ``_api.lifecycle``, the work in ``_core.worker``."""

from __future__ import annotations

from _thread import get_ident
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Generic, Self, TypeVar, TypeVarTuple, Unpack

from .._core.config import Config, _is_number
from .._core.handle import RunOptions, TaskHandle
from .._observe.events import LifecycleHook
from .._observe.metrics import TaskMetrics
from .._observe.stats import TaskStats
from ..errors import QueueFullError
from .aliases import GoAliases
from .bulk import BulkMethods
from .callback_submit import CallbackSubmission
from .checks import NO_TASK
from .lifecycle import Lifecycle
from .threadsafe import ThreadsafeMethods

__all__ = ("AsyncManager",)

R = TypeVar("R")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class AsyncManager(Lifecycle[R], CallbackSubmission[R], GoAliases[R], BulkMethods[R], ThreadsafeMethods[R], Generic[R]):
    """Runs tasks on a pool of workers, each bound to its own resource.

    Use it as ``async with AsyncManager(config) as manager:`` (leaving the
    block normally calls :meth:`stop`; leaving it by an exception or a
    cancellation calls :meth:`kill`), or call :meth:`start` and
    :meth:`stop` yourself. A manager is single-use.

    Args:
        config: how resources are made and tasks are run.
    """

    def __init__(self, config: Config[R]) -> None:
        """Prepare a manager; nothing runs until :meth:`start`."""
        if not isinstance(config, Config):
            raise TypeError(f"AsyncManager needs a tasker_async.Config, got {config!r}")
        super().__init__(config)
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

    # -- submission ------------------------------------------------------------

    def _timeout(self, timeout: float | None) -> float | None:
        if timeout is None:
            return self._rt.ledger.default_timeout
        if not _is_number(timeout) or timeout <= 0:  # also nan, inf, and ints too big for a float
            raise ValueError(f"timeout must be a finite number of seconds > 0 or None, got {timeout!r}")
        return timeout

    def _options(self, priority: bool, once: bool, timeout: float | None) -> RunOptions:
        # Callers take the ledger's default_options themselves when nothing is asked for: most calls.
        return self._rt.ledger.options(priority, once, self._timeout(timeout))

    async def submit(
        self,
        fn: Callable[[R, Unpack[Ts]], Awaitable[T]],
        *args: *Ts,
        priority: bool = False,
        once: bool = False,
        timeout: float | None = None,
    ) -> TaskHandle[T]:
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
        self,
        fn: Callable[[R, Unpack[Ts]], Awaitable[T]],
        *args: *Ts,
        priority: bool = False,
        once: bool = False,
        timeout: float | None = None,
    ) -> TaskHandle[T]:
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

    def _queue_full(self, priority: bool) -> QueueFullError:
        lane = "priority" if priority else "main"
        return QueueFullError(f"the {lane} queue holds max_queue_size={self._rt.config.max_queue_size} tasks")

    async def queue_task(
        self,
        fn: Callable[[R, Unpack[Ts]], Awaitable[T]],
        *args: *Ts,
        priority: bool = False,
        once: bool = False,
        timeout: float | None = None,
    ) -> T:
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

    def add_hook(self, hook: LifecycleHook) -> None:
        """Register ``hook`` to be told of every lifecycle event from now on.

        Raises:
            TypeError: ``hook`` is not callable, or is async (never awaited).
        """
        self._rt.hooks.add(hook)

    def remove_hook(self, hook: LifecycleHook) -> None:
        """Unregister ``hook``.

        Raises:
            ValueError: ``hook`` was not registered.
        """
        self._rt.hooks.remove(hook)

    # -- observation -------------------------------------------------------------

    def stats(self) -> TaskStats:
        """Return a snapshot of workers, queues and resources; O(1)."""
        rt = self._rt
        return TaskStats(
            base_workers=rt.config.worker_count,
            active_workers=rt.workers.active,
            burst_workers=rt.workers.burst,
            queued_tasks=rt.queue.lane_length(False),
            priority_tasks=rt.queue.lane_length(True),
            running_tasks=rt.ledger.running,
            available_resources=len(self._pool.idle),
            resource_creation_failures=rt.resources.creation_failures,
            burst_workers_added=rt.workers.burst_added,
            burst_workers_retired=rt.workers.burst_retired,
            throttled_seconds=rt.limiter.throttled if rt.limiter is not None else 0.0,
            state=rt.state,
            temporary_resources=self._pool.temporaries,
        )

    def metrics(self) -> TaskMetrics:
        """Return the collector's aggregated task metrics."""
        return self._rt.collector.metrics()

    def __repr__(self) -> str:
        """Show the live counts, e.g. ``<AsyncManager running workers=4/8 burst=0 queued=10+1 running=4>``."""
        rt = self._rt
        return (
            f"<AsyncManager {rt.state} workers={rt.workers.active}/{rt.workers.max_workers}"
            f" burst={rt.workers.burst} queued={rt.queue.lane_length(False)}+{rt.queue.lane_length(True)}"
            f" running={rt.ledger.running}>"
        )
