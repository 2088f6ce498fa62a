"""A submission made later than it was asked for: on the manager's loop, or once there is room.

``submit_threadsafe`` carries one from another thread to the loop, and both it
and ``queue_task_with_callback`` hold one while they wait for room in a full
queue. The task function and the options were checked when it was made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, TypeVarTuple, Unpack

if TYPE_CHECKING:
    from .._core.handle import TaskHandle
    from .base import ManagerBase

__all__ = ("Callback", "Submission", "Task")

R = TypeVar("R")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# ``async def fn(resource, *args)`` returning ``T``; ``Task[R, I, T]`` is a task of one argument.
Task: TypeAlias = Callable[[R, Unpack[Ts]], Awaitable[T]]
# ``callback(result, exc)`` of the ``queue_task_*_with_callback`` family.
Callback: TypeAlias = Callable[[T | None, BaseException | None], object]


@dataclass(frozen=True, slots=True)
class Submission:
    """What a submission asks for: ``fn(resource, *args)`` with its options."""

    fn: Callable[..., Awaitable[Any]]
    args: tuple[Any, ...]
    priority: bool
    once: bool
    timeout: float | None

    def now(self, manager: ManagerBase[Any]) -> TaskHandle[Any]:
        """Submit it to ``manager`` without waiting (``QueueFullError`` at ``max_queue_size``)."""
        return manager.submit_nowait(self.fn, *self.args, priority=self.priority, once=self.once, timeout=self.timeout)

    async def when_room(self, manager: ManagerBase[Any]) -> TaskHandle[Any]:
        """Submit it to ``manager``, waiting for room."""
        return await manager.submit(self.fn, *self.args, priority=self.priority, once=self.once, timeout=self.timeout)
