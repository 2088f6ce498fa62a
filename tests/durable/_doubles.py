"""Helpers for the consumer conformance tests: an engine that goes down, tasks that report and wait, serving nodes."""

from __future__ import annotations

import inspect
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import anyio

from tasker_async import AsyncManager, Config
from tasker_async.durable import (
    Consumer,
    ConsumerInfo,
    Job,
    JobEvent,
    JobInfo,
    JobState,
    QueueStats,
    Registry,
    RunEvent,
    RunInfo,
    RunState,
    Store,
    StoreUnavailableError,
)
from tasker_async.durable._stores.records import (
    Claim,
    Finished,
    Lease,
    NewJob,
    NewRun,
    Outcome,
    Renewal,
    RunOutput,
)

from .conftest import StoreKit


class OutageStore:
    """Wraps a store; while ``down``, every call raises ``StoreUnavailableError`` as an unreachable engine would.

    Calls named in ``spared`` still go through (to order what a consumer sees as the engine
    comes back). Failed and served calls are counted by method name, so a test can wait for
    the consumer to try something. Entering and leaving the wrapper does nothing.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.serializer = inner.serializer
        self.down = False
        self.spared: frozenset[str] = frozenset()
        self.failed: Counter[str] = Counter()
        self.served: Counter[str] = Counter()

    def _reach(self, name: str) -> None:
        if self.down and name not in self.spared:
            self.failed[name] += 1
            raise StoreUnavailableError(f"the engine is down (call {name})")
        self.served[name] += 1

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def enqueue(self, job: NewJob) -> str:
        self._reach("enqueue")
        return await self.inner.enqueue(job)

    async def claim(self, consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False) -> list[Claim]:
        self._reach("claim")
        return await self.inner.claim(consumer, queues, limit, waits=waits)

    async def renew(self, consumer: ConsumerInfo, leases: Sequence[Lease]) -> Renewal:
        self._reach("renew")
        return await self.inner.renew(consumer, leases)

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        self._reach("complete")
        return await self.inner.complete(outcomes)

    async def complete_and_claim(
        self, outcomes: Sequence[Outcome], consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False
    ) -> tuple[list[bool], list[Claim]]:
        self._reach("complete" if outcomes else "claim")  # what the call does first
        return await self.inner.complete_and_claim(outcomes, consumer, queues, limit, waits=waits)

    async def release(self, leases: Sequence[Lease], *, started: bool) -> None:
        self._reach("release")
        await self.inner.release(leases, started=started)

    async def cancel(self, job_id: str) -> bool:
        self._reach("cancel")
        return await self.inner.cancel(job_id)

    async def reclaim(self) -> int:
        self._reach("reclaim")
        return await self.inner.reclaim()

    async def requeue_dead(self, job_id: str) -> bool:
        self._reach("requeue_dead")
        return await self.inner.requeue_dead(job_id)

    async def purge(self) -> int:
        self._reach("purge")
        return await self.inner.purge()

    async def info(self, job_id: str) -> JobInfo | None:
        self._reach("info")
        return await self.inner.info(job_id)

    async def wait(self, job_id: str, timeout: float | None) -> Finished:
        self._reach("wait")
        return await self.inner.wait(job_id, timeout)

    async def wait_ready(self, queues: Sequence[str], timeout: float) -> None:
        self._reach("wait_ready")
        await self.inner.wait_ready(queues, timeout)

    async def wait_cancel_request(self, consumer: str, timeout: float) -> bool:
        # A wait on the store object's own listener: no call reaches the engine, so no outage stops it.
        return await self.inner.wait_cancel_request(consumer, timeout)

    async def stats(self, queue: str) -> QueueStats:
        self._reach("stats")
        return await self.inner.stats(queue)

    async def backlog(self, queues: Sequence[str]) -> int:
        self._reach("backlog")
        return await self.inner.backlog(queues)

    async def queue_names(self) -> list[str]:
        self._reach("queue_names")
        return await self.inner.queue_names()

    async def leave(self, consumer: str) -> None:
        self._reach("leave")
        await self.inner.leave(consumer)

    async def start_run(self, run: NewRun) -> str:
        self._reach("start_run")
        return await self.inner.start_run(run)

    async def run_info(self, run_id: str) -> RunInfo | None:
        self._reach("run_info")
        return await self.inner.run_info(run_id)

    async def run_output(self, run_id: str, timeout: float | None) -> RunOutput:
        self._reach("run_output")
        return await self.inner.run_output(run_id, timeout)

    async def cancel_run(self, run_id: str) -> bool:
        self._reach("cancel_run")
        return await self.inner.cancel_run(run_id)

    def take_run_events(self) -> list[RunEvent]:
        return self.inner.take_run_events()

    async def resume_run(self, run_id: str) -> bool:
        self._reach("resume_run")
        return await self.inner.resume_run(run_id)

    async def finished_jobs(
        self, states: Collection[JobState], *, queue: str | None = None, limit: int = 50
    ) -> list[JobInfo]:
        self._reach("finished_jobs")
        return await self.inner.finished_jobs(states, queue=queue, limit=limit)

    async def recent_runs(self, *, states: Collection[RunState] | None = None, limit: int = 50) -> list[RunInfo]:
        self._reach("recent_runs")
        return await self.inner.recent_runs(states=states, limit=limit)


@dataclass(frozen=True)
class Run:
    """One start of a lab task: its label, the resource (so the node) it ran on, and when."""

    label: str
    resource: str
    at: float


class Lab:
    """A registry whose tasks report each start, end and cancellation, and wait at gates the test opens.

    ``hold(label)`` waits until the gate of ``label`` opens, then returns ``label``;
    ``echo(value)`` returns ``value`` at once. Tests add their own tasks to ``registry``.
    """

    def __init__(self, *, lease: float = 30.0, max_deliveries: int = 5) -> None:
        self.registry = Registry()
        self.runs: list[Run] = []
        self.finished: list[str] = []
        self.cancelled: list[str] = []
        self._gates: dict[str, anyio.Event] = {}
        self._all_open = False
        options: dict[str, Any] = {"lease": lease, "max_deliveries": max_deliveries}
        self.hold = self.registry.task("lab.hold", **options)(self._hold)
        self.echo = self.registry.task("lab.echo", **options)(self._echo)

    def gate(self, label: str) -> anyio.Event:
        """The gate ``hold(label)`` waits at (open already after ``open_all``)."""
        if label not in self._gates:
            self._gates[label] = anyio.Event()
            if self._all_open:
                self._gates[label].set()
        return self._gates[label]

    def open(self, *labels: str) -> None:
        """Let the runs held at these gates return."""
        for label in labels:
            self.gate(label).set()

    def open_all(self) -> None:
        """Open every gate, present and future."""
        self._all_open = True
        for event in self._gates.values():
            event.set()

    def close_new_gates(self) -> None:
        """Gates made from now on start closed again (those opened stay open)."""
        self._all_open = False

    def record(self, label: str, resource: object) -> None:
        """Note a start (for tasks a test adds)."""
        self.runs.append(Run(label, str(resource), time.monotonic()))

    def starts(self, label: str) -> int:
        """How many times a run of ``label`` started."""
        return sum(1 for run in self.runs if run.label == label)

    @property
    def order(self) -> list[str]:
        """The labels in the order their runs started."""
        return [run.label for run in self.runs]

    async def _hold(self, resource: str, label: str) -> str:
        self.record(label, resource)
        try:
            await self.gate(label).wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(label)
            raise
        self.finished.append(label)
        return label

    async def _echo(self, resource: str, value: Any) -> Any:
        self.record(str(value), resource)
        self.finished.append(str(value))
        return value


@dataclass
class Node:
    """A running manager and the consumer feeding it; ``name`` prefixes its resources (``A0``, ``A1``...)."""

    name: str
    manager: AsyncManager[str]
    consumer: Consumer


@asynccontextmanager
async def serving(
    store: Store,
    lab: Lab,
    *,
    name: str = "A",
    workers: int = 1,
    prefetch: int = 0,
    queues: Sequence[str] = ("default",),
    **options: Any,
) -> AsyncIterator[Node]:
    """A manager of ``workers`` workers (no bursting unless ``options`` say) with a consumer of ``lab``'s registry.

    Every gate opens on the way out, so a normal exit (which stops the consumer, letting runs finish) never hangs;
    gates made after the exit start closed.
    """
    ids = itertools.count()
    options.setdefault("max_worker_count", workers)
    config = Config(on_create=lambda: f"{name}{next(ids)}", worker_count=workers, resource_pool_size=0, **options)
    try:
        async with (
            AsyncManager(config) as manager,
            Consumer(store, lab.registry, manager, queues=queues, prefetch=prefetch) as consumer,
        ):
            try:
                yield Node(name, manager, consumer)
            finally:
                lab.open_all()
    finally:
        lab.close_new_gates()


@asynccontextmanager
async def second_handle(kit: StoreKit, store: Store) -> AsyncIterator[Store]:
    """Another store object on the test's data where the engine has one (a file); the memory store is shared."""
    if not kit.durable:
        yield store
        return
    async with kit.open() as other:
        yield other


async def eventually(check: Callable[[], bool | Awaitable[bool]], what: str, *, timeout: float = 10.0) -> None:
    """Poll ``check`` (sync or async) until it holds; ``AssertionError`` naming ``what`` after ``timeout`` s."""
    with anyio.move_on_after(timeout):
        while True:
            outcome = check()
            if inspect.isawaitable(outcome):
                outcome = await outcome
            if outcome:
                return
            await anyio.sleep(0.01)
    raise AssertionError(f"not {what} after {timeout} s")


def type_name(kind: type) -> str:
    """``module.QualName`` of a class: what ``ErrorInfo.type`` holds for it."""
    return f"{kind.__module__}.{kind.__qualname__}"


async def state_of(job: Job[Any]) -> str:
    """The job's state now."""
    return (await job.info()).state


async def in_state(job: Job[Any], state: str) -> bool:
    """Whether the job is in ``state`` now."""
    return await state_of(job) == state


class JobEvents:
    """A manager hook that keeps the ``JobEvent``s it is told of (and ignores the manager's own events)."""

    def __init__(self) -> None:
        self.events: list[JobEvent] = []

    def __call__(self, event: object, /) -> None:
        if isinstance(event, JobEvent):
            self.events.append(event)

    def of(self, job_id: str) -> list[tuple[str, int]]:
        """``(kind, deliveries)`` of one job's events, in order."""
        return [(event.kind, event.deliveries) for event in self.events if event.job_id == job_id]
