"""``MemoryStore``: the store protocol on data structures of this process (tests, one process, no durability)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection, Sequence
from types import TracebackType
from typing import Self

import anyio
from anyio.lowlevel import checkpoint

from .._model.records import FINISHED, ConsumerInfo, JobInfo, JobState, QueueStats
from .._model.serializer import JSONSerializer, Serializer
from .._model.workflow.records import RunEvent, RunInfo, RunState
from . import listing
from .memory_index import MemoryJob
from .memory_runs import MemoryRuns
from .memory_table import JobTable
from .records import Claim, Finished, Lease, NewJob, NewRun, Outcome, Renewal, RunOutput
from .rules import is_live
from .runs import apply
from .runs.drive import drive

__all__ = ("MemoryStore",)


class MemoryStore:
    """A store held in this process's memory: many clients and consumers of one process may share it.

    Each operation passes one checkpoint and then changes the data in one synchronous step, so
    each is atomic; waiting for a result or for ready jobs parks on events, never polls.
    Nothing survives the object.

    Args:
        serializer: how clients encode arguments and results (JSON by default).
    """

    def __init__(self, *, serializer: Serializer | None = None) -> None:
        self.serializer: Serializer = serializer if serializer is not None else JSONSerializer()
        self._table = JobTable()
        self._consumers: dict[str, ConsumerInfo] = {}
        self._runs = MemoryRuns(self._table)
        self._table.step_ended = self._step_ended

    def __repr__(self) -> str:
        return f"MemoryStore(jobs={len(self._table.jobs)}, runs={len(self._runs)}, consumers={len(self._consumers)})"

    async def __aenter__(self) -> Self:
        """Nothing to connect to: the store is ready."""
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Nothing to disconnect; the data stays with the object."""

    async def _now(self) -> float:
        """Pass the one checkpoint of an operation, then read the store's clock.

        Everything an operation does after this, up to its return, is synchronous: no other
        task sees it half done.
        """
        await checkpoint()
        return time.time()

    async def enqueue(self, job: NewJob) -> str:
        """Store ``job`` and return its id; a key (or an id) already in use returns that job's id, storing nothing."""
        return self._table.enqueue(job, await self._now())

    async def claim(self, consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False) -> list[Claim]:
        """Take up to ``limit`` ready jobs of ``queues`` for ``consumer``, priority lane first."""
        return self._table.claim(consumer, queues, limit, await self._now())

    async def renew(self, consumer: ConsumerInfo, leases: Sequence[Lease]) -> Renewal:
        """Record the heartbeat (at the store's clock) and extend the leases still held."""
        now = await self._now()
        self._consumers[consumer.id] = dataclasses.replace(consumer, heartbeat_at=now)
        return self._table.renew(leases, now)

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Record each outcome whose lease is still held; True where recorded."""
        return self._table.complete(outcomes, await self._now())

    async def complete_and_claim(
        self, outcomes: Sequence[Outcome], consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False
    ) -> tuple[list[bool], list[Claim]]:
        """``complete`` then ``claim`` in one step."""
        now = await self._now()
        return self._table.complete(outcomes, now), self._table.claim(consumer, queues, limit, now)

    async def release(self, leases: Sequence[Lease], *, started: bool) -> None:
        """Give held jobs back: unstarted ones keep their place and their delivery is taken back."""
        self._table.release(leases, started=started, now=await self._now())

    async def cancel(self, job_id: str) -> bool:
        """Cancel a queued or delayed job at once; ask the holder of a running one. False if finished or unknown."""
        return self._table.cancel(job_id, await self._now())

    async def reclaim(self) -> int:
        """Take back the running jobs whose lease has expired; return how many."""
        return self._table.reclaim(await self._now())

    async def requeue_dead(self, job_id: str) -> bool:
        """Give a dead job another round: deliveries from zero, ready now. False if it is not dead."""
        return self._table.requeue_dead(job_id, await self._now())

    async def purge(self) -> int:
        """Delete the jobs finished longer than their ``result_ttl`` ago (never dead ones), and such runs."""
        now = await self._now()
        self._runs.purge(now)
        return self._table.purge(now)

    async def info(self, job_id: str) -> JobInfo | None:
        """The job's snapshot, or None if it is unknown (or purged)."""
        now = await self._now()
        job = self._table.jobs.get(job_id)
        return None if job is None else job.snapshot(now)

    async def wait(self, job_id: str, timeout: float | None) -> Finished:
        """Wait until the job is finished.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
            LookupError: the job is unknown (or purged).
        """
        await checkpoint()
        with anyio.fail_after(timeout):
            while True:
                job = self._table.jobs.get(job_id)
                if job is None:
                    raise LookupError(f"no job {job_id!r}: it is unknown, or was purged")
                if job.state in FINISHED:
                    return Finished(job.snapshot(time.time()), job.result)
                if job.finished is None:
                    job.finished = anyio.Event()
                await job.finished.wait()

    async def wait_ready(self, queues: Sequence[str], timeout: float) -> None:
        """Return once jobs of ``queues`` are ready (at once if some are), or after ``timeout`` seconds at most."""
        await checkpoint()
        table = self._table
        deadline = time.time() + timeout
        while (now := time.time()) < deadline and not table.ready(queues, now):
            # Wake on a change, and also when the earliest delayed job's time comes.
            next_ready = table.next_ready_at(queues)
            until = deadline if next_ready is None else min(deadline, next_ready)
            if table.ready_changed is None:
                table.ready_changed = anyio.Event()
            with anyio.move_on_after(until - now):
                await table.ready_changed.wait()

    async def wait_cancel_request(self, consumer: str, timeout: float) -> bool:
        """Wait ``timeout`` seconds at most for a cancel request to one of ``consumer``'s running jobs."""
        await checkpoint()
        return await self._table.cancels.wait(consumer, timeout)

    async def stats(self, queue: str) -> QueueStats:
        """The counts of ``queue`` and the consumers heard from within ``CONSUMER_STALE_AFTER``."""
        now = await self._now()
        for stale in [c.id for c in self._consumers.values() if not is_live(c.heartbeat_at, now)]:
            del self._consumers[stale]
        return QueueStats(
            ready_priority=self._table.ready([queue], now, priority=True),
            ready_main=self._table.ready([queue], now, priority=False),
            delayed=self._table.delayed(queue, now),
            running=self._table.count(queue, "running"),
            dead=self._table.count(queue, "dead"),
            consumers=tuple(sorted(self._consumers.values(), key=lambda c: c.id)),
        )

    async def backlog(self, queues: Sequence[str]) -> int:
        """Ready jobs in ``queues``, both lanes."""
        return self._table.ready(queues, await self._now())

    async def queue_names(self) -> list[str]:
        """The queues that hold any job, sorted."""
        await checkpoint()
        return self._table.queue_names()

    async def leave(self, consumer: str) -> None:
        """Forget ``consumer``'s heartbeat."""
        await checkpoint()
        self._consumers.pop(consumer, None)
        self._table.cancels.forget(consumer)

    async def finished_jobs(
        self, states: Collection[JobState], *, queue: str | None = None, limit: int = 50
    ) -> list[JobInfo]:
        """The jobs that finished in one of ``states``, newest first (``Store.finished_jobs``)."""
        wanted, limit = listing.check_finished_states(states), listing.check_limit(limit)
        now = await self._now()
        jobs = self._table.jobs.values()
        found = (job.snapshot(now) for job in jobs if job.state in wanted and queue in (None, job.queue))
        return listing.newest_jobs(found, limit)

    async def recent_runs(self, *, states: Collection[RunState] | None = None, limit: int = 50) -> list[RunInfo]:
        """The runs in one of ``states``, newest first (``Store.recent_runs``)."""
        wanted, limit = listing.check_run_states(states), listing.check_limit(limit)
        await checkpoint()
        found = [await apply.info(self._runs, run_id) for run_id in self._runs.ids(wanted)]
        return listing.newest_runs((run for run in found if run is not None), limit)

    # -- workflow runs

    def _step_ended(self, job: MemoryJob, parts: tuple[bytes, ...] | None) -> None:
        assert job.step is not None
        state = job.state
        assert state in ("succeeded", "failed", "cancelled", "dead")
        now = job.finished_at if job.finished_at is not None else time.time()
        drive(
            apply.outcome(
                self._runs,
                job.step,
                state,
                now=now,
                deliveries=job.deliveries,
                started_at=job.started_at,
                result=job.result,
                parts=parts,
                error=job.error,
            )
        )

    def take_run_events(self) -> list[RunEvent]:
        """The runs this store started, resumed or ended since the last call (oldest first)."""
        return self._runs.events.take()

    async def start_run(self, run: NewRun) -> str:
        """Store ``run`` and enqueue its roots' jobs; a key (or an id) in use returns that run's id."""
        return drive(apply.start(self._runs, run, await self._now()))

    async def run_info(self, run_id: str) -> RunInfo | None:
        """The run's snapshot, or None if it is unknown."""
        await checkpoint()
        return drive(apply.info(self._runs, run_id))

    async def run_output(self, run_id: str, timeout: float | None) -> RunOutput:
        """Wait until the run is finished; its snapshot and results.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
            LookupError: the run is unknown (or purged).
        """
        await checkpoint()
        with anyio.fail_after(timeout):
            while (found := drive(apply.output(self._runs, run_id))) is None:
                event = self._runs.ended_event(run_id)
                assert event is not None
                await event.wait()
        return found

    async def cancel_run(self, run_id: str) -> bool:
        """Cancel a running run at once; False if it had finished or is unknown."""
        return drive(apply.cancel(self._runs, run_id, await self._now()))

    async def resume_run(self, run_id: str) -> bool:
        """Run a failed run's failed steps again; False if it is not failed.

        Raises:
            LookupError: the run is unknown.
        """
        return drive(apply.resume(self._runs, run_id, await self._now()))
