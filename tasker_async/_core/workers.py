"""The worker set: which workers exist, which hold a resource, and the burst counts; the only writer of them.

Workers are started by the runtime in the host's task group; this set keeps
their records. A worker counts in the set from its start until its resource
is destroyed (so ``max_worker_count`` is a ceiling on resources, not on
coroutines), and as *active* while it holds a resource.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

from .handle import TaskHandle
from .worker import Worker

__all__ = ("WorkerSet",)


class WorkerSet:
    """The records of a manager's workers and their counters.

    Args:
        max_workers: ``Config.max_worker_count``: base plus burst.
        start: runs a new worker's coroutine (in the host's task group).
    """

    def __init__(self, *, max_workers: int, start: Callable[[Worker], None]) -> None:
        """Start with no worker."""
        self.max_workers = max_workers
        self._start = start
        self._ids = itertools.count(1)
        self._members: set[Worker] = set()
        self.active = 0  # workers holding a resource
        self.burst = 0  # burst workers alive (starting or active)
        self.burst_added = 0  # burst workers ever started by the supervisor
        self.burst_retired = 0  # burst workers ever retired by the supervisor

    def __len__(self) -> int:
        """Workers alive: starting, active, or destroying their resource."""
        return len(self._members)

    def __iter__(self) -> Iterator[Worker]:
        """The workers alive (a snapshot: the set may change while it is used)."""
        return iter(list(self._members))

    @property
    def room(self) -> int:
        """Workers that may still be started before ``max_workers``."""
        return self.max_workers - len(self._members)

    def spawn(self, *, burst: bool, reason: str) -> Worker:
        """Start a worker that creates its own resource."""
        worker = self._new(burst, reason)
        self._start(worker)
        return worker

    def adopt(self, resource: Any) -> Worker:
        """Start a base worker on a resource made by ``start()``."""
        worker = self._new(False, "start")
        # Counted and held on the worker from here on, so the host can destroy it
        # even if the worker is cancelled before its first step.
        worker.resource = resource
        worker.holds_resource = True
        self.active += 1
        self._start(worker)
        return worker

    def _new(self, burst: bool, reason: str) -> Worker:
        worker = Worker(next(self._ids), burst=burst, reason=reason)
        self._members.add(worker)
        if burst:
            self.burst += 1
        return worker

    def took_resource(self, worker: Worker, resource: Any) -> None:
        """``worker`` made its resource."""
        worker.resource = resource
        worker.holds_resource = True
        self.active += 1

    def release(self, worker: Worker) -> Any:
        """``worker`` is about to destroy its resource: no longer active; returns the resource."""
        worker.holds_resource = False
        self.active -= 1
        return worker.resource

    def left(self, worker: Worker) -> None:
        """``worker`` is gone, its resource destroyed."""
        self._members.discard(worker)
        if worker.burst:
            self.burst -= 1

    def added_burst(self, count: int) -> None:
        """The supervisor started ``count`` burst workers."""
        self.burst_added += count

    def retire(self, workers: list[Worker]) -> None:
        """Retire these parked burst workers: marked first, so one woken meanwhile leaves without a task."""
        for worker in workers:
            worker.retiring = True
            worker.scope.cancel()
        self.burst_retired += len(workers)

    def idle_burst(self) -> list[Worker]:
        """Parked burst workers not retiring yet, longest idle first."""
        idle = (w for w in self._members if w.burst and w.parked and not w.retiring)
        return sorted(idle, key=lambda w: w.idle_since)

    def running(self, job: TaskHandle[Any]) -> Worker | None:
        """The worker running ``job``: a search, done only when a caller gives up on a run."""
        for worker in self._members:
            if worker.job is job:
                return worker
        return None

    def clear(self) -> None:
        """Forget every worker (the host has ended them all)."""
        self._members.clear()
