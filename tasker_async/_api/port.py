"""What a feeder of tasks from outside the process (the durable consumer) reads from and tells a manager."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manager import AsyncManager

__all__ = ("EnginePort", "engine_port")


class EnginePort:
    """A narrow view of one manager's engine for a feeder that must not hold more tasks than it can start."""

    __slots__ = ("_rt",)

    def __init__(self, manager: AsyncManager[Any]) -> None:
        self._rt = manager._rt

    @property
    def running(self) -> bool:
        """Whether the manager is running and accepts tasks."""
        return self._rt.accepting

    def free_workers(self) -> int:
        """Live workers waiting for a task, less the tasks already queued for them."""
        queue = self._rt.queue
        # A woken worker leaves the takers at once, so a task just queued is not counted twice.
        return max(0, len(queue.takers) + len(queue.spare_takers) - len(queue))

    def set_backlog(self, count: int) -> None:
        """Tell the scaling policy how many tasks wait outside the process for these workers."""
        self._rt.ledger.set_outside_backlog(count)


def engine_port(manager: AsyncManager[Any]) -> EnginePort:
    """The engine port of ``manager``."""
    return EnginePort(manager)
