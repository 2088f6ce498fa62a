"""What the stores on an engine share: the protocol's reads over the engine's ``Reader``, ``wait``, and closing."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Protocol

import anyio

from .._model.records import JobInfo, JobState, QueueStats
from .._model.workflow.records import RunEvent, RunInfo, RunState
from . import listing
from .group import GroupCommit
from .records import Finished, RunOutput
from .runs.events import RunEventLog
from .waiting import Park, wait_finished

__all__ = ("EngineStore", "Reader", "Waiting")


class Reader(Protocol):
    """An engine's reads: each one look at the engine, without a lock."""

    async def info(self, job_id: str) -> JobInfo | None:
        """The job's snapshot, or None if it is unknown (or purged)."""
        ...

    async def finished(self, job_ids: Sequence[str]) -> dict[str, Finished | None]:
        """Each known job of ``job_ids``: its snapshot and result once finished, None while not.

        Unknown (or purged) jobs are left out.
        """
        ...

    async def stats(self, queue: str) -> QueueStats:
        """The counts of ``queue`` and the consumers heard from within ``CONSUMER_STALE_AFTER``."""
        ...

    async def backlog(self, queues: Sequence[str]) -> int:
        """Ready jobs in ``queues``, both lanes."""
        ...

    async def queue_names(self) -> list[str]:
        """The queues that hold any job, sorted."""
        ...

    async def earliest_ready(self, queues: Sequence[str]) -> float | None:
        """The earliest ready time among the queued jobs of ``queues`` (past when some are ready), or None."""
        ...

    async def finished_jobs(self, states: Sequence[str], queue: str | None, limit: int) -> list[JobInfo]:
        """The jobs finished in ``states`` (checked already), of ``queue`` if given, in ``newest_jobs`` order."""
        ...

    async def run_ids(self, states: Sequence[str], limit: int) -> list[str]:
        """The ids of the runs in ``states`` (checked already), in ``newest_runs`` order, ``limit`` at most."""
        ...


class Waiting:
    """The protocol's ``wait`` and ``run_output``, over a store's looks (``_finished``, ``_run_look``) and its watch.

    The watch (``_parked``) is keyed by id: a store publishes a run's end as it publishes a finished job's id.
    """

    _run_log: RunEventLog | None = None

    @property
    def _run_events(self) -> RunEventLog:
        """The run events of this object's operations (made on first use)."""
        if self._run_log is None:
            self._run_log = RunEventLog()
        return self._run_log

    def take_run_events(self) -> list[RunEvent]:
        """The runs this store object started, resumed or ended since the last call (oldest first; no I/O)."""
        return self._run_events.take()

    async def _finished(self, job_id: str) -> Finished | None:
        raise NotImplementedError

    async def _run_look(self, run_id: str) -> RunOutput | None:
        """The run's output once it finished, None while it runs (LookupError if unknown)."""
        raise NotImplementedError

    def _parked(self, job_id: str) -> AbstractAsyncContextManager[Park]:
        raise NotImplementedError

    async def wait_cancel_request(self, consumer: str, timeout: float) -> bool:
        """Wait out ``timeout``: this engine does not tell a job's holder of a cancel request (its lease tick does).

        An engine whose watch hears them (``waiting.Waiters.cancels``) returns as soon as one comes.
        """
        await anyio.sleep(timeout)
        return False

    def _unheard(self, job_id: str) -> bool:
        """Whether this object stored the job and has not heard of its end since (``waiting.Expected``).

        An engine whose watch keeps track says so: its waiters then skip their first look. Others never know.
        """
        return False

    async def wait(self, job_id: str, timeout: float | None) -> Finished:
        """Wait until the job is finished, woken by the engine's watch (which also looks again now and then).

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
            LookupError: the job is unknown (or purged).
        """
        look, watch = (lambda: self._finished(job_id)), (lambda: self._parked(job_id))
        return await wait_finished(job_id, timeout, look, watch, unheard=lambda: self._unheard(job_id))

    async def run_output(self, run_id: str, timeout: float | None) -> RunOutput:
        """Wait until the run is finished; its snapshot and results.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
            LookupError: the run is unknown (or purged).
        """
        look, watch = (lambda: self._run_look(run_id)), (lambda: self._parked(run_id))
        return await wait_finished(run_id, timeout, look, watch, what="run")


class EngineStore(Waiting):
    """The store protocol's reads over the engine's ``Reader``, ``wait`` over its watch, and ``__aexit__``.

    A store class sets ``_reads`` (its engine's reads, which raise RuntimeError while the store is not open),
    and gives ``_parked`` (registers a waiter for a job and gives how it parks until the job may have finished)
    and ``_close`` (lets go of the engine's connections and of the watch).
    """

    _reads: Reader
    # Waiters looking at once (woken by one message) share one read; a store class may set its own (more
    # groups on their way at once), else one is made on first use.
    _looks: GroupCommit[str, Finished | LookupError | None] | None = None

    async def _close(self) -> None:
        raise NotImplementedError

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the store (after the operations in progress), even when the caller is cancelled."""
        with anyio.CancelScope(shield=True):
            await self._close()

    async def info(self, job_id: str) -> JobInfo | None:
        """The job's snapshot, or None if it is unknown (or purged)."""
        return await self._reads.info(job_id)

    async def _finished(self, job_id: str) -> Finished | None:
        if self._looks is None:
            self._looks = GroupCommit(self._look_group)
        found = await self._looks(job_id)
        if isinstance(found, LookupError):
            raise found
        return found

    async def _look_group(self, job_ids: list[str]) -> list[Finished | LookupError | None]:
        found = await self._reads.finished(job_ids)
        unknown = "no job {!r}: it is unknown, or was purged"
        return [found[job_id] if job_id in found else LookupError(unknown.format(job_id)) for job_id in job_ids]

    async def stats(self, queue: str) -> QueueStats:
        """The counts of ``queue`` and the consumers heard from within ``CONSUMER_STALE_AFTER``."""
        return await self._reads.stats(queue)

    async def backlog(self, queues: Sequence[str]) -> int:
        """Ready jobs in ``queues``, both lanes."""
        return await self._reads.backlog(queues)

    async def queue_names(self) -> list[str]:
        """The queues that hold any job, sorted."""
        return await self._reads.queue_names()

    async def run_info(self, run_id: str) -> RunInfo | None:
        """The run's snapshot, or None if it is unknown (each engine's own)."""
        raise NotImplementedError

    async def finished_jobs(
        self, states: Collection[JobState], *, queue: str | None = None, limit: int = 50
    ) -> list[JobInfo]:
        """The jobs that finished in one of ``states``, newest first (``Store.finished_jobs``)."""
        wanted, limit = listing.check_finished_states(states), listing.check_limit(limit)
        return await self._reads.finished_jobs(wanted, queue, limit)

    async def recent_runs(self, *, states: Collection[RunState] | None = None, limit: int = 50) -> list[RunInfo]:
        """The runs in one of ``states``, newest first (``Store.recent_runs``): one snapshot read per run."""
        wanted, limit = listing.check_run_states(states), listing.check_limit(limit)
        found = [await self.run_info(run_id) for run_id in await self._reads.run_ids(wanted, limit)]
        # A run purged between the two reads is left out.
        return listing.newest_runs((run for run in found if run is not None), limit)
