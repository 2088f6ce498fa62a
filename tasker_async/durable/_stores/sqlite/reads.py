"""The SQLite store's reads: snapshots, counts and what waiters look for. Each is one statement (or a few), no lock.

In WAL mode a read never waits for a writer: it sees the last commit made before it began.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol, TypeVar, TypeVarTuple, Unpack

from ..._model.records import FINISHED, JobInfo, QueueStats
from ..protocol import CONSUMER_STALE_AFTER
from ..records import Finished
from ..rows import CONSUMER_COLUMNS, INFO_COLUMNS, finished_of, info_of, queue_stats_of
from .rows import chunks, placeholders

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

__all__ = (
    "Reads",
    "backlog",
    "data_version",
    "earliest_ready",
    "finished",
    "finished_jobs",
    "info",
    "queue_names",
    "run_ids",
    "settled",
    "stats",
)


def info(conn: sqlite3.Connection, job_id: str) -> JobInfo | None:
    """The job's snapshot, or None if it is unknown (or purged)."""
    row = conn.execute(f"SELECT {INFO_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else info_of(row, time.time())


def finished(conn: sqlite3.Connection, job_ids: Sequence[str]) -> dict[str, Finished | None]:
    """Each known job of ``job_ids``: its snapshot and result once finished, None while not (unknown: left out)."""
    rows: dict[str, Finished | None] = {}
    now = time.time()
    for part in chunks(job_ids):
        sql = f"SELECT {INFO_COLUMNS}, result FROM jobs WHERE id IN ({placeholders(len(part))})"
        rows.update((row[0], finished_of(row, now)) for row in conn.execute(sql, part))
    return rows


def settled(conn: sqlite3.Connection, job_ids: Sequence[str]) -> set[str]:
    """The jobs (or runs) among ``job_ids`` that are finished or gone: what their waiters must look at again."""
    unfinished: set[str] = set()
    for part in chunks(job_ids):
        marks = placeholders(len(part))
        sql = f"SELECT id, state FROM jobs WHERE id IN ({marks})"
        unfinished.update(row[0] for row in conn.execute(sql, part) if row[1] not in FINISHED)
        sql = f"SELECT id FROM runs WHERE id IN ({marks}) AND state = 'running'"
        unfinished.update(row[0] for row in conn.execute(sql, part))
    return set(job_ids) - unfinished


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction: the statements in the block see the file at one moment."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def stats(conn: sqlite3.Connection, queue: str) -> QueueStats:
    """The counts of ``queue`` and the consumers heard from within ``CONSUMER_STALE_AFTER``."""
    now = time.time()
    row = conn.execute(
        "SELECT"
        " total(state = 'queued' AND priority AND ready_at <= :now),"
        " total(state = 'queued' AND NOT priority AND ready_at <= :now),"
        " total(state = 'queued' AND ready_at > :now),"
        " total(state = 'running'),"
        " total(state = 'dead')"
        " FROM jobs WHERE state IN ('queued', 'running', 'dead') AND queue = :queue",
        {"now": now, "queue": queue},
    ).fetchone()
    consumers = conn.execute(
        f"SELECT {CONSUMER_COLUMNS} FROM consumers WHERE ? - heartbeat_at < ? ORDER BY id",
        (now, CONSUMER_STALE_AFTER),
    ).fetchall()
    return queue_stats_of(row, consumers)


def backlog(conn: sqlite3.Connection, queues: Sequence[str]) -> int:
    """Ready jobs in ``queues``, both lanes."""
    names = sorted(set(queues))
    if not names:
        return 0
    sql = (
        f"SELECT count(*) FROM jobs WHERE state = 'queued' AND queue IN ({placeholders(len(names))}) AND ready_at <= ?"
    )
    return int(conn.execute(sql, [*names, time.time()]).fetchone()[0])


@functools.lru_cache(maxsize=64)
def _earliest_sql(queue_count: int) -> str:
    # min() over one lane of one queue reads a single entry of the ready index.
    lane = "SELECT min(ready_at) AS at FROM jobs WHERE state = 'queued' AND queue = ? AND priority = ?"
    return "SELECT min(at) FROM (" + " UNION ALL ".join([lane] * (2 * queue_count)) + ")"


def earliest_ready(conn: sqlite3.Connection, queues: Sequence[str]) -> float | None:
    """The earliest ready time among the queued jobs of ``queues`` (past when some are ready), or None."""
    names = sorted(set(queues))
    if not names:
        return None
    lanes = [value for name in names for lane in ((name, 1), (name, 0)) for value in lane]
    value = conn.execute(_earliest_sql(len(names)), lanes).fetchone()[0]
    return None if value is None else float(value)


def queue_names(conn: sqlite3.Connection) -> list[str]:
    """The queues that hold any job, sorted."""
    return [row[0] for row in conn.execute("SELECT DISTINCT queue FROM jobs ORDER BY queue")]


def finished_jobs(conn: sqlite3.Connection, states: Sequence[str], queue: str | None, limit: int) -> list[JobInfo]:
    """The jobs finished in ``states`` (of ``queue`` if given), newest first: ``Store.finished_jobs``."""
    now = time.time()
    marks = placeholders(len(states))
    where = f"state IN ({marks})" + ("" if queue is None else " AND queue = ?")
    sql = f"SELECT {INFO_COLUMNS} FROM jobs WHERE {where} ORDER BY finished_at DESC, id LIMIT ?"
    args = (*states, *(() if queue is None else (queue,)), limit)
    return [info_of(row, now) for row in conn.execute(sql, args)]


def run_ids(conn: sqlite3.Connection, states: Sequence[str], limit: int) -> list[str]:
    """The ids of the runs in ``states``, newest first: what ``Store.recent_runs`` snapshots."""
    sql = f"SELECT id FROM runs WHERE state IN ({placeholders(len(states))}) ORDER BY created_at DESC, id LIMIT ?"
    return [row[0] for row in conn.execute(sql, (*states, limit))]


def data_version(conn: sqlite3.Connection) -> int:
    """A number that changes whenever another connection commits to the file (this one's commits leave it)."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


class Call(Protocol):
    """Runs a function on the store's connection, on the connection's thread."""

    def __call__(self, fn: Callable[[sqlite3.Connection, Unpack[Ts]], T], *args: *Ts) -> Awaitable[T]: ...


class Reads:
    """The store's reads (a ``Reader``): the functions above, each run by ``call`` on the connection's thread."""

    def __init__(self, call: Call) -> None:
        self._call = call

    async def info(self, job_id: str) -> JobInfo | None:
        """See ``info``."""
        return await self._call(info, job_id)

    async def finished(self, job_ids: Sequence[str]) -> dict[str, Finished | None]:
        """See ``finished``."""
        return await self._call(finished, job_ids)

    async def stats(self, queue: str) -> QueueStats:
        """See ``stats``."""
        return await self._call(stats, queue)

    async def backlog(self, queues: Sequence[str]) -> int:
        """See ``backlog``."""
        return await self._call(backlog, queues)

    async def queue_names(self) -> list[str]:
        """See ``queue_names``."""
        return await self._call(queue_names)

    async def earliest_ready(self, queues: Sequence[str]) -> float | None:
        """See ``earliest_ready``."""
        return await self._call(earliest_ready, queues)

    async def finished_jobs(self, states: Sequence[str], queue: str | None, limit: int) -> list[JobInfo]:
        """See ``finished_jobs``."""
        return await self._call(finished_jobs, states, queue, limit)

    async def run_ids(self, states: Sequence[str], limit: int) -> list[str]:
        """See ``run_ids``."""
        return await self._call(run_ids, states, limit)
