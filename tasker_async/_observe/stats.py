"""``TaskStats``: a cheap snapshot of what the manager holds right now."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ("ManagerState", "TaskStats")

ManagerState = Literal["created", "running", "stopping", "stopped", "killed"]
"""A manager's lifecycle state, as ``TaskStats.state`` reports it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskStats:
    """What the manager holds at one instant; every field is read in O(1).

    Attributes:
        base_workers: the configured ``worker_count``.
        active_workers: base and burst workers now holding a resource.
        burst_workers: burst workers now alive.
        queued_tasks: tasks waiting in the main queue.
        priority_tasks: tasks waiting in the priority queue.
        running_tasks: tasks a worker is running now.
        available_resources: idle resources in the ``run_task`` pool.
        resource_creation_failures: ``on_create`` failures since start.
        burst_workers_added: burst workers the supervisor has started in all.
        burst_workers_retired: burst workers the supervisor has retired in all.
        throttled_seconds: seconds task starts were held back by
            ``max_per_second``, summed over all tasks.
        state: the manager's lifecycle state.
        temporary_resources: temporary ``run_task`` resources in use now
            (being made, used or destroyed), at most
            ``Config.max_temporary_resources``.
    """

    base_workers: int
    active_workers: int
    burst_workers: int
    queued_tasks: int
    priority_tasks: int
    running_tasks: int
    available_resources: int
    resource_creation_failures: int
    burst_workers_added: int
    burst_workers_retired: int
    throttled_seconds: float
    state: ManagerState
    temporary_resources: int = 0
