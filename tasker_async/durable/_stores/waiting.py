"""What every engine's waiters share: the events a listener fans its messages out to, and the wait for a result.

A store object keeps one listener (a ``LISTEN`` connection, a pub/sub subscription, a watch on a file) and
many waiters: clients waiting on results and idle consumers waiting for work. Each waiter registers an event
here, then looks at the engine, then waits on the event: a message that comes after the look sets it, so
nothing is missed between the look and the wait.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import TypeVar

import anyio

from .cancel_requests import CancelRequests

__all__ = ("EXPECTED_LIMIT", "Expected", "Park", "Parked", "ReadyWaiter", "Waiters", "parked_on", "wait_finished")

T = TypeVar("T")

# Waits until the job may have finished, or until the deadline given (``anyio.current_time``) at the latest.
Park = Callable[[float], Awaitable[None]]
# Jobs ``Expected`` keeps at most: beyond, the oldest are forgotten (their waiters look first, as any other does).
EXPECTED_LIMIT = 10_000


class Expected:
    """The jobs this store object stored while its listener listened, and whether it has heard of their end since.

    A waiter on such a job that it has not heard of need not look at the engine first: the job was not finished
    when it was stored, and its end's message, which the listener hears from the moment the job was stored,
    wakes the waiter. Messages may be lost while the listener is away: it ``forget``s them all then.
    """

    __slots__ = ("_ids",)

    def __init__(self) -> None:
        # job id -> its end was heard of; oldest first. Ordered, so the oldest goes in O(1): deleting a plain dict's
        # first key again and again makes each next lookup of the first key walk the holes left before it.
        self._ids: OrderedDict[str, bool] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, job_ids: Iterable[str]) -> None:
        """``job_ids`` are about to be stored (before the engine is asked, so no message comes before this)."""
        ids = self._ids
        for job_id in job_ids:
            ids.setdefault(job_id, False)  # a retried store keeps what was heard of the first one
        while len(ids) > EXPECTED_LIMIT:
            ids.popitem(last=False)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._ids

    def heard(self, job_ids: Iterable[str]) -> None:
        """The listener heard that ``job_ids`` may have finished."""
        ids = self._ids
        for job_id in job_ids:
            if job_id in ids:
                ids[job_id] = True

    def unheard(self, job_id: str) -> bool:
        """Whether ``job_id`` was stored here and its end not heard of since; it is forgotten either way."""
        return self._ids.pop(job_id, True) is False

    def discard(self, job_ids: Iterable[str]) -> None:
        """Forget ``job_ids`` (the engine stored another job in their place: a key in use)."""
        for job_id in job_ids:
            self._ids.pop(job_id, None)

    def forget(self) -> None:
        """Forget every job: messages may have been lost."""
        self._ids.clear()


class ReadyWaiter:
    """A waiter for ready jobs: ``event`` is set when jobs of its queues may be ready, or their schedule changed.

    ``now`` tells the two apart: True when a job became ready (the waiter can go and claim at once), False
    when it must look (a delayed job was added, or messages may have been lost).
    """

    __slots__ = ("event", "now", "queues")

    def __init__(self, queues: frozenset[str] | None) -> None:
        self.event = anyio.Event()
        self.now = False
        self.queues = queues  # None: any queue concerns the waiter

    def concerns(self, queue: str | None) -> bool:
        """Whether a change to ``queue`` (None: to any) concerns this waiter."""
        return queue is None or self.queues is None or queue in self.queues


class Waiters:
    """The events of one store object's waiters: for results by job id, and for ready jobs by queues."""

    def __init__(self) -> None:
        self._jobs: dict[str, set[anyio.Event]] = {}
        self._ready: set[ReadyWaiter] = set()
        # Messages about ready jobs heard, and resubscriptions: what ``Drained`` compares.
        self.heard = 0
        self.expected = Expected()
        self.cancels = CancelRequests()

    def __repr__(self) -> str:
        return f"job_waiters={sum(map(len, self._jobs.values()))}, ready_waiters={len(self._ready)}"

    @contextmanager
    def job(self, job_id: str) -> Iterator[anyio.Event]:
        """An event set when ``job_id`` may have finished; registered for the ``with`` block."""
        event = self.add_job(job_id)
        try:
            yield event
        finally:
            self.discard_job(job_id, event)

    def add_job(self, job_id: str) -> anyio.Event:
        """Register a waiter for ``job_id``: the event set when it may have finished (``discard_job`` it after)."""
        event = anyio.Event()
        waiters = self._jobs.get(job_id)
        if waiters is None:
            waiters = self._jobs[job_id] = set()
        waiters.add(event)
        return event

    def discard_job(self, job_id: str, event: anyio.Event) -> None:
        """Forget the waiter ``add_job`` registered."""
        waiters = self._jobs.get(job_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._jobs[job_id]

    @contextmanager
    def ready(self, queues: frozenset[str] | None = None) -> Iterator[ReadyWaiter]:
        """A waiter woken when a job of ``queues`` (of any queue if None) may have become ready; for the block."""
        waiter = ReadyWaiter(queues)
        self._ready.add(waiter)
        try:
            yield waiter
        finally:
            self._ready.discard(waiter)

    def wants_any(self) -> bool:
        """Whether any waiter waits for a job here, or may soon (``wants`` is True for some job)."""
        return bool(self._jobs) or bool(self.expected)

    def wants(self, job_id: str) -> bool:
        """Whether a waiter here waits for ``job_id``, or may soon (this store object stored it)."""
        return job_id in self._jobs or job_id in self.expected

    def finished(self, job_ids: Iterable[str]) -> None:
        """Wake the waiters of ``job_ids``: those jobs may have finished."""
        if self.expected:
            self.expected.heard(job_ids)
        for job_id in job_ids:
            for event in self._jobs.get(job_id, ()):
                event.set()

    def became_ready(self, queue: str | None = None, *, now: bool = True) -> None:
        """Wake the waiters for ready jobs of ``queue`` (all of them if None).

        ``now``: a job is ready now; otherwise a delayed one was added, and the waiters look at when it is due.
        """
        self.heard += 1
        for waiter in self._ready:
            if waiter.concerns(queue):
                waiter.now = waiter.now or now
                waiter.event.set()

    def handed(self, queue: str) -> None:
        """Wake the waiters for ready jobs of ``queue`` to claim: a job of it was claimed for a consumer here.

        Not a message about ready jobs (``heard`` stays): no job became ready in the engine.
        """
        for waiter in self._ready:
            if waiter.concerns(queue):
                waiter.now = True
                waiter.event.set()

    def wake_all(self) -> None:
        """Wake every waiter to look again: messages may have been lost."""
        self.heard += 1
        self.expected.forget()
        self.cancels.told_all()
        for waiters in self._jobs.values():
            for event in waiters:
                event.set()
        for waiter in self._ready:
            waiter.event.set()


async def wait_finished(
    job_id: str,
    timeout: float | None,
    look: Callable[[], Awaitable[T | None]],
    watch: Callable[[], AbstractAsyncContextManager[Park]],
    *,
    what: str = "job",
    unheard: Callable[[], bool] | None = None,
) -> T:
    """The protocol's ``wait``: look at the job until it is finished, parked on the engine's watch in between.

    A workflow run is waited on the same way (``what="run"``): a store publishes a run's end as it publishes a
    finished job's id.

    Args:
        job_id: the job (or run) waited on.
        timeout: seconds to wait at most; None waits for as long as it takes.
        look: the job's snapshot and result once it is finished, None while it is not (LookupError if unknown).
        watch: registers the waiter for the block (entered before each look, so no change is missed) and
            gives how it parks until the job may have finished.
        unheard: asked once, with the waiter registered: True when the job is known unfinished unless a message
            wakes the waiter (``Expected.unheard``), so the first look is skipped.

    Raises:
        TimeoutError: ``timeout`` seconds passed first.
        LookupError: the job is unknown (or purged).
    """
    deadline = math.inf if timeout is None else anyio.current_time() + timeout
    # The engine is asked first, so a finished job is returned even with a zero timeout.
    skip = unheard if timeout is None or timeout > 0 else None
    while True:
        async with watch() as park:
            if skip is not None and skip():
                skip = None
                await park(deadline)
                continue
            skip = None
            finished = await look()
            if finished is not None:
                return finished
            if anyio.current_time() >= deadline:
                raise TimeoutError(f"{what} {job_id!r} did not finish within {timeout:g} s")
            await park(deadline)


class Parked:
    """A waiter for ``job_id`` on ``waiters``, registered for an ``async with`` block: gives how it parks.

    What a store's ``_parked`` returns when registering needs no I/O: a plain class, as a result's path
    enters one per wait (a generator-based context manager costs several times as much).
    """

    __slots__ = ("_event", "_job_id", "_poll", "_waiters")

    def __init__(self, waiters: Waiters, job_id: str, *, poll: float) -> None:
        self._waiters = waiters
        self._job_id = job_id
        self._poll = poll
        self._event: anyio.Event | None = None

    async def __aenter__(self) -> Park:
        self._event = event = self._waiters.add_job(self._job_id)
        return functools.partial(parked_on, event, poll=self._poll)

    async def __aexit__(self, *exc_info: object) -> None:
        if self._event is not None:
            self._waiters.discard_job(self._job_id, self._event)


async def parked_on(event: anyio.Event, deadline: float, *, poll: float) -> None:
    """Wait for ``event`` until ``deadline``, and ``poll`` seconds at most (a safety net for lost messages)."""
    with anyio.CancelScope(deadline=min(deadline, anyio.current_time() + poll)):
        await event.wait()
