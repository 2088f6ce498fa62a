"""Start, stop and kill: how a manager comes up and goes down without losing a task.

The workers live in an anyio task group held by one *host* task, so a
manager can be started and stopped from different places (a FastAPI
lifespan, a test fixture) and not only as an ``async with`` block. Shutdown
always runs to completion in the host: a caller of ``stop()`` or ``kill()``
that is cancelled only stops waiting for it.
"""

from __future__ import annotations

import asyncio
import math
from typing import Generic, TypeVar

import anyio

from .._core.config import _is_number
from .._core.context import runs_tasks_of
from .._core.pool import SidePool
from .._core.runtime import Runtime
from .._scaling.supervisor import supervise
from ..errors import ManagerNotRunningError, ResourceCreationError
from .callbacks import CallbackRunner

__all__ = ("Lifecycle",)

R = TypeVar("R")


def _to_propagate(exc: BaseException) -> BaseException | None:
    """Pick what the host task must re-raise out of what its task group raised."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _to_propagate(inner)
            if found is not None:
                return found
        return None
    if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
        return exc
    return None


class Lifecycle(Generic[R]):
    """How one manager comes up and goes down; a part of ``AsyncManager``, whose methods of the same names call it.

    Args:
        rt: the manager's runtime.
        pool: its ``run_task`` pool, filled at start and closed at the end.
        callbacks: its result callbacks, cancelled by a kill and waited for at the end.
    """

    def __init__(self, rt: Runtime[R], pool: SidePool[R], callbacks: CallbackRunner) -> None:
        """Hold the pieces; nothing runs until ``start()``."""
        self._rt = rt
        self._pool = pool
        self._callbacks = callbacks
        self._host: asyncio.Task[None] | None = None
        self._starting = False
        self._start_done = asyncio.Event()
        # Cancelled first by stop() and kill(): no scaling once shutdown begins. Made
        # by the supervisor itself, as a manager may be built outside any event loop.
        self._supervisor_scope: anyio.CancelScope | None = None

    @property
    def host(self) -> asyncio.Task[None] | None:
        """The task that holds the workers: ``None`` before ``start()``, done once the manager is over."""
        return self._host

    async def start(self) -> None:
        """Make the resources, then start the host task and its workers (see ``AsyncManager.start``)."""
        rt = self._rt
        if rt.state in ("stopping", "stopped", "killed"):
            raise ManagerNotRunningError(f"the manager is {rt.state}; a manager is single-use, make a new one")
        if self._starting or rt.state != "created":
            raise RuntimeError("start() was already called on this manager")
        self._starting = True
        self._start_done.clear()
        try:
            config = rt.config
            assert config.resource_pool_size is not None
            made = await self._create_all(config.worker_count + config.resource_pool_size)
            if rt.state != "created":
                # stop() or kill() arrived while the resources were being made.
                with anyio.CancelScope(shield=True):
                    for resource in made:
                        await rt.resources.destroy_resource(resource)
                raise ManagerNotRunningError(f"the manager was {rt.state} while starting")
            rt.run_on(asyncio.get_running_loop())
            ready = asyncio.Event()
            self._host = asyncio.create_task(
                self._host_main(made[: config.worker_count], made[config.worker_count :], ready),
                name="tasker_async host",
            )
            try:
                with anyio.CancelScope(shield=True):
                    await ready.wait()
            except BaseException:
                # Cancelled (natively: anyio's shield does not stop task.cancel()) after the
                # workers exist: no caller will stop this manager, so it must not outlive start().
                await self.kill_shielded()
                raise
            rt.log.info("manager started with %d workers", config.worker_count)
        finally:
            self._starting = False
            self._start_done.set()

    async def _create_all(self, count: int) -> list[R]:
        """Make ``count`` resources concurrently; on any failure destroy them all and raise."""
        rt = self._rt
        made: list[R] = []
        failures: list[ResourceCreationError] = []

        async def create_one() -> None:
            try:
                made.append(await rt.resources.create_resource())
            except ResourceCreationError as exc:
                failures.append(exc)

        try:
            async with anyio.create_task_group() as tg:
                for _ in range(count):
                    tg.start_soon(create_one)
        finally:
            if failures or len(made) < count:
                with anyio.CancelScope(shield=True):
                    for resource in made:
                        await rt.resources.destroy_resource(resource)
        if failures:
            raise ResourceCreationError(
                f"start() could not create its resources: {failures[0].__cause__!r}"
            ) from failures[0].__cause__
        return made

    async def _host_main(self, worker_resources: list[R], pool_resources: list[R], ready: asyncio.Event) -> None:
        rt = self._rt
        fatal: BaseException | None = None
        try:
            async with anyio.create_task_group() as tg:
                rt.host_opened(tg)
                for resource in worker_resources:
                    rt.workers.adopt(resource)
                self._pool.fill(pool_resources)
                if rt.workers.max_workers > rt.config.worker_count:
                    tg.start_soon(self._supervise)
                ready.set()
                await rt.closing.wait()
                tg.cancel_scope.cancel()
        except BaseException as exc:
            # A worker died of something other than its own cancellation (a task
            # raised SystemExit, say), or this host task itself was cancelled:
            # either way the manager is over. Kill it, then let interpreter-level
            # exits and cancellation go on; what a task raised already reached
            # its caller through its handle.
            if rt.state != "killed":
                rt.log.error("the manager's workers died; killing the manager", exc_info=exc)
                rt.set_state("killed")
            fatal = _to_propagate(exc)
        finally:
            ready.set()
            rt.host_closed()
            with anyio.CancelScope(shield=True):
                await self._release_all()
        if fatal is not None:
            raise fatal

    async def _supervise(self) -> None:
        config = self._rt.config
        assert config.scaling_policy is not None
        with anyio.CancelScope() as self._supervisor_scope:
            await supervise(self._rt, config.scaling_policy, config.burst_interval)

    async def _release_all(self) -> None:
        rt = self._rt
        rt.abort_waiting()
        for worker in rt.workers:
            # Only workers cancelled before their first step still hold a resource here.
            if worker.holds_resource:
                await rt.resources.destroy_resource(rt.workers.release(worker))
        rt.workers.clear()
        self._pool.cancel_runs()
        await self._pool.close()
        await self._callbacks.wait()
        if rt.state == "stopping":
            rt.set_state("stopped")
        rt.log.info("manager %s", rt.state)

    async def stop(self, timeout: float | None) -> None:
        """Drain, then end the workers; kill after ``timeout`` seconds (see ``AsyncManager.stop``)."""
        if timeout == math.inf:
            timeout = None  # as long as it takes
        if timeout is not None and (not _is_number(timeout) or timeout < 0):
            raise ValueError(f"timeout must be a finite number of seconds >= 0 or None, got {timeout!r}")
        rt = self._rt
        if runs_tasks_of(rt):
            raise RuntimeError(
                "stop() awaited from inside one of this manager's own tasks (or a run_task body) would wait "
                "for that very task to finish; call it from outside the task, e.g. in a task of its own: "
                "asyncio.create_task(manager.stop())"
            )
        if rt.state == "created":
            rt.set_state("stopped")
            if self._starting:
                await self._start_done.wait()
            return
        if rt.state == "running":
            rt.set_state("stopping")
            if self._supervisor_scope is not None:
                self._supervisor_scope.cancel()
            rt.log.info("manager stopping: draining %d task(s)", rt.ledger.unfinished)
            rt.queue.wake_all()
            rt.ledger.start_draining()
        host = self._host
        if host is None:
            return
        done, _ = await asyncio.wait({host}, timeout=timeout)
        if not done:
            rt.log.warning("stop() timed out after %s s; killing the manager", timeout)
            await self.kill()

    async def kill(self) -> None:
        """Abort every task and end the workers at once (see ``AsyncManager.kill``)."""
        rt = self._rt
        if rt.state == "created":
            rt.set_state("killed")
            if self._starting:
                await self._start_done.wait()
            return
        if rt.state in ("running", "stopping"):
            rt.set_state("killed")
            if self._supervisor_scope is not None:
                self._supervisor_scope.cancel()
            rt.log.info("manager killed: aborting %d task(s)", rt.ledger.unfinished)
            # Callbacks already running are cancelled like running tasks; those that the
            # aborts below call still run, each once, and shutdown waits for them.
            self._callbacks.cancel_callbacks()
            rt.abort_waiting()
            rt.queue.wake_all()
            self._pool.cancel_runs()
            rt.close()
        if self._host is not None:
            await asyncio.wait({self._host})

    async def kill_shielded(self) -> None:
        """:meth:`kill`, to its end even if the caller is cancelled meanwhile."""
        with anyio.CancelScope(shield=True):
            await self.kill()
