"""``queue_task_with_callback``: queue a task and return at once; its outcome always reaches the callback."""

from __future__ import annotations

from _thread import get_ident
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, TypeVarTuple, Unpack

from .._core.handle import TaskHandle
from ..errors import ManagerNotRunningError, QueueFullError, ResourceCreationError
from .callbacks import CallbackRunner, ResultCallback
from .checks import SubmissionChecks, call_back_from_anywhere, check_task

if TYPE_CHECKING:
    from .._core.runtime import Runtime

__all__ = ("CallbackSubmission",)

R = TypeVar("R")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class CallbackSubmission(SubmissionChecks, Generic[R]):
    """``queue_task_with_callback`` of ``AsyncManager``."""

    if TYPE_CHECKING:
        _rt: Runtime[R]
        _callbacks: CallbackRunner

        async def submit(
            self, fn: Callable[[R, Unpack[Ts]], Awaitable[T]], *args: *Ts, priority: bool = ..., once: bool = ...,
            timeout: float | None = ...,
        ) -> TaskHandle[T]: ...  # fmt: skip

        def _timeout(self, timeout: float | None) -> float | None: ...

        def submit_nowait(
            self, fn: Callable[[R, Unpack[Ts]], Awaitable[T]], *args: *Ts, priority: bool = ..., once: bool = ...,
            timeout: float | None = ...,
        ) -> TaskHandle[T]: ...  # fmt: skip

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
        timeout = self._timeout(timeout)
        rt = self._rt
        deliver: ResultCallback = callback
        if not rt.accepting or get_ident() != self._loop_thread:
            error = self._caller_error("queue_task_with_callback")
            if error is not None:
                call_back_from_anywhere(rt.loop, self._callbacks, deliver, error, rt.log)
                return
        try:
            handle = self.submit_nowait(fn, *args, priority=priority, once=once, timeout=timeout)
        except QueueFullError:
            self._callbacks.spawn(self._submit_later(fn, deliver, args, priority, once, timeout))
        else:
            self._callbacks.deliver(handle, deliver)

    async def _submit_later(
        self,
        fn: Callable[..., Awaitable[Any]],
        callback: ResultCallback,
        args: tuple[Any, ...],
        priority: bool,
        once: bool,
        timeout: float | None,
    ) -> None:
        try:
            handle = await self.submit(fn, *args, priority=priority, once=once, timeout=timeout)
        except (ManagerNotRunningError, ResourceCreationError) as exc:
            self._callbacks.call(callback, None, exc)
        else:
            self._callbacks.deliver(handle, callback)
