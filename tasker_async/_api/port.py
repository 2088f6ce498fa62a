"""What a feeder of tasks from outside the process (the durable consumer) reads from and tells a manager."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .._core.context import runs_tasks_of

if TYPE_CHECKING:
    from .._observe.events import LifecycleEvent
    from .manager import AsyncManager

__all__ = ("EnginePort", "engine_port")


class EnginePort:
    """A narrow view of one manager's engine for a feeder that must not hold more tasks than it can start."""

    __slots__ = ("_rt",)

    def __init__(self, manager: AsyncManager[Any]) -> None:
        self._rt = manager._rt

    @property
    def running(self) -> bool:
        """Whether the manager is running: started, and neither stopping nor stopped.

        While its creation breaker is open a running manager refuses tasks for a while
        (``ResourceCreationError``): the feeder holds on, and feeds it again once it accepts.
        """
        return self._rt.state == "running"

    @property
    def capacity(self) -> int:
        """How many tasks the manager can run at once: its base and burst workers (``max_worker_count``)."""
        return self._rt.workers.max_workers

    def runs_here(self) -> bool:
        """Whether the caller is one of the manager's own task functions (which must not wait for itself)."""
        return runs_tasks_of(self._rt)

    def free_workers(self) -> int:
        """Live workers waiting for a task, less the tasks already queued for them."""
        rt = self._rt
        # A parked worker stays ``parked`` until it resumes, also once a task queued for it
        # woke it (it left the takers then): counting parked workers, not takers, counts
        # that task once, against its worker, instead of twice. A burst worker being
        # retired takes nothing.
        idle = sum(1 for worker in rt.workers if worker.parked and not worker.retiring)
        return max(0, idle - len(rt.queue))

    def set_backlog(self, count: int) -> None:
        """Tell the scaling policy how many tasks wait outside the process for these workers."""
        self._rt.ledger.set_outside_backlog(count)

    @property
    def listening(self) -> bool:
        """Whether any hook is registered: an event nobody hears need not be made."""
        return self._rt.hooks.active

    def emit(self, event: object) -> None:
        """Tell the manager's hooks of an event of the feeder's own (a hook ignores what it does not know)."""
        # Hooks tell events apart by their class (the exporters count only the kinds they
        # know), so a record of another layer passes through them untouched.
        self._rt.hooks.emit(cast("LifecycleEvent", event))


def engine_port(manager: AsyncManager[Any]) -> EnginePort:
    """The engine port of ``manager``."""
    return EnginePort(manager)
