"""``map`` and ``as_completed``: many items through the workers, with bounded work in flight.

The input is pulled on the consumer's task only when there is room, so an endless input never
fills memory; what is pending when the consumer stops is cancelled in the generator's ``finally``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Generic, Literal, TypeVar, TypeVarTuple, Unpack, overload

from .._core.handle import TaskHandle
from .checks import check_task

if TYPE_CHECKING:
    from .._core.runtime import Runtime

__all__ = ("BulkMethods",)

R = TypeVar("R")
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741
Ts = TypeVarTuple("Ts")

Task = Callable[[R, I], Awaitable[T]]
Items = Iterable[I] | AsyncIterable[I]


class BulkMethods(Generic[R]):
    """``map`` and ``as_completed`` of ``AsyncManager``."""

    if TYPE_CHECKING:
        _rt: Runtime[R]

        async def submit(
            self,
            fn: Callable[[R, Unpack[Ts]], Awaitable[T]],
            *args: *Ts,
            priority: bool = ...,
            once: bool = ...,
            timeout: float | None = ...,
        ) -> TaskHandle[T]: ...

        def _timeout(self, timeout: float | None) -> float | None: ...

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
        check_task(fn)
        if max_pending is not None and (type(max_pending) is not int or max_pending < 1):
            raise ValueError(f"max_pending must be an int >= 1 or None, got {max_pending!r}")
        if not isinstance(items, (Iterable, AsyncIterable)):
            raise TypeError(f"items must be an iterable or an async iterable, got {items!r}")
        if timeout is not None:
            self._timeout(timeout)
        source = aiter(items) if isinstance(items, AsyncIterable) else iter(items)
        limit = 2 * self._rt.workers.max_workers if max_pending is None else max_pending
        return self._results(fn, source, ordered, limit, return_exceptions, priority, timeout)

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
        self,
        fn: Task[R, I, T],
        items: Items[I],
        *,
        max_pending: int | None = None,
        return_exceptions: bool = False,
        priority: bool = False,
        timeout: float | None = None,
    ) -> AsyncGenerator[T | BaseException, None]:
        """``map(fn, items, ordered=False, ...)``: the results in the order the tasks finish.

        Raises:
            TypeError: ``fn`` is not an async function, or ``items`` is not iterable.
            ValueError: ``max_pending`` or ``timeout`` is out of range.
        """
        return self.map(
            fn,
            items,
            ordered=False,
            max_pending=max_pending,
            return_exceptions=return_exceptions,
            priority=priority,
            timeout=timeout,
        )

    async def _results(
        self,
        fn: Task[R, I, T],
        source: Iterator[I] | AsyncIterator[I],
        ordered: bool,
        limit: int,
        return_exceptions: bool,
        priority: bool,
        timeout: float | None,
    ) -> AsyncGenerator[T | BaseException, None]:
        pending: dict[asyncio.Future[T], None] = {}  # submitted, not yet yielded, in input order: the bound
        finished: deque[asyncio.Future[T]] = deque()  # unordered: done, not yet yielded, in completion order
        wake = asyncio.Event()

        def on_done(handle: asyncio.Future[T]) -> None:
            finished.append(handle)
            wake.set()

        handle: asyncio.Future[T]
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < limit:
                    try:
                        item = await anext(source) if isinstance(source, AsyncIterator) else next(source)
                    except (StopIteration, StopAsyncIteration):
                        exhausted = True
                        break
                    handle = await self.submit(fn, item, priority=priority, timeout=timeout)
                    pending[handle] = None
                    if not ordered:
                        handle.add_done_callback(on_done)
                if not pending:
                    return
                if ordered:
                    handle = next(iter(pending))
                    if not handle.done():
                        await asyncio.wait((handle,))
                else:
                    while not finished:
                        wake.clear()
                        await wake.wait()
                    handle = finished.popleft()
                del pending[handle]
                # Cancelled only if its task cancelled itself: report what awaiting it would.
                error = asyncio.CancelledError() if handle.cancelled() else handle.exception()
                if error is None:
                    yield handle.result()
                elif return_exceptions:
                    yield error
                else:
                    raise error
        finally:
            for handle in pending:
                if not handle.cancel() and not handle.cancelled():
                    handle.exception()  # an error nobody will see now: not worth a log line
