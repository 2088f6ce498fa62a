"""Calling the user's resource callbacks: make, destroy, judge, probe; and the creation breaker.

``Resources`` is the half of ``Runtime`` that talks to ``on_create``,
``on_destroy``, ``check_health`` and ``check_resource``: sync or async, each
call's failure is logged and reported, never raised into a task except as
the documented error.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from ._events import EventHooks, ResourceCreationFailed
from .errors import ResourceCreationError, TaskTimeoutError

if TYPE_CHECKING:
    from ._config import Config, LoggerProtocol
    from ._stats import ManagerState

__all__ = ("Resources", "call_with_timeout", "is_stray_cancellation", "task_name", "uncancellable")

R = TypeVar("R")
T = TypeVar("T")


class Resources(Generic[R]):
    """Resource callbacks, and the breaker that fails tasks fast while none can be made."""

    config: Config[R]
    log: logging.Logger | LoggerProtocol
    hooks: EventHooks
    state: ManagerState
    accepting: bool
    active_workers: int
    creation_failures: int

    def _init_breaker(self) -> None:
        self.failures_in_a_row = 0
        self.breaker_open = False

    def fail_waiting(self, error: BaseException) -> None:
        """End every queued and delayed task with ``error`` (the breaker opening)."""
        raise NotImplementedError  # provided by Runtime

    def refusal(self) -> Exception:
        """The error a submission gets while the manager does not accept tasks."""
        from .errors import ManagerNotRunningError

        if self.breaker_open and self.state == "running":
            return ResourceCreationError(
                f"no resource could be created ({self.failures_in_a_row} failures in a row, no worker alive): "
                "failing fast until on_create succeeds again"
            )
        if self.state == "created":
            return ManagerNotRunningError("the manager is not started: call start() or use 'async with'")
        return ManagerNotRunningError(f"the manager is {self.state} and accepts no new tasks")

    async def create_resource(self, *, failures: int = 0, retry_in: float | None = None) -> R:
        """Call ``on_create``; its failure is logged, reported and raised as ``ResourceCreationError``.

        Args:
            failures: failures in a row before this call, for the report.
            retry_in: when the caller will try again, for the report.
        """
        try:
            made = self.config.on_create()
            if inspect.isawaitable(made):
                made = await made
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and not is_stray_cancellation():
                raise
            self._creation_failed(exc, failures, retry_in)
            raise ResourceCreationError(f"on_create failed: {exc!r}") from exc
        if self.failures_in_a_row:
            self.failures_in_a_row = 0
            if self.breaker_open:
                self.breaker_open = False
                self.accepting = self.state == "running"
                self.log.info("a resource was created: the creation breaker closes")
        return made

    def _creation_failed(self, exc: BaseException, failures: int, retry_in: float | None) -> None:
        self.creation_failures += 1
        self.failures_in_a_row += 1
        if retry_in is None:
            self.log.error("on_create failed: %r", exc)
        else:
            self.log.error(
                "on_create failed for a worker (%d in a row): %r; retrying in %.2f s", failures + 1, exc, retry_in
            )
        if self.hooks.active:
            self.hooks.emit(ResourceCreationFailed(error=exc, consecutive_failures=failures + 1, retry_in=retry_in))
        threshold = self.config.creation_breaker_threshold
        if (
            threshold is not None
            and not self.breaker_open
            and self.failures_in_a_row >= threshold
            and not self.active_workers
            and self.state == "running"
        ):
            self.breaker_open = True
            self.accepting = False
            error = self.refusal()
            self.log.error("the creation breaker opens: %s", error)
            self.fail_waiting(error)

    async def destroy_resource(self, resource: R) -> None:
        """Call ``on_destroy`` and see it through whatever cancellation arrives; log what it raises."""
        on_destroy = self.config.on_destroy
        if on_destroy is None:
            return
        try:
            done = on_destroy(resource)
            if inspect.isawaitable(done):
                await uncancellable(done, self.config.destroy_timeout)
        except TimeoutError:
            self.log.error(
                "on_destroy of %r took over destroy_timeout=%s s: abandoned", resource, self.config.destroy_timeout
            )
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and not is_stray_cancellation():
                raise
            self.log.error("on_destroy failed for %r", resource, exc_info=True)

    async def is_healthy(self, exc: BaseException) -> bool:
        """Ask ``check_health``; it raising counts as unhealthy and is logged."""
        check = self.config.check_health
        if check is None:
            return True
        return await self._ask(check, exc, "check_health raised on %r; treating the resource as unhealthy")

    async def resource_ok(self, resource: R) -> bool:
        """Probe an idle resource with ``check_resource``; it raising counts as a bad resource."""
        check = self.config.check_resource
        if check is None:
            return True
        return await self._ask(check, resource, "check_resource raised on %r; replacing the resource")

    async def _ask(self, check: Callable[[Any], object], subject: object, complaint: str) -> bool:
        try:
            verdict = check(subject)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            return bool(verdict)
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and not is_stray_cancellation():
                raise
            self.log.error(complaint, subject, exc_info=True)
            return False


def is_stray_cancellation() -> bool:
    """Whether a ``CancelledError`` just caught came from user code, not from cancelling this task.

    User code can raise one without anybody cancelling us, e.g. by awaiting a
    future that another caller cancelled. Treating that as our own
    cancellation would end a worker for nothing; so it counts as the failure
    of the callback that raised it. (Python 3.10 has no ``Task.cancelling``,
    so there only a cancelled anyio scope tells the two apart.)
    """
    if anyio.current_effective_deadline() == -math.inf:
        return False  # an enclosing cancel scope is cancelled: it is ours
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return not (cancelling is not None and cancelling())


async def uncancellable(awaitable: Awaitable[T], timeout: float | None = None) -> T:
    """Await ``awaitable`` to its end even if the caller is cancelled meanwhile, then re-raise that.

    An anyio shield stops the cancellation of an enclosing cancel scope, but a
    plain ``task.cancel()`` of the caller (``run_task`` runs in its caller's
    task) still lands; so the work runs in a task of its own, which the caller
    waits out before its cancellation goes on.

    Raises:
        TimeoutError: ``timeout`` seconds passed first; the work is cancelled
            and left to end on its own.
    """
    task = asyncio.ensure_future(awaitable)
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    interrupted: asyncio.CancelledError | None = None
    with anyio.CancelScope(shield=True):
        while not task.done():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                task.cancel()
                break
            try:
                await asyncio.wait({task}, timeout=remaining)
            except asyncio.CancelledError as exc:
                interrupted = exc
    if interrupted is not None:
        raise interrupted
    if not task.done():
        raise TimeoutError
    if task.cancelled():  # by its own code: nobody here cancelled it
        raise RuntimeError(f"{awaitable!r} was cancelled from within")
    return task.result()


def task_name(fn: Callable[..., object]) -> str:
    """A task function's qualified name, for logs and events."""
    return getattr(fn, "__qualname__", None) or repr(fn)


async def call_with_timeout(
    fn: Callable[..., Awaitable[T]], resource: object, args: tuple[Any, ...], timeout: float
) -> T:
    """Run ``fn(resource, *args)``, cancelling it after ``timeout`` seconds.

    Raises:
        TaskTimeoutError: the run was cancelled at its deadline.
    """
    with anyio.CancelScope(deadline=anyio.current_time() + timeout):
        return await fn(resource, *args)
    raise TaskTimeoutError(timeout)
