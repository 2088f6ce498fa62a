"""The side pool behind ``run_task``: pre-made resources, or a temporary one when empty."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any, Generic, TypeVar

import anyio

from ..errors import TaskAbortedError, TaskTimeoutError
from .cancel import RunDeadline
from .classify import Verdict, classify
from .context import enter_task_runner, leave_task_runner
from .runtime import Runtime
from .side_run import SideRun

__all__ = ("SidePool",)

_SLOT = object()  # what a waiting run_task caller is handed instead of a resource: make a temporary one

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
        self.temporaries = 0  # temporary resources being made, used or destroyed
        # Callers waiting for a resource, oldest first: each future gets a pooled
        # resource, or _SLOT (a temporary slot, already counted in ``temporaries``).
        self._waiters: deque[asyncio.Future[Any]] = deque()

    async def run(self, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...], timeout: float | None) -> T:
        """Run ``fn(resource, *args)`` on a pooled or temporary resource.

        Raises:
            ResourceCreationError: the pool was empty and ``on_create`` failed.
            TaskTimeoutError: the run outlived ``timeout``.
            TaskAbortedError: ``kill()`` cancelled the run.
        """
        rt = self._rt
        rt.side_run_started()
        self._quiet.clear()
        runner = enter_task_runner(rt)  # stop() from fn must not wait for this run
        try:
            with anyio.CancelScope() as scope:
                self._scopes.add(scope)
                try:
                    return await self._run(fn, args, timeout, scope)
                finally:
                    self._scopes.discard(scope)
            raise TaskAbortedError("the manager was killed while run_task ran")
        finally:
            leave_task_runner(runner)
            if rt.side_run_ended():
                self._quiet.set()

    async def _run(
        self, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...], timeout: float | None, scope: anyio.CancelScope
    ) -> T:
        rt = self._rt
        record = SideRun(fn, rt.collector, rt.hooks)
        try:
            resource, pooled = await self._acquire(timeout)
        except BaseException as exc:
            record.unstarted(exc, killed=scope.cancel_called)
            raise
        started = await self._throttle(resource, pooled)
        record.start(started)
        deadline = None
        if timeout is not None:
            deadline = RunDeadline(max(timeout - (started - record.queued), 0.0), rt.config.cancel_grace)
        try:
            if deadline is None:
                result = await fn(resource, *args)
            else:
                # Cancelled once at its deadline, so its own cleanup may finish (see _core.cancel).
                with deadline:
                    result = await fn(resource, *args)
        except BaseException as exc:
            # A run that overran its cancellation leaves its resource in an unknown state.
            healthy = deadline is None or not deadline.overran
            try:
                healthy = await self._judge(record, exc, scope, healthy=healthy)
            finally:
                await self._give_back(resource, pooled=pooled, healthy=healthy)
            raise
        finished = monotonic()  # before the resource goes back: destroying a temporary is not the run's time
        await self._give_back(resource, pooled=pooled, healthy=True)
        record.succeeded(finished)
        return result

    async def _throttle(self, resource: R, pooled: bool) -> float:
        """Wait for the start-rate limiter, if any; return when the run starts."""
        started = monotonic()
        limiter = self._rt.limiter
        if limiter is not None:
            wait = limiter.reserve(started)
            if wait > 0:
                try:
                    await anyio.sleep(wait)
                except BaseException:
                    await self._give_back(resource, pooled=pooled, healthy=True)
                    raise
                started = monotonic()
        return started

    async def _judge(self, record: SideRun, exc: BaseException, scope: anyio.CancelScope, *, healthy: bool) -> bool:
        """Count and report a run that raised ``exc``; return whether its resource may be reused."""
        finished = monotonic()  # check_health's time is not the run's
        killed = scope.cancel_called
        verdict = classify(exc, caller_cancelled=not killed, killed=killed)
        if verdict in (Verdict.CANCELLED, Verdict.ABORTED):
            record.ended_by_cancellation(killed=killed)
            return healthy
        # run_task never retries; the errors that steer retries say nothing about the resource.
        if verdict is Verdict.JUDGE and healthy:
            healthy = await self._rt.resources.is_healthy(exc)
        record.failed(exc, count=verdict is not Verdict.EXIT, finished=finished)
        return healthy

    async def _acquire(self, timeout: float | None) -> tuple[R, bool]:
        """A pooled resource (``True``) or a new temporary one (``False``), waiting for either at the cap.

        Raises:
            TaskTimeoutError: no resource within ``timeout`` seconds.
            ResourceCreationError: a temporary resource could not be made.
        """
        if self.idle:
            return self.idle.popleft(), True
        cap = self._rt.config.max_temporary_resources
        assert cap != "worker_count"
        if cap is None or self.temporaries < cap:
            self.temporaries += 1
            return await self._make_temporary(), False
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                got = await waiter
        except BaseException as exc:
            if not waiter.done() or waiter.cancelled():
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            elif waiter.result() is _SLOT:
                self._free_slot()  # handed a slot it will not use: on to the next caller
            else:
                await self._give_back(waiter.result(), pooled=True, healthy=True)
            if isinstance(exc, TimeoutError):
                assert timeout is not None
                raise TaskTimeoutError(timeout) from None
            raise
        if got is _SLOT:
            return await self._make_temporary(), False
        return got, True

    async def _make_temporary(self) -> R:
        """Create a temporary resource in a slot already counted in ``temporaries``."""
        try:
            return await self._rt.resources.create_resource()
        except BaseException:
            self._free_slot()
            raise

    def _free_slot(self) -> None:
        """A temporary slot is free: hand it to the oldest waiting caller, if any."""
        self.temporaries -= 1
        waiter = self._next_waiter()
        if waiter is not None:
            self.temporaries += 1
            waiter.set_result(_SLOT)

    def _next_waiter(self) -> asyncio.Future[Any] | None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                return waiter
        return None

    def fill(self, resources: list[R]) -> None:
        """Keep ``resources``, made by ``start()``, for the ``run_task`` calls to come."""
        self.idle.extend(resources)

    def put_idle(self, resource: R) -> None:
        """Hand a healthy pooled resource to the oldest waiting caller, or keep it idle."""
        waiter = self._next_waiter()
        if waiter is not None:
            waiter.set_result(resource)
        else:
            self.idle.append(resource)

    async def _give_back(self, resource: R, *, pooled: bool, healthy: bool) -> None:
        if pooled and healthy and not self._closed:
            self.put_idle(resource)
            return
        try:
            await self._rt.resources.destroy_resource(resource)
        finally:
            if not pooled:
                self._free_slot()  # only once it is gone: max_temporary_resources bounds live ones
        if pooled and not healthy and not self._closed and self._rt.tg is not None:
            self._rt.tg.start_soon(self._refill)

    async def _refill(self) -> None:
        """Replace a pooled resource that went bad, retrying ``on_create`` with the workers' backoff.

        Runs in the host's task group, which cancels it when the manager
        ends; it also gives up once the pool closes or the manager leaves
        "running". ``run_task`` makes temporary resources meanwhile.
        """
        rt = self._rt
        resource = await rt.resources.create_with_backoff(wanted=lambda: not self._closed and rt.state == "running")
        if resource is None:
            return
        if self._closed:
            await rt.resources.destroy_resource(resource)
        else:
            self.put_idle(resource)

    def cancel_runs(self) -> None:
        """Cancel every ``run_task`` call in flight (``kill()``)."""
        for scope in self._scopes:
            scope.cancel()

    async def close(self) -> None:
        """Wait for the calls in flight, then destroy every idle resource."""
        await self._quiet.wait()
        self._closed = True
        while self.idle:
            await self._rt.resources.destroy_resource(self.idle.popleft())
