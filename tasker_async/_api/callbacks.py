"""Result callbacks of the ``queue_task_*_with_callback`` family.

A callback is called exactly once with ``(result, exc)``; a sync one runs
from the future's done-callback, an async one becomes a task the manager
keeps and awaits before its shutdown completes. What a callback raises is
logged, never lost into a task.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._core.config import LoggerProtocol

__all__ = ("ResultCallback", "CallbackRunner")

ResultCallback = Callable[[Any, BaseException | None], object]


class CallbackRunner:
    """Calls result callbacks and tracks the async ones until they finish."""

    def __init__(self, log: logging.Logger | LoggerProtocol) -> None:
        """Make a runner that logs callback errors to ``log``."""
        self._log = log
        self._tasks: set[asyncio.Future[Any]] = set()  # every tracked task, shutdown waits for them
        self._running_callbacks: set[asyncio.Future[Any]] = set()  # those that are async callbacks

    def deliver(self, future: asyncio.Future[Any], callback: ResultCallback) -> None:
        """Call ``callback`` with the outcome of ``future`` once it is done."""
        future.add_done_callback(lambda done: self._on_done(done, callback))

    def _on_done(self, future: asyncio.Future[Any], callback: ResultCallback) -> None:
        if future.cancelled():
            self.call(callback, None, asyncio.CancelledError())
            return
        exc = future.exception()
        self.call(callback, None if exc is not None else future.result(), exc)

    def call(self, callback: ResultCallback, result: Any, exc: BaseException | None) -> None:
        """Call ``callback(result, exc)`` now; an awaitable it returns is run as a task."""
        try:
            outcome = callback(result, exc)
        except (Exception, asyncio.CancelledError):  # a sync callback cannot be cancelled: it raised it
            self._log.error("a task callback raised", exc_info=True)
            return
        if inspect.isawaitable(outcome):
            task = asyncio.ensure_future(outcome)
            self._running_callbacks.add(task)
            task.add_done_callback(self._running_callbacks.discard)
            self.track(task)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a tracked task (a callback submission waiting for room)."""
        self.track(asyncio.ensure_future(coro))

    def track(self, task: asyncio.Future[Any]) -> None:
        """Keep ``task`` alive and log its failure."""
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("a task callback raised", exc_info=task.exception())

    def cancel_callbacks(self) -> None:
        """Cancel the async callbacks running now (``kill()``); submissions waiting for room go on."""
        for task in list(self._running_callbacks):
            task.cancel()

    async def wait(self) -> None:
        """Wait until every tracked callback task has finished."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))
