"""Which manager, if any, the current asyncio task is running a task function for.

A worker marks its own coroutine once, and ``run_task`` marks its caller's
task for the length of the run. ``stop()`` reads the mark: awaited from a
task function, it would wait for that very task to finish. The mark names
the asyncio task as well as the manager, because a task that a task
function spawns inherits the mark along with the context, yet it is free
to wait for the manager.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token
from typing import Any

__all__ = ("enter_task_runner", "leave_task_runner", "runs_tasks_of")

_runner: ContextVar[tuple[object, asyncio.Task[Any] | None] | None] = ContextVar("tasker_async_runner", default=None)


def enter_task_runner(rt: object) -> Token[tuple[object, asyncio.Task[Any] | None] | None]:
    """Mark the current asyncio task as running task functions of ``rt``'s manager."""
    return _runner.set((rt, asyncio.current_task()))


def leave_task_runner(token: Token[tuple[object, asyncio.Task[Any] | None] | None]) -> None:
    """Undo :func:`enter_task_runner` (the mark held before it comes back)."""
    _runner.reset(token)


def runs_tasks_of(rt: object) -> bool:
    """Whether the current asyncio task is running a task function of ``rt``'s manager."""
    mark = _runner.get()
    return mark is not None and mark[0] is rt and mark[1] is asyncio.current_task()
