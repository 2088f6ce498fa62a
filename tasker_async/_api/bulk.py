"""``map`` and ``as_completed``: many items through the workers, with bounded work in flight.

The input is pulled on the consumer's task only when there is room, so an endless input never
fills memory; what is pending when the consumer stops is cancelled in the generator's ``finally``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

from .checks import check_task

if TYPE_CHECKING:
    from .base import ManagerBase

__all__ = ("Items", "map_results")

R = TypeVar("R")
T = TypeVar("T")
I = TypeVar("I")  # noqa: E741

Task = Callable[[R, I], Awaitable[T]]
Items = Iterable[I] | AsyncIterable[I]


def map_results(
    manager: ManagerBase[R],
    fn: Task[R, I, T],
    items: Items[I],
    ordered: bool,
    max_pending: int | None,
    return_exceptions: bool,
    priority: bool,
    timeout: float | None,
) -> AsyncGenerator[T | BaseException, None]:
    """Check the arguments of ``manager.map`` now, and return the generator of its results."""
    check_task(fn)
    if max_pending is not None and (type(max_pending) is not int or max_pending < 1):
        raise ValueError(f"max_pending must be an int >= 1 or None, got {max_pending!r}")
    if not isinstance(items, (Iterable, AsyncIterable)):
        raise TypeError(f"items must be an iterable or an async iterable, got {items!r}")
    if timeout is not None:
        manager._timeout(timeout)
    source = aiter(items) if isinstance(items, AsyncIterable) else iter(items)
    limit = 2 * manager._rt.workers.max_workers if max_pending is None else max_pending
    return _results(manager, fn, source, ordered, limit, return_exceptions, priority, timeout)


async def _results(
    manager: ManagerBase[R],
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
                handle = await manager.submit(fn, item, priority=priority, timeout=timeout)
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
