"""Names from the Go library, each a one-line wrapper over the Python API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Generic, TypeVar, TypeVarTuple, Unpack

from .._core.handle import TaskHandle

__all__ = ("GoAliases",)

R = TypeVar("R")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

Task = Callable[[R, Unpack[Ts]], Awaitable[T]]
Callback = Callable[[T | None, BaseException | None], object]


class GoAliases(Generic[R]):
    """``QueueTaskWithPriority`` and friends, for readers coming from the Go ``tasker``."""

    if TYPE_CHECKING:

        async def queue_task(
            self,
            fn: Task[R, *Ts, T],
            *args: *Ts,
            priority: bool = ...,
            once: bool = ...,
            timeout: float | None = ...,
        ) -> T: ...

        def submit_nowait(
            self,
            fn: Task[R, *Ts, T],
            *args: *Ts,
            priority: bool = ...,
            once: bool = ...,
            timeout: float | None = ...,
        ) -> TaskHandle[T]: ...

        def queue_task_with_callback(
            self,
            fn: Task[R, *Ts, T],
            callback: Callback[T],
            *args: *Ts,
            priority: bool = ...,
            once: bool = ...,
            timeout: float | None = ...,
        ) -> None: ...

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
