"""The workers' records, and the set of them: which exist, which hold a resource, and the burst counts.

Workers are started by the runtime in the host's task group; their coroutine
is ``_core.worker.run_worker``. A worker counts in the set from its start
until its resource is destroyed (so ``max_worker_count`` is a ceiling on
resources, not on coroutines), and as *active* while it holds a resource.

A ``Worker``'s fields change through its methods, except those its own loop
(``_core.worker._serve``) writes inline on the measured path: the task in
hand, and whether it is parked or idle.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from .cancel import CancelReason
    from .handle import TaskHandle
    from .queue import JobQueue

__all__ = ("Worker", "WorkerSet")


class Worker:
    """The record of one worker coroutine."""

    __slots__ = (
        "burst",
        "cancelling",
        "expires_at",
        "grace_timer",
        "holds_resource",
        "id",
        "idle_since",
        "job",
        "next_probe",
        "overran",
        "parked",
        "reason",
        "resource",
        "retiring",
        "scope",
        "task",
    )

    def __init__(self, worker_id: int, *, burst: bool, reason: str) -> None:
        """Make the record; the coroutine is ``run_worker``."""
        self.id = worker_id
        self.burst = burst
        self.reason = reason  # why it was started, for its "created" event
        self.scope = anyio.CancelScope()  # ends the worker: kill, retirement, an overrun (see _core.cancel)
        self.task: asyncio.Task[Any] | None = None  # its asyncio task, once it runs
        self.job: TaskHandle[Any] | None = None  # the task in hand; the last one until it parks
        # The run in hand was cancelled (see _core.cancel): why, and its cleanup's deadline.
        self.cancelling: CancelReason | None = None
        self.grace_timer: asyncio.TimerHandle | None = None
        self.overran = False  # a cancelled run outlived cancel_grace: the resource is not reused
        self.resource: Any = None
        self.holds_resource = False
        self.parked = False  # waiting for a task, nothing in hand
        self.idle_since = 0.0  # when it last ran out of work
        self.retiring = False  # set by the supervisor before it cancels ``scope``
        self.expires_at = math.inf  # when max_resource_age retires its resource
        self.next_probe = math.inf  # when check_resource is next due, while idle

    def runs_in(self, task: asyncio.Task[Any] | None) -> None:
        """Its coroutine runs in ``task``."""
        self.task = task

    def ages_out_at(self, when: float) -> None:
        """Its resource is retired at ``when`` (``max_resource_age``)."""
        self.expires_at = when

    def probe_at(self, when: float) -> None:
        """``check_resource`` is next due at ``when``, while it is idle."""
        self.next_probe = when

    def park(self, queue: JobQueue[Any]) -> asyncio.Future[None]:
        """Wait on ``queue`` for a task, with nothing in hand: await the future returned, then :meth:`unpark`."""
        self.parked = True
        return queue.park(self.burst)

    def unpark(self, queue: JobQueue[Any], waiter: asyncio.Future[None], *, woken: bool) -> None:
        """Stop waiting on ``waiter``; unless it was ``woken`` for a task, withdraw it (see ``JobQueue.unpark``)."""
        self.parked = False
        if not woken:
            queue.unpark(waiter, self.burst)

    def mark_cancelling(self, reason: CancelReason, grace_timer: asyncio.TimerHandle) -> None:
        """Its run was cancelled for ``reason``; ``grace_timer`` fires once the cleanup's grace is over."""
        self.cancelling = reason
        self.grace_timer = grace_timer

    def clear_cancelling(self) -> tuple[CancelReason, bool]:
        """The cancelled run has ended: why it was cancelled, and whether it overran; the grace timer stops."""
        reason = self.cancelling
        assert reason is not None
        self.cancelling = None
        if self.grace_timer is not None:
            self.grace_timer.cancel()
            self.grace_timer = None
        return reason, self.overran

    def mark_overran(self, job: TaskHandle[Any]) -> bool:
        """The grace timer fired: whether the cancelled run of ``job`` still goes (then it overran)."""
        self.grace_timer = None
        if self.job is not job or self.cancelling is None:
            return False  # it ended meanwhile (its timer is normally cancelled first)
        self.overran = True
        return True


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
        self.took_resource(worker, resource)
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
        resource, worker.resource = worker.resource, None
        return resource

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
