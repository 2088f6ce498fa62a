"""The in-memory store's state machine: every job transition as one synchronous step, with no ``await``.

``MemoryStore`` awaits a checkpoint and then calls one of these, so each operation is atomic.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

import anyio

from .._model.records import FINISHED, JobState
from .cancel_requests import CancelRequests
from .memory_index import MemoryJob, ReadyIndex
from .records import Claim, Lease, NewJob, Outcome, Renewal
from .rules import Fate, expired_fate, fate_error, key_in_use, purgeable, unstarted_fate

__all__ = ("JobTable", "StepEnded")

# Told of each run step's job that finished (with the parts of its result, if recorded with them).
Parts = tuple[bytes, ...] | None
StepEnded = Callable[[MemoryJob, Parts], None]


class JobTable:
    """The stored jobs, their keys, the ready order and the counts per queue and state."""

    __slots__ = ("_counts", "_index", "_keys", "_running", "_seq", "cancels", "jobs", "ready_changed", "step_ended")

    def __init__(self) -> None:
        self.jobs: dict[str, MemoryJob] = {}
        self._keys: dict[str, str] = {}
        self._index = ReadyIndex()
        self._running: dict[str, MemoryJob] = {}
        self._counts: Counter[tuple[str, JobState]] = Counter()
        self._seq = itertools.count()
        # Set (and dropped) whenever jobs may have become ready, or a new ready time joined the delayed ones.
        self.ready_changed: anyio.Event | None = None
        self.step_ended: StepEnded | None = None
        self.cancels = CancelRequests()  # the holders of running jobs asked to be cancelled are told here

    def enqueue(self, job: NewJob, now: float) -> str:
        """Store ``job`` unless its key or its id is in use; return the id of the job that holds the place."""
        holder = self._key_holder(job.key, now)
        if holder is not None:
            return holder
        if job.id in self.jobs:
            # A retried enqueue whose first attempt was stored: store nothing twice.
            return job.id
        stored = MemoryJob(
            id=job.id,
            name=job.name,
            queue=job.queue,
            payload=job.payload,
            priority=job.priority,
            key=job.key,
            once=job.once,
            max_deliveries=job.max_deliveries,
            lease=job.lease,
            result_ttl=job.result_ttl,
            created_at=now,
            ready_at=now + max(0.0, job.delay),
            seq=next(self._seq),
            step=job.step,
        )
        self.jobs[stored.id] = stored
        self._counts[stored.queue, "queued"] += 1
        if stored.key is not None:
            self._keys[stored.key] = stored.id
        self._index.add(stored, now)
        self._notify_ready()
        return stored.id

    def claim(self, consumer: str, queues: Sequence[str], limit: int, now: float) -> list[Claim]:
        """Take up to ``limit`` ready jobs of ``queues``, each with a fresh token and one more delivery."""
        self._index.promote(now)
        claims: list[Claim] = []
        while len(claims) < limit and (job_id := self._index.pop_ready(queues)) is not None:
            job = self.jobs[job_id]
            job.token = uuid.uuid4().hex
            job.deliveries += 1
            job.started_at = now
            job.consumer = consumer
            job.lease_until = now + job.lease
            self._move(job, "running")
            claims.append(job.claimed())
        return claims

    def renew(self, leases: Sequence[Lease], now: float) -> Renewal:
        """Extend the leases still held; report the ones lost and the jobs asked to be cancelled."""
        lost: set[str] = set()
        cancelled: set[str] = set()
        for lease in leases:
            job = self._held(lease)
            if job is None:
                lost.add(lease.job_id)
                continue
            job.lease_until = now + job.lease
            if job.cancel_requested:
                cancelled.add(job.id)
        return Renewal(frozenset(lost), frozenset(cancelled))

    def complete(self, outcomes: Sequence[Outcome], now: float) -> list[bool]:
        """Record each outcome whose lease is still held; True where recorded."""
        recorded: list[bool] = []
        for outcome in outcomes:
            job = self._held(outcome.lease)
            if job is not None:
                job.result = outcome.result if outcome.state == "succeeded" else None
                job.error = outcome.error if outcome.state in ("failed", "dead") else None
                self._finish(job, outcome.state, now, parts=outcome.parts)
            recorded.append(job is not None)
        return recorded

    def release(self, leases: Sequence[Lease], *, started: bool, now: float) -> None:
        """Give held jobs back: a started one as an expired lease; an unstarted one keeps its place, uncounted."""
        for lease in leases:
            job = self._held(lease)
            if job is None:
                continue
            if started:
                self._take_back(job, _cut_short(job), now, keep_place=True)
                continue
            job.deliveries -= 1
            if job.deliveries == 0:
                job.started_at = None
            self._take_back(job, unstarted_fate(cancel_requested=job.cancel_requested), now, keep_place=True)

    def cancel(self, job_id: str, now: float, *, report: bool = True) -> bool:
        """End a queued or delayed job ``cancelled``; flag a running one for its holder.

        ``report=False``: a run stops its own jobs and reports their ends itself.
        """
        job = self.jobs.get(job_id)
        if job is None or job.state in FINISHED:
            return False
        if job.state == "running":
            self.ask_cancel(job)
        else:
            self._index.discard(job)
            self._finish(job, "cancelled", now, report=report)
        return True

    def ask_cancel(self, job: MemoryJob) -> None:
        """Flag the running ``job`` for its holder, and tell the holder (``cancel_requests``)."""
        job.cancel_requested = True
        if job.consumer is not None:
            self.cancels.told([job.consumer])

    def reclaim(self, now: float) -> int:
        """Take back the running jobs whose lease has expired."""
        expired = [job for job in self._running.values() if job.lease_until <= now]
        for job in expired:
            self._take_back(job, _cut_short(job), now, keep_place=True)
        return len(expired)

    def requeue_dead(self, job_id: str, now: float) -> bool:
        """Make a dead job ready now with no deliveries."""
        job = self.jobs.get(job_id)
        # A run step's dead job stays dead: its run tries again by a resume, which reports one outcome per job.
        if job is None or job.state != "dead" or job.step is not None:
            return False
        job.deliveries = 0
        job.error = None
        job.finished_at = None
        job.cancel_requested = False
        self._take_back(job, "queued", now)
        return True

    def purge(self, now: float) -> int:
        """Delete the jobs finished longer than their ``result_ttl`` ago (never dead ones)."""
        gone = [job for job in self.jobs.values() if purgeable(job.state, job.finished_at, job.result_ttl, now)]
        for job in gone:
            del self.jobs[job.id]
            self._counts[job.queue, job.state] -= 1
            if job.key is not None and self._keys.get(job.key) == job.id:
                del self._keys[job.key]
        self._counts = +self._counts  # drop the zero counts: emptied queues leave nothing behind
        return len(gone)

    # -- counts (each brings the delayed jobs whose time has come into the ready order first)

    def ready(self, queues: Sequence[str], now: float, *, priority: bool | None = None) -> int:
        """Ready jobs of ``queues`` in one lane, or in both when ``priority`` is None."""
        self._index.promote(now)
        lanes = (True, False) if priority is None else (priority,)
        return sum(self._index.ready(queue, lane) for queue in set(queues) for lane in lanes)

    def delayed(self, queue: str, now: float) -> int:
        """Jobs of ``queue`` whose ready time is still ahead."""
        self._index.promote(now)
        return self._index.delayed(queue)

    def next_ready_at(self, queues: Sequence[str]) -> float | None:
        """The earliest ready time among the delayed jobs of ``queues``."""
        return self._index.next_ready_at(queues)

    def count(self, queue: str, state: JobState) -> int:
        """Jobs of ``queue`` in ``state`` (for ``running`` and the finished states)."""
        return self._counts[queue, state]

    def queue_names(self) -> list[str]:
        """The queues that hold any job, sorted."""
        return sorted({queue for (queue, _), count in self._counts.items() if count > 0})

    # -- the steps the transitions share

    def _key_holder(self, key: str | None, now: float) -> str | None:
        job = self.jobs.get(self._keys.get(key, "")) if key is not None else None
        if job is not None and key_in_use(job.state, job.finished_at, job.result_ttl, now):
            return job.id
        return None

    def _held(self, lease: Lease) -> MemoryJob | None:
        job = self.jobs.get(lease.job_id)
        if job is None or job.state != "running" or job.token != lease.token:
            return None
        return job

    def _take_back(self, job: MemoryJob, fate: Fate, now: float, *, keep_place: bool = False) -> None:
        """Apply ``fate`` to a job leaving ``running`` (or ``dead``): queued again, or finished."""
        job.token = None
        if fate != "queued":
            job.error = fate_error(fate, job.deliveries)
            self._finish(job, fate, now)
            return
        if not keep_place:
            job.ready_at = now
        self._move(job, "queued")
        self._index.add(job, now)
        self._notify_ready()

    def _finish(
        self,
        job: MemoryJob,
        state: JobState,
        now: float,
        *,
        parts: tuple[bytes, ...] | None = None,
        report: bool = True,
    ) -> None:
        job.token = None
        job.finished_at = now
        self._move(job, state)
        if job.finished is not None:
            job.finished.set()
            job.finished = None
        if report and job.step is not None and self.step_ended is not None:
            self.step_ended(job, parts)

    def _move(self, job: MemoryJob, state: JobState) -> None:
        self._counts[job.queue, job.state] -= 1
        self._counts[job.queue, state] += 1
        job.state = state
        if state == "running":
            self._running[job.id] = job
        else:
            self._running.pop(job.id, None)

    def _notify_ready(self) -> None:
        if self.ready_changed is not None:
            self.ready_changed.set()
            self.ready_changed = None


def _cut_short(job: MemoryJob) -> Fate:
    """The fate of a job whose run was cut short (expired lease, or a kill)."""
    return expired_fate(
        once=job.once,
        deliveries=job.deliveries,
        max_deliveries=job.max_deliveries,
        cancel_requested=job.cancel_requested,
    )
