"""``AsyncManager``: the public class.

Its core, in ``_api.base``, holds the pieces, starts and stops them, and
accepts tasks (``submit_nowait``, ``submit``, ``queue_task``, ``run_task``).
Every other way to submit is written with those: the Go aliases here;
``map``/``as_completed`` (``_api.bulk``), ``submit_threadsafe``
(``_api.threadsafe``) and ``queue_task_with_callback``
(``_api.callback_submit``) are functions given the manager. The work itself
is in ``_core``.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, Literal, TypeVar, TypeVarTuple, Unpack, overload

from .._core.handle import TaskHandle
from .._observe.events import LifecycleHook
from .._observe.metrics import TaskMetrics
from .._observe.stats import TaskStats
from .base import ManagerBase
from .bulk import Items, map_results
from .callback_submit import submit_with_callback
from .checks import check_task
from .submission import Callback, Submission, Task
from .threadsafe import submit_threadsafe

__all__ = ("AsyncManager",)

R = TypeVar("R")
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741
Ts = TypeVarTuple("Ts")


class AsyncManager(ManagerBase[R], Generic[R]):
    """Runs tasks on a pool of workers, each bound to its own resource.

    Use it as ``async with AsyncManager(config) as manager:`` (leaving the
    block normally calls :meth:`stop`; leaving it by an exception or a
    cancellation calls :meth:`kill`), or call :meth:`start` and
    :meth:`stop` yourself. A manager is single-use.

    Args:
        config: how resources are made and tasks are run.
    """

    def queue_task_with_callback(
        self,
        fn: Callable[[R, Unpack[Ts]], Awaitable[T]],
        callback: Callable[[T | None, BaseException | None], object],
        *args: *Ts,
        priority: bool = False,
        once: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Queue ``fn(resource, *args)`` and return at once; ``callback(result, exc)`` gets the outcome.

        The callback, sync or async, is called exactly once, with ``exc`` set
        to ``None`` on success, to the error otherwise; also when the manager
        is not running (``ManagerNotRunningError``), and when this is called
        outside the manager's event loop (a ``RuntimeError``: from another
        thread, use ``submit_threadsafe``). It runs on the manager's loop
        while that runs; else, with no loop in the calling thread, before this
        returns. What it raises is logged.

        Raises:
            TypeError: ``fn`` is not an async function (see ``submit``).
            ValueError: ``timeout`` is not a finite number of seconds > 0.
        """
        check_task(fn)
        submit_with_callback(self, Submission(fn, args, priority, once, self._timeout(timeout)), callback)

    def submit_threadsafe(
        self, fn: Task[R, *Ts, T], *args: *Ts, priority: bool = False, once: bool = False, timeout: float | None = None
    ) -> concurrent.futures.Future[T]:
        """Queue ``fn(resource, *args)`` from any thread; return a future of its outcome.

        Callable from any thread, the loop's own included (there, await
        ``asyncio.wrap_future(future)``: a blocking ``future.result()`` or
        ``future.exception()`` raises ``RuntimeError`` at once). The future
        gets the task's result, its exception, or is cancelled. Cancelling
        the future cancels the task: removed from its queue if it has not
        started, its run cancelled otherwise. When ``max_queue_size`` is
        reached the submission waits on the loop for room; it never fails
        for lack of room. The arguments are those of :meth:`submit`.

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
        return submit_threadsafe(self, Submission(fn, args, priority, once, timeout))

    # -- map and as_completed ----------------------------------------------------

    # fmt: off
    @overload
    def map(self, fn: Task[R, I, T], items: Items[I], *, ordered: bool = ..., max_pending: int | None = ...,
            return_exceptions: Literal[False] = ..., priority: bool = ..., timeout: float | None = ...,
            ) -> AsyncGenerator[T, None]: ...
    @overload
    def map(self, fn: Task[R, I, T], items: Items[I], *, ordered: bool = ..., max_pending: int | None = ...,
            return_exceptions: bool, priority: bool = ..., timeout: float | None = ...,
            ) -> AsyncGenerator[T | BaseException, None]: ...
    # fmt: on
    def map(
        self,
        fn: Task[R, I, T],
        items: Items[I],
        *,
        ordered: bool = True,
        max_pending: int | None = None,
        return_exceptions: bool = False,
        priority: bool = False,
        timeout: float | None = None,
    ) -> AsyncGenerator[T | BaseException, None]:
        """Run ``fn(resource, item)`` for every item; iterate over the results.

        ``items`` is pulled lazily, on the iterating task, only while fewer
        than ``max_pending`` tasks are submitted and not yet yielded. When
        the iteration stops early (``break``, an exception, a cancellation),
        every pending task is cancelled: queued ones never run. Iterate
        inside ``async with contextlib.aclosing(manager.map(...)) as results:``
        to have that happen on leaving the block, not at garbage collection.

        Args:
            fn: ``async def fn(resource, item)``.
            items: an iterable or an async iterable, possibly endless.
            ordered: yield in input order (``True``) or as tasks finish.
            max_pending: most tasks submitted and not yet yielded (default: 2 * ``Config.max_worker_count``).
            return_exceptions: yield errors in place of results, rather than raise the first and cancel the rest.
            priority: queue the tasks on the priority queue.
            timeout: seconds each run may take (default ``Config.task_timeout``).

        Raises:
            TypeError: ``fn`` is not an async function (see ``submit``), or
                ``items`` is not iterable.
            ValueError: ``max_pending`` is not an int >= 1, or ``timeout`` not
                a finite number of seconds > 0.
            ManagerNotRunningError: (iterating) the manager is not running.
            Exception: (iterating) the first task error, unless ``return_exceptions``.
        """
        return map_results(self, fn, items, ordered, max_pending, return_exceptions, priority, timeout)

    # fmt: off
    @overload
    def as_completed(self, fn: Task[R, I, T], items: Items[I], *, max_pending: int | None = ...,
                     return_exceptions: Literal[False] = ..., priority: bool = ..., timeout: float | None = ...,
                     ) -> AsyncGenerator[T, None]: ...
    @overload
    def as_completed(self, fn: Task[R, I, T], items: Items[I], *, max_pending: int | None = ...,
                     return_exceptions: bool, priority: bool = ..., timeout: float | None = ...,
                     ) -> AsyncGenerator[T | BaseException, None]: ...
    # fmt: on
    def as_completed(
        self, fn: Task[R, I, T], items: Items[I], *, max_pending: int | None = None, return_exceptions: bool = False,
        priority: bool = False, timeout: float | None = None,
    ) -> AsyncGenerator[T | BaseException, None]:  # fmt: skip
        """``map(fn, items, ordered=False, ...)``: the results in the order the tasks finish.

        Raises:
            TypeError: ``fn`` is not an async function, or ``items`` is not iterable.
            ValueError: ``max_pending`` or ``timeout`` is out of range.
        """
        return map_results(self, fn, items, False, max_pending, return_exceptions, priority, timeout)

    # -- names from the Go tasker, for readers coming from it -----------------------

    async def queue_task_with_priority(self, fn: Task[R, *Ts, T], *args: *Ts, timeout: float | None = None) -> T:
        """``queue_task(fn, *args, priority=True)``."""
        return await self.queue_task(fn, *args, priority=True, timeout=timeout)

    async def queue_task_once(self, fn: Task[R, *Ts, T], *args: *Ts, timeout: float | None = None) -> T:
        """``queue_task(fn, *args, once=True)``."""
        return await self.queue_task(fn, *args, once=True, timeout=timeout)

    async def queue_task_with_priority_once(self, fn: Task[R, *Ts, T], *args: *Ts, timeout: float | None = None) -> T:
        """``queue_task(fn, *args, priority=True, once=True)``."""
        return await self.queue_task(fn, *args, priority=True, once=True, timeout=timeout)

    def queue_task_async(self, fn: Task[R, *Ts, T], *args: *Ts, timeout: float | None = None) -> TaskHandle[T]:
        """``submit_nowait(fn, *args)``: the handle at once, without awaiting."""
        return self.submit_nowait(fn, *args, timeout=timeout)

    def queue_task_with_priority_async(
        self, fn: Task[R, *Ts, T], *args: *Ts, timeout: float | None = None
    ) -> TaskHandle[T]:
        """``submit_nowait(fn, *args, priority=True)``."""
        return self.submit_nowait(fn, *args, priority=True, timeout=timeout)

    def queue_task_once_async(self, fn: Task[R, *Ts, T], *args: *Ts, timeout: float | None = None) -> TaskHandle[T]:
        """``submit_nowait(fn, *args, once=True)``."""
        return self.submit_nowait(fn, *args, once=True, timeout=timeout)

    def queue_task_with_priority_once_async(
        self, fn: Task[R, *Ts, T], *args: *Ts, timeout: float | None = None
    ) -> TaskHandle[T]:
        """``submit_nowait(fn, *args, priority=True, once=True)``."""
        return self.submit_nowait(fn, *args, priority=True, once=True, timeout=timeout)

    def queue_task_with_priority_with_callback(
        self, fn: Task[R, *Ts, T], callback: Callback[T], *args: *Ts, timeout: float | None = None
    ) -> None:
        """``queue_task_with_callback(fn, callback, *args, priority=True)``."""
        self.queue_task_with_callback(fn, callback, *args, priority=True, timeout=timeout)

    def queue_task_once_with_callback(
        self, fn: Task[R, *Ts, T], callback: Callback[T], *args: *Ts, timeout: float | None = None
    ) -> None:
        """``queue_task_with_callback(fn, callback, *args, once=True)``."""
        self.queue_task_with_callback(fn, callback, *args, once=True, timeout=timeout)

    def queue_task_with_priority_once_with_callback(
        self, fn: Task[R, *Ts, T], callback: Callback[T], *args: *Ts, timeout: float | None = None
    ) -> None:
        """``queue_task_with_callback(fn, callback, *args, priority=True, once=True)``."""
        self.queue_task_with_callback(fn, callback, *args, priority=True, once=True, timeout=timeout)

    # -- hooks and observation ---------------------------------------------------

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
