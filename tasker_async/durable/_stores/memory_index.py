"""The in-memory store's pieces: a job's mutable record, and the index of queued jobs in ready order."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

import anyio

from .._model.records import ErrorInfo, JobInfo, JobState
from .records import Claim, StepRef
from .rules import visible_state

__all__ = ("MemoryJob", "ReadyIndex")

# An index entry: the job's place in the ready order (ready time, then submission order), and its id.
_Entry = tuple[float, int, str]


@dataclass(slots=True, kw_only=True, eq=False)
class MemoryJob:
    """One stored job; only the store's own operations change it, each in one synchronous step."""

    id: str
    name: str
    queue: str
    payload: bytes
    priority: bool
    key: str | None
    once: bool
    max_deliveries: int
    lease: float
    result_ttl: float
    created_at: float
    ready_at: float
    seq: int
    state: JobState = "queued"
    deliveries: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    error: ErrorInfo | None = None
    consumer: str | None = None
    token: str | None = None
    lease_until: float = 0.0
    cancel_requested: bool = False
    result: bytes | None = None
    step: StepRef | None = None  # the run step it is a job of
    # Set (and dropped) when the job finishes; created by the first waiter.
    finished: anyio.Event | None = None

    def snapshot(self, now: float) -> JobInfo:
        """The job as ``info`` shows it at ``now``."""
        return JobInfo(
            id=self.id,
            name=self.name,
            queue=self.queue,
            state=visible_state(self.state, self.ready_at, now),
            deliveries=self.deliveries,
            priority=self.priority,
            key=self.key,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            error=self.error,
            consumer=self.consumer,
        )

    def claimed(self) -> Claim:
        """What the consumer that just claimed the job receives."""
        assert self.token is not None
        return Claim(
            id=self.id,
            name=self.name,
            queue=self.queue,
            payload=self.payload,
            priority=self.priority,
            once=self.once,
            deliveries=self.deliveries,
            max_deliveries=self.max_deliveries,
            lease=self.lease,
            token=self.token,
        )


class _Heap:
    """A min-heap of entries with a dict of the live ones: removal is lazy, counting exact."""

    __slots__ = ("entries", "live")

    def __init__(self) -> None:
        self.entries: list[_Entry] = []
        self.live: dict[str, _Entry] = {}

    def push(self, entry: _Entry) -> None:
        self.live[entry[2]] = entry
        heapq.heappush(self.entries, entry)

    def discard(self, job_id: str) -> None:
        if self.live.pop(job_id, None) is not None and len(self.entries) > 2 * len(self.live) + 32:
            # Many removed entries linger in the heap: rebuild it from the live ones.
            self.entries = sorted(self.live.values())

    def head(self) -> _Entry | None:
        """The smallest live entry, dropping removed ones on the way."""
        while self.entries:
            entry = self.entries[0]
            if self.live.get(entry[2]) == entry:
                return entry
            heapq.heappop(self.entries)
        return None

    def pop(self) -> _Entry:
        entry = heapq.heappop(self.entries)
        del self.live[entry[2]]
        return entry


class ReadyIndex:
    """The queued jobs of every queue: ready ones per lane in ready order, delayed ones by ready time."""

    __slots__ = ("_delayed", "_ready")

    def __init__(self) -> None:
        self._ready: dict[tuple[str, bool], _Heap] = {}
        self._delayed: dict[tuple[str, bool], _Heap] = {}

    def add(self, job: MemoryJob, now: float) -> None:
        """Put a queued job in its place: ready (in its lane) or delayed, by its ready time."""
        heaps = self._delayed if job.ready_at > now else self._ready
        heaps.setdefault((job.queue, job.priority), _Heap()).push((job.ready_at, job.seq, job.id))

    def discard(self, job: MemoryJob) -> None:
        """Take a queued job out (it was cancelled)."""
        for heap in (self._ready.get((job.queue, job.priority)), self._delayed.get((job.queue, job.priority))):
            if heap is not None:
                heap.discard(job.id)

    def promote(self, now: float) -> None:
        """Move the delayed jobs whose ready time has come to the ready ones of their lane."""
        for lane, heap in self._delayed.items():
            while (entry := heap.head()) is not None and entry[0] <= now:
                heap.pop()
                self._ready.setdefault(lane, _Heap()).push(entry)

    def pop_ready(self, queues: Iterable[str]) -> str | None:
        """Take the first ready job of ``queues``: priority lane first, then ready order."""
        for priority in (True, False):
            best: _Heap | None = None
            best_entry: _Entry | None = None
            for queue in queues:
                heap = self._ready.get((queue, priority))
                entry = heap.head() if heap is not None else None
                if entry is not None and (best_entry is None or entry < best_entry):
                    best, best_entry = heap, entry
            if best is not None:
                return best.pop()[2]
        return None

    def ready(self, queue: str, priority: bool) -> int:
        """How many jobs of ``queue`` are ready in one lane (after ``promote``)."""
        heap = self._ready.get((queue, priority))
        return 0 if heap is None else len(heap.live)

    def delayed(self, queue: str) -> int:
        """How many jobs of ``queue`` wait for their ready time (after ``promote``)."""
        return sum(len(heap.live) for lane in ((queue, True), (queue, False)) if (heap := self._delayed.get(lane)))

    def next_ready_at(self, queues: Iterable[str]) -> float | None:
        """The earliest ready time among the delayed jobs of ``queues``."""
        lanes = [(queue, priority) for queue in queues for priority in (True, False)]
        times = [entry[0] for lane in lanes if (heap := self._delayed.get(lane)) and (entry := heap.head())]
        return min(times, default=None)
