"""Lifecycle events: frozen records of what happened, handed to user hooks.

Hooks are how the Prometheus and OpenTelemetry integrations (and yours)
watch a manager. With no hook registered, the task hot path pays one
attribute test per event; a hook that raises is logged and never touches
the task it reports on.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias

from ..errors import ConfigError

if TYPE_CHECKING:
    from .._core.config import LoggerProtocol

__all__ = (
    "EventHooks",
    "LifecycleEvent",
    "LifecycleHook",
    "ResourceCreationFailed",
    "ScalingEvent",
    "TaskEvent",
    "TaskEventKind",
    "WorkerEvent",
    "WorkerEventKind",
)

TaskEventKind = Literal["queued", "started", "succeeded", "failed", "retried", "timed_out", "aborted", "cancelled"]
"""What happened to a task: the ``kind`` of a :class:`TaskEvent`."""
WorkerEventKind = Literal["created", "destroyed", "replaced"]
"""What happened to a worker: the ``kind`` of a :class:`WorkerEvent`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskEvent:
    """Something happened to a task.

    Attributes:
        kind: ``queued``, ``started``, ``succeeded``, ``failed`` (its own
            error, or no retries left), ``retried`` (re-queued after an
            unhealthy error), ``timed_out``, ``aborted`` (by ``kill()``) or
            ``cancelled`` (by its caller).
        name: the task function's qualified name.
        task_id: an id unique among the manager's live tasks.
        priority: whether it is (now) on the priority queue.
        attempt: runs so far, counting the one this event is about.
        queued_at: when it last entered a queue: its submission, or its
            re-queue for a retry (``time.monotonic()``).
        started_at: when its latest run started, if it did.
        finished_at: when its latest run ended, if it did.
        error: the exception it ended with, if any.
    """

    kind: TaskEventKind
    name: str
    task_id: int
    priority: bool
    attempt: int
    queued_at: float
    started_at: float | None = None
    finished_at: float | None = None
    error: BaseException | None = None

    @property
    def wait_time(self) -> float | None:
        """Seconds from submission to the start of the latest run."""
        return None if self.started_at is None else self.started_at - self.queued_at

    @property
    def run_time(self) -> float | None:
        """Seconds the latest run took."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerEvent:
    """A worker came, went, or was replaced.

    Attributes:
        kind: ``created`` (it holds a fresh resource), ``destroyed`` (its
            resource is gone), or ``replaced`` (its resource went bad and a
            successor is starting).
        worker_id: an id unique among the manager's workers.
        burst: whether it is a burst worker.
        reason: why, in a word: ``start``, ``replacement``, ``burst``,
            ``unhealthy``, ``retired``, ``shutdown``.
    """

    kind: WorkerEventKind
    worker_id: int
    burst: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceCreationFailed:
    """``on_create`` raised.

    Attributes:
        error: what it raised.
        consecutive_failures: failures in a row for this worker (1 outside a worker).
        retry_in: seconds until the next try, or ``None`` if nobody retries.
    """

    error: BaseException
    consecutive_failures: int
    retry_in: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingEvent:
    """The burst supervisor added or retired workers.

    Attributes:
        kind: ``scale_up`` or ``scale_down``.
        count: workers added or retired.
        burst_workers: burst workers after the change.
        reason: what the policy saw.
    """

    kind: Literal["scale_up", "scale_down"]
    count: int
    burst_workers: int
    reason: str


LifecycleEvent: TypeAlias = TaskEvent | WorkerEvent | ResourceCreationFailed | ScalingEvent
"""Any record a lifecycle hook receives."""


class LifecycleHook(Protocol):
    """A callable told of every lifecycle event; it must be quick and must not block.

    Any plain (sync) callable taking the event as its one positional argument
    fits: a function, a lambda, a bound method, an object with ``__call__``.
    """

    def __call__(self, event: LifecycleEvent, /) -> None:
        """Handle one event."""


ASYNC_HOOK_ADVICE = (
    "a hook is called inline and never awaited, so it must be a plain (sync) function; "
    "for async work, schedule it from a sync hook with asyncio.get_running_loop().create_task(...) "
    "and keep a reference to the task until it is done"
)
"""Why an async hook is refused, and what to do instead."""


def is_async_callable(obj: object) -> bool:
    """Whether calling ``obj`` makes a coroutine or an async generator, as far as its definition tells.

    Sees through ``functools.partial`` and looks at the ``__call__`` of callable objects.
    """
    while isinstance(obj, functools.partial):
        obj = obj.func
    call = obj if inspect.isroutine(obj) else inspect.getattr_static(type(obj), "__call__", None)
    # ``obj`` itself too: some callable objects (``AsyncMock``) flag their own code as a coroutine's.
    return any(inspect.iscoroutinefunction(f) or inspect.isasyncgenfunction(f) for f in (obj, call))


def hook_problem(hook: object) -> str | None:
    """What keeps ``hook`` from being a lifecycle hook, or ``None`` if nothing does."""
    if not callable(hook):
        return f"{hook!r} is not callable"
    if is_async_callable(hook):
        return f"{hook!r} is async: {ASYNC_HOOK_ADVICE}"
    return None


def checked_hooks(hooks: object) -> tuple[LifecycleHook, ...]:
    """``Config.hooks`` as a tuple; ``ConfigError`` if it is not a sequence of sync callables."""
    if isinstance(hooks, (str, bytes)) or not isinstance(hooks, Sequence):
        raise ConfigError("hooks", hooks, "a sequence of callables")
    for hook in hooks:
        problem = hook_problem(hook)
        if problem is not None:
            raise ConfigError("hooks", hooks, f"a sequence of sync callables ({problem})")
    return tuple(hooks)


class EventHooks:
    """The hooks of one manager.

    ``active`` is a plain attribute, not a property, because the task hot
    path tests it several times per task.
    """

    __slots__ = ("_hooks", "_log", "active")

    def __init__(self, hooks: tuple[LifecycleHook, ...], log: logging.Logger | LoggerProtocol) -> None:
        """Start with ``hooks``; errors are logged to ``log``."""
        self._hooks = list(hooks)
        self._log = log
        self.active = bool(self._hooks)

    def add(self, hook: LifecycleHook) -> None:
        """Register ``hook``.

        Raises:
            TypeError: ``hook`` is not callable, or is async (it would never be awaited).
        """
        problem = hook_problem(hook)
        if problem is not None:
            raise TypeError(f"a lifecycle hook must be a sync callable: {problem}")
        self._hooks.append(hook)
        self.active = True

    def remove(self, hook: LifecycleHook) -> None:
        """Unregister ``hook``; raises ``ValueError`` if it was not registered."""
        self._hooks.remove(hook)
        self.active = bool(self._hooks)

    def emit(self, event: LifecycleEvent) -> None:
        """Tell every hook; log, never raise, what a hook raises."""
        for hook in self._hooks:
            try:
                hook(event)
            except (Exception, asyncio.CancelledError):  # a sync hook cannot be cancelled: it raised it
                self._log.error("lifecycle hook %r raised on %r", hook, event, exc_info=True)
