"""``SQLiteStore``: the store protocol on one SQLite file that several processes of one machine share."""

from __future__ import annotations

import functools
import math
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Self, TypeVar, TypeVarTuple, Unpack

import anyio
import anyio.to_thread

from ....errors import ConfigError
from ..._model.records import ConsumerInfo
from ..._model.serializer import JSONSerializer, Serializer
from ..._model.workflow.records import RunInfo
from ..group import GroupCommit
from ..records import Claim, Lease, NewJob, NewRun, Outcome, Renewal, RunOutput
from ..runs import apply
from ..runs.drive import drive
from ..shared import EngineStore
from ..waiting import Park
from . import queries, reads, takeback
from .connection import open_connection, unavailable
from .runs import SQLiteRuns, collecting
from .schema import write
from .watch import Watch

__all__ = ("SQLiteStore",)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class SQLiteStore(EngineStore):
    """A store in one SQLite file: the embedded default, for one machine and any number of its processes.

    The file is in WAL mode and every commit is synced, so a job is on disk when ``enqueue`` returns. Each
    store object keeps one connection, used by one thread at a time (anyio's worker threads, one call at a
    time): every operation is one transaction there, and a claim is one ``UPDATE ... RETURNING``. Waiting
    for a result or for ready jobs polls the file every 50 ms (one cheap ``PRAGMA data_version``, shared by
    all the waiters of the object); the object's own commits wake its waiters at once.

    Args:
        path: the database file; created with its tables on first use (its directory must exist).
        serializer: how clients encode arguments and results (JSON by default).
        busy_timeout: seconds an operation waits for another connection's write lock before it raises
            ``StoreUnavailableError``.
        create: make the file and its tables when there are none (False: entering a file that holds
            no store raises ``StoreUnavailableError`` and leaves it as it was, e.g. to read a status).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        serializer: Serializer | None = None,
        busy_timeout: float = 5.0,
        create: bool = True,
    ) -> None:
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, int | float) or not busy_timeout >= 0:
            raise ConfigError(f"busy_timeout must be a number of seconds >= 0, got {busy_timeout!r}")
        if math.isinf(busy_timeout):
            raise ConfigError("busy_timeout must be finite: an operation on a locked file must end")
        self.serializer: Serializer = serializer if serializer is not None else JSONSerializer()
        self.path = os.path.abspath(os.fspath(path))
        self.busy_timeout = float(busy_timeout)
        self.create = bool(create)
        self._conn: sqlite3.Connection | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._watch: Watch | None = None
        self._reads = reads.Reads(self._call)
        self._enqueues = GroupCommit(self._enqueue_group)

    def __repr__(self) -> str:
        state = "open" if self._conn is not None else "closed"
        return f"SQLiteStore({self.path!r}, {state}, {self._watch!r})"

    async def __aenter__(self) -> Self:
        """Open the file (creating it and its tables on first use, unless ``create`` is False).

        Raises:
            StoreUnavailableError: the file cannot be used (its directory is missing, it is read-only, it is
                not a database, or it stayed locked), or without ``create`` it holds no store; the message
                names it and says why.
        """
        if self._limiter is not None:
            raise RuntimeError(f"{self!r} is open already: enter a store once")
        self._limiter = anyio.CapacityLimiter(1)
        try:
            version = await anyio.to_thread.run_sync(self._open, limiter=self._limiter)
        except BaseException:
            await self._close()
            raise
        self._watch = Watch(probe=self._probe, settled=self._settled, version=version)
        return self

    def _open(self) -> int:
        # Runs in the worker thread: the connection is kept even if the caller is cancelled meanwhile, so that
        # the cleanup of ``__aenter__`` closes it.
        self._conn, version = open_connection(self.path, self.busy_timeout, create=self.create)
        return version

    async def _close(self) -> None:
        with anyio.CancelScope(shield=True):
            if self._limiter is not None:
                await anyio.to_thread.run_sync(self._close_connection, limiter=self._limiter)
        self._limiter = None
        self._watch = None

    def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- running SQL on the connection's thread

    def _run(self, fn: Callable[[sqlite3.Connection, Unpack[Ts]], T], *args: *Ts) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError(f"{self!r} is not open: use it as `async with SQLiteStore(path) as store:`")
        try:
            with collecting(self._run_events):
                return fn(conn, *args)
        except sqlite3.DatabaseError as exc:
            # Locked, read-only, unreachable or damaged: the engine's trouble. A broken constraint or a misused
            # statement is a bug, and stays what it is.
            if not isinstance(exc, sqlite3.OperationalError) and type(exc) is not sqlite3.DatabaseError:
                raise
            raise unavailable(self.path, exc, self.busy_timeout) from exc

    async def _call(self, fn: Callable[[sqlite3.Connection, Unpack[Ts]], T], *args: *Ts) -> T:
        if self._limiter is None:
            raise RuntimeError(f"{self!r} is not open: use it as `async with SQLiteStore(path) as store:`")
        return await anyio.to_thread.run_sync(self._run, fn, *args, limiter=self._limiter)

    def _touched(self, changed: object = True, *, finishing: bool = True) -> None:
        """Wake this object's waiters after a commit that changed something (and may have finished jobs)."""
        if changed and self._watch is not None:
            self._watch.touched(finishing=finishing)

    async def _probe(self) -> int:
        return await self._call(reads.data_version)

    async def _settled(self, job_ids: Sequence[str]) -> set[str]:
        return await self._call(reads.settled, job_ids)

    def _watching(self) -> Watch:
        if self._watch is None:
            raise RuntimeError(f"{self!r} is not open: use it as `async with SQLiteStore(path) as store:`")
        return self._watch

    # -- the protocol

    async def enqueue(self, job: NewJob) -> str:
        """Store ``job`` and return its id; a key (or an id) already in use returns that job's id, storing nothing.

        Durable on return: the commit is synced to disk. Concurrent calls share one transaction.
        """
        return await self._enqueues(job)

    async def _enqueue_group(self, jobs: list[NewJob]) -> list[str]:
        ids = await self._call(queries.enqueue, jobs)
        self._touched(finishing=False)
        return ids

    async def claim(self, consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False) -> list[Claim]:
        """Take up to ``limit`` ready jobs of ``queues`` for ``consumer``, priority lane first, in one statement."""
        claims = await self._call(queries.claim, consumer, queues, limit) if limit > 0 else []
        self._touched(claims, finishing=False)
        return claims

    async def renew(self, consumer: ConsumerInfo, leases: Sequence[Lease]) -> Renewal:
        """Record the heartbeat (at this machine's clock) and extend the leases still held."""
        return await self._call(queries.renew, consumer, leases)

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Record each outcome whose lease is still held; True where recorded."""
        recorded = await self._call(queries.complete, outcomes)
        self._touched(any(recorded))
        return recorded

    async def complete_and_claim(
        self, outcomes: Sequence[Outcome], consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False
    ) -> tuple[list[bool], list[Claim]]:
        """``complete`` then ``claim`` in one transaction: one commit, one sync."""
        recorded, claims = await self._call(queries.complete_and_claim, outcomes, consumer, queues, limit)
        self._touched(any(recorded) or claims, finishing=any(recorded))
        return recorded, claims

    async def release(self, leases: Sequence[Lease], *, started: bool) -> None:
        """Give held jobs back: unstarted ones keep their place and their delivery is taken back."""
        await self._call(takeback.release, leases, started)
        self._touched(leases)

    async def cancel(self, job_id: str) -> bool:
        """Cancel a queued or delayed job at once; ask the holder of a running one. False if finished or unknown."""
        cancelled = await self._call(queries.cancel, job_id)
        self._touched(cancelled)
        return cancelled

    async def reclaim(self) -> int:
        """Take back the running jobs whose lease has expired; return how many."""
        count = await self._call(takeback.reclaim)
        self._touched(count)
        return count

    async def requeue_dead(self, job_id: str) -> bool:
        """Give a dead job another round: deliveries from zero, ready now. False if it is not dead."""
        requeued = await self._call(queries.requeue_dead, job_id)
        self._touched(requeued, finishing=False)
        return requeued

    async def purge(self) -> int:
        """Delete the jobs finished longer than their ``result_ttl`` ago (never dead ones)."""
        count = await self._call(queries.purge)
        self._touched(count)
        return count

    @asynccontextmanager
    async def _parked(self, job_id: str) -> AsyncIterator[Park]:
        watch = self._watching()
        # The generation is read before the look: a commit after it moves it, and the waiter looks again.
        yield functools.partial(watch.settled, job_id, watch.generation)

    async def wait_ready(self, queues: Sequence[str], timeout: float) -> None:
        """Return once jobs of ``queues`` are ready (at once if some are), or after ``timeout`` seconds at most."""
        watch = self._watching()
        deadline = anyio.current_time() + timeout
        while True:
            seen = watch.generation
            earliest = await self._reads.earliest_ready(queues)
            wall, clock = time.time(), anyio.current_time()
            if (earliest is not None and earliest <= wall) or clock >= deadline:
                return
            # Wake on a change, and also when the earliest delayed job's time comes.
            until = deadline if earliest is None else min(deadline, clock + (earliest - wall))
            await watch.changed(seen, until)

    async def leave(self, consumer: str) -> None:
        """Forget ``consumer``'s heartbeat."""
        await self._call(queries.leave, consumer)

    # -- workflow runs: the shared glue over ``SQLiteRuns``, each call one transaction in the connection's thread

    async def start_run(self, run: NewRun) -> str:
        """Store ``run`` and enqueue its roots' jobs in one transaction; a key (or an id) in use returns that run."""
        run_id = await self._call(_start_run, run)
        self._touched(finishing=False)
        return run_id

    async def run_info(self, run_id: str) -> RunInfo | None:
        """The run's snapshot, or None if it is unknown."""
        return await self._call(_run_info, run_id)

    async def _run_look(self, run_id: str) -> RunOutput | None:
        return await self._call(_run_output, run_id)

    async def cancel_run(self, run_id: str) -> bool:
        """Cancel a running run at once; False if it had finished or is unknown."""
        cancelled = await self._call(_cancel_run, run_id)
        self._touched()
        return cancelled

    async def resume_run(self, run_id: str) -> bool:
        """Run a failed run's failed steps again; False if it is not failed (LookupError if unknown)."""
        resumed = await self._call(_resume_run, run_id)
        self._touched(resumed, finishing=False)
        return resumed


def _start_run(conn: sqlite3.Connection, run: NewRun) -> str:
    with write(conn):
        return drive(apply.start(SQLiteRuns(conn), run, time.time()))


def _run_info(conn: sqlite3.Connection, run_id: str) -> RunInfo | None:
    # One read transaction: the run's rows and its jobs' are seen at one moment.
    with reads.snapshot(conn):
        return drive(apply.info(SQLiteRuns(conn), run_id))


def _run_output(conn: sqlite3.Connection, run_id: str) -> RunOutput | None:
    with reads.snapshot(conn):
        return drive(apply.output(SQLiteRuns(conn), run_id))


def _cancel_run(conn: sqlite3.Connection, run_id: str) -> bool:
    with write(conn):
        return drive(apply.cancel(SQLiteRuns(conn), run_id, time.time()))


def _resume_run(conn: sqlite3.Connection, run_id: str) -> bool:
    with write(conn):
        return drive(apply.resume(SQLiteRuns(conn), run_id, time.time()))
