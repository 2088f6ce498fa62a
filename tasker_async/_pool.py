"""The side pool behind ``run_task``: pre-made resources, or a temporary one when empty."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any, Generic, TypeVar

import anyio

from ._events import TaskEvent, TaskEventKind
from ._metrics import TaskLifecycleTimestamps
from ._resources import call_with_timeout, task_name
from ._runtime import Runtime
from .errors import PermanentError, ResourceCreationError, RetryableError, TaskAbortedError, TaskTimeoutError

__all__ = ("SidePool",)

R = TypeVar("R")
T = TypeVar("T")


class SidePool(Generic[R]):
    """Resources for ``run_task`` calls, which run in their callers' own tasks."""

    def __init__(self, rt: Runtime[R]) -> None:
        """Make an empty, open pool."""
        self._rt = rt
        self.idle: deque[R] = deque()
        self._closed = False
        self._scopes: set[anyio.CancelScope] = set()
        self._quiet = asyncio.Event()  # set while no run_task call is in flight
        self._quiet.set()

    async def run(self, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...], timeout: float | None) -> T:
        """Run ``fn(resource, *args)`` on a pooled or temporary resource.

        Raises:
            ResourceCreationError: the pool was empty and ``on_create`` failed.
            TaskTimeoutError: the run outlived ``timeout``.
            TaskAbortedError: ``kill()`` cancelled the run.
        """
        rt = self._rt
        rt.side_runs += 1
        self._quiet.clear()
        try:
            with anyio.CancelScope() as scope:
                self._scopes.add(scope)
                try:
                    return await self._run(fn, args, timeout, scope)
                finally:
                    self._scopes.discard(scope)
            raise TaskAbortedError("the manager was killed while run_task ran")
        finally:
            rt.side_runs -= 1
            if not rt.side_runs:
                self._quiet.set()
                rt.check_drained()

    async def _run(
        self, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...], timeout: float | None, scope: anyio.CancelScope
    ) -> T:
        rt = self._rt
        queued = monotonic()
        rt.collector.record_arrival()
        if rt.hooks.active:
            self._report("queued", fn, queued)
        pooled = bool(self.idle)
        resource = self.idle.popleft() if pooled else await rt.create_resource()
        started = monotonic()
        if rt.limiter is not None:
            wait = rt.limiter.reserve(started)
            if wait > 0:
                try:
                    await anyio.sleep(wait)
                except BaseException:
                    await self._give_back(resource, pooled=pooled, healthy=True)
                    raise
                started = monotonic()
        if rt.hooks.active:
            self._report("started", fn, queued, started)
        try:
            if timeout is None:
                result = await fn(resource, *args)
            else:
                result = await call_with_timeout(fn, resource, args, timeout)
        except BaseException as exc:
            finished = monotonic()
            healthy = True
            try:
                kind: TaskEventKind
                error: BaseException | None = exc
                if isinstance(exc, Exception):
                    # The errors a task raises to steer retries say nothing about the resource.
                    if not isinstance(exc, (PermanentError, RetryableError)):
                        healthy = await rt.is_healthy(exc)
                    rt.collector.record_failure(TaskLifecycleTimestamps(queued, started, finished))
                    kind = "timed_out" if isinstance(exc, TaskTimeoutError) else "failed"
                elif not isinstance(exc, asyncio.CancelledError):
                    kind = "failed"  # KeyboardInterrupt, SystemExit and the like: it reaches the caller
                elif scope.cancel_called:
                    kind, error = "aborted", TaskAbortedError("the manager was killed while run_task ran")
                else:
                    kind, error = "cancelled", None
                if rt.hooks.active:
                    self._report(kind, fn, queued, started, finished, error)
            finally:
                await self._give_back(resource, pooled=pooled, healthy=healthy)
            raise
        finished = monotonic()
        await self._give_back(resource, pooled=pooled, healthy=True)
        rt.collector.record_completion(TaskLifecycleTimestamps(queued, started, finished))
        if rt.hooks.active:
            self._report("succeeded", fn, queued, started, finished)
        return result

    def _report(
        self,
        kind: TaskEventKind,
        fn: Callable[..., object],
        queued: float,
        started: float | None = None,
        finished: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        self._rt.hooks.emit(
            TaskEvent(
                kind=kind,
                name=task_name(fn),
                task_id=id(fn) ^ int(queued * 1e9),
                priority=False,
                attempt=1,
                queued_at=queued,
                started_at=started,
                finished_at=finished,
                error=error,
            )
        )

    async def _give_back(self, resource: R, *, pooled: bool, healthy: bool) -> None:
        if pooled and healthy and not self._closed:
            self.idle.append(resource)
            return
        await self._rt.destroy_resource(resource)
        if pooled and not healthy and not self._closed and self._rt.tg is not None:
            self._rt.tg.start_soon(self._refill)

    async def _refill(self) -> None:
        """Replace a pooled resource that went bad; on failure the slot stays empty."""
        rt = self._rt
        try:
            resource = await rt.create_resource()
        except ResourceCreationError:
            return  # logged and reported by create_resource; run_task makes temporary ones meanwhile
        if self._closed:
            await rt.destroy_resource(resource)
        else:
            self.idle.append(resource)

    def cancel_runs(self) -> None:
        """Cancel every ``run_task`` call in flight (``kill()``)."""
        for scope in self._scopes:
            scope.cancel()

    async def close(self) -> None:
        """Wait for the calls in flight, then destroy every idle resource."""
        await self._quiet.wait()
        self._closed = True
        while self.idle:
            await self._rt.destroy_resource(self.idle.popleft())
