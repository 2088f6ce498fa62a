"""The store protocol: the atomic operations every engine offers; the client and consumer use nothing else.

Times are the engine's wall clock, seconds since the epoch. A job is *ready* when
it is queued and its ready time has passed (before that it is *delayed*); ready jobs
are taken priority lane first, then in the order they became ready (ready time, then
submission order), so a delayed job joins the order when its delay ends.

A delivery is counted when a job is claimed; giving it back unstarted
(``release(started=False)``) takes that count back, so only starts count, and a
process that dies between claim and start counts one delivery, on the safe side.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from .._model.records import ConsumerInfo, JobInfo, JobState, QueueStats
from .._model.serializer import Serializer
from .._model.workflow.records import RunEvent, RunInfo, RunState
from .records import Claim, Finished, Lease, NewJob, NewRun, Outcome, Renewal, RunOutput

__all__ = ("CONSUMER_STALE_AFTER", "LOST_MESSAGE", "Store")

# A consumer whose last heartbeat is older than this is no longer listed.
CONSUMER_STALE_AFTER = 15.0
# ErrorInfo.message of a once=True job whose run was cut short.
LOST_MESSAGE = "its run was cut short (its consumer died or was killed) and once=True forbids another"


@runtime_checkable
class Store(Protocol):
    """What every engine offers; see the module docstring for the shared rules."""

    serializer: Serializer

    async def __aenter__(self) -> Self:
        """Connect (and create the schema on first use)."""
        ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Disconnect."""
        ...

    async def enqueue(self, job: NewJob) -> str:
        """Store ``job`` and return its id; with a ``key`` already in use, store nothing and return that job's id.

        A key is in use while its job is unfinished (dead included), or finished within its ``result_ttl``.
        An id already stored (a retried enqueue) likewise stores nothing. Durable on return.
        """
        ...

    async def claim(self, consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False) -> list[Claim]:
        """Atomically take up to ``limit`` ready jobs of ``queues`` for ``consumer``.

        Each becomes ``running`` with a fresh token, its lease ending ``lease`` seconds
        from now, and one more delivery.

        ``waits``: if the claim comes up short, the caller waits in ``wait_ready`` and claims again.
        A store may then hand it jobs stored meanwhile (claimed for it as they are stored), which
        its next claim returns first. A claim with ``limit`` 0 and no ``waits`` ends that offer, and
        returns what was handed meanwhile; ``leave`` gives back what the consumer never took.
        """
        ...

    async def renew(self, consumer: ConsumerInfo, leases: Sequence[Lease]) -> Renewal:
        """Record ``consumer``'s heartbeat and extend each lease it still holds by its job's ``lease``.

        Returns the ids of the jobs whose lease it no longer holds, and of those asked to be cancelled.
        """
        ...

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Record each outcome whose lease is still held (token matches, job running); True where recorded.

        ``succeeded`` keeps ``result``; ``failed`` and ``dead`` keep ``error``. Waiters learn of each.
        """
        ...

    async def complete_and_claim(
        self, outcomes: Sequence[Outcome], consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False
    ) -> tuple[list[bool], list[Claim]]:
        """``complete(outcomes)``, then ``claim(consumer, queues, limit, waits=waits)``, as one atomic step: one write.

        A busy consumer's workers come free as runs end: recording those outcomes and taking the
        next jobs in one write halves what the engine must commit (and sync) per job.
        """
        ...

    async def release(self, leases: Sequence[Lease], *, started: bool) -> None:
        """Give held jobs back.

        ``started=False``: they never ran; the delivery is taken back and each
        keeps its place in the ready order (one asked to be cancelled ends
        ``cancelled``). ``started=True`` (a kill): as ``reclaim`` does with an
        expired lease, at once.
        """
        ...

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job: queued or delayed ones end ``cancelled``; for a running one, ask its holder.

        Returns False when it had finished already or is unknown.
        """
        ...

    async def reclaim(self) -> int:
        """Take back running jobs whose lease has expired; return how many.

        A job asked to be cancelled ends ``cancelled``; a ``once`` job ends
        ``failed`` (``JobLostError``); one that reached ``max_deliveries`` goes
        ``dead``; any other is ready again at once, at its old place: ahead of the
        jobs queued behind it (``rules.expired_fate``).
        """
        ...

    async def requeue_dead(self, job_id: str) -> bool:
        """Give a dead job another round (deliveries from zero, ready now); False if it is not dead."""
        ...

    async def purge(self) -> int:
        """Delete the jobs finished longer than their ``result_ttl`` ago (never dead ones); return how many."""
        ...

    async def info(self, job_id: str) -> JobInfo | None:
        """The job's snapshot, or ``None`` if it is unknown (or purged)."""
        ...

    async def wait(self, job_id: str, timeout: float | None) -> Finished:
        """Wait until the job is finished (``succeeded``, ``failed``, ``cancelled`` or ``dead``).

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
            LookupError: the job is unknown (or purged).
        """
        ...

    async def wait_ready(self, queues: Sequence[str], timeout: float) -> None:
        """Return once jobs of ``queues`` may have become ready, or after ``timeout`` seconds at most."""
        ...

    async def wait_cancel_request(self, consumer: str, timeout: float) -> bool:
        """Wait ``timeout`` seconds at most for a running job of ``consumer`` to be asked to be cancelled.

        True when one may have been (the next ``renew`` tells which), False when the time passed. The
        flag ``renew`` reads is what decides: this only lets the consumer renew at once. An engine that
        cannot tell the holder waits out the time, and the request waits for the consumer's lease tick.
        """
        ...

    async def stats(self, queue: str) -> QueueStats:
        """The counts of ``queue`` and the consumers heard from within ``CONSUMER_STALE_AFTER``."""
        ...

    async def backlog(self, queues: Sequence[str]) -> int:
        """Ready jobs in ``queues``, both lanes: what burst workers could take."""
        ...

    async def queue_names(self) -> list[str]:
        """The queues that hold any job, sorted."""
        ...

    async def leave(self, consumer: str) -> None:
        """Forget ``consumer``'s heartbeat (it stopped); the jobs handed to it that it never took go back unstarted."""
        ...

    # -- what an operator looks at (the dashboard); ``listing.py`` holds the checks and the order.

    async def finished_jobs(
        self, states: Collection[JobState], *, queue: str | None = None, limit: int = 50
    ) -> list[JobInfo]:
        """The jobs that finished in one of ``states``, newest ``finished_at`` first (then by id), ``limit`` at most.

        Of ``queue`` only, if given. A purged job is no longer listed; a requeued dead job is no longer dead.

        Raises:
            ValueError: a state is not a finished one (``FINISHED``), or ``limit`` is not from 1 to ``MAX_LISTED``.
        """
        ...

    async def recent_runs(self, *, states: Collection[RunState] | None = None, limit: int = 50) -> list[RunInfo]:
        """The runs in one of ``states`` (any, for None), newest ``created_at`` first (then by id), ``limit`` at most.

        Raises:
            ValueError: a state is not a run state, or ``limit`` is not from 1 to ``MAX_LISTED``.
        """
        ...

    # -- workflow runs: ``_model/workflow/machine.py`` states the contract; ``runs/`` holds what stores share.
    # A job with a ``step`` is a run step's: every outcome it gets (recorded, reclaimed, cancelled) is applied
    # to its run in the same atomic operation; such a job is never requeued by ``requeue_dead``.

    async def start_run(self, run: NewRun) -> str:
        """Store ``run`` and enqueue its roots' jobs atomically; return its id.

        With a ``key`` in use (its run unfinished or failed, or finished within its ``result_ttl``), or an id
        already stored, store nothing and return that run's id. Durable on return.
        """
        ...

    async def run_info(self, run_id: str) -> RunInfo | None:
        """The run's snapshot, or ``None`` if it is unknown (or purged)."""
        ...

    async def run_output(self, run_id: str, timeout: float | None) -> RunOutput:
        """Wait until the run is finished (``succeeded``, ``failed`` or ``cancelled``); its snapshot and results.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
            LookupError: the run is unknown (or purged).
        """
        ...

    async def cancel_run(self, run_id: str) -> bool:
        """Cancel a running run at once (``machine.cancel_run``); False if it had finished or is unknown."""
        ...

    def take_run_events(self) -> list[RunEvent]:
        """The runs this store object started, resumed or ended since the last call (oldest first; no I/O).

        A consumer tells them to its manager's hooks; only the newest ``KEPT_RUN_EVENTS`` are kept.
        """
        ...

    async def resume_run(self, run_id: str) -> bool:
        """Run a failed run's failed steps again (``machine.resume``); False if it is not ``failed``.

        Raises:
            LookupError: the run is unknown (or purged).
        """
        ...
