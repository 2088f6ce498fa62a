"""The PostgreSQL store's reads: snapshots, counts and what waiters look for. Each is one statement, no lock."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from ..._model.records import FINISHED, JobInfo, QueueStats
from ..._model.workflow.records import RUN_STATES
from ..protocol import CONSUMER_STALE_AFTER
from ..records import Finished
from ..rows import CONSUMER_COLUMNS, INFO_COLUMNS, finished_of, info_of, queue_stats_of
from .schema import Names

if TYPE_CHECKING:
    from .schema import Conn

__all__ = ("Reads",)


def _newest(table: str, columns: str, states: Sequence[str], allowed: Collection[str], order: str, where: str) -> str:
    """The rows of ``table`` in ``states``, newest ``order`` first then by id, at most ``$1`` of them.

    One query per state, each taking at most ``$1`` rows in index order, merged: a state's rows come from an
    index that holds that state alone (or mostly), never from a scan of every finished row. The states are
    written as literals, so the planner sees that each query matches a partial index whatever the plan is
    prepared for (a parameter would hide it from a generic plan).

    Raises:
        ValueError: a state is not one of ``allowed`` (which the literals come from, never from a caller).
    """
    unknown = sorted(set(states) - set(allowed))
    if unknown or not states:
        raise ValueError(f"states must be some of {sorted(allowed)}, got {list(states)}")
    ordered = f"ORDER BY {order} DESC, id LIMIT $1"
    parts = [
        f"(SELECT {columns} FROM {table} WHERE state = '{state}'{where} {ordered})" for state in sorted(set(states))
    ]
    return f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS newest {ordered}"


@functools.lru_cache(maxsize=256)
def _finished_jobs_sql(jobs: str, states: tuple[str, ...], by_queue: bool) -> str:
    return _newest(jobs, INFO_COLUMNS, states, FINISHED, "finished_at", " AND queue = $2" if by_queue else "")


@functools.lru_cache(maxsize=256)
def _run_ids_sql(runs: str, states: tuple[str, ...]) -> str:
    return _newest(runs, "id, created_at", states, RUN_STATES, "created_at", "")


class Reads:
    """The store's reads (a ``Reader``), each one statement on a connection of the pool.

    Args:
        connection: lends a connection of the pool for the ``async with`` block.
        names: the store's schema.
    """

    def __init__(self, connection: Callable[[], AbstractAsyncContextManager[Conn]], names: Names) -> None:
        self._connection = connection
        self._names = names

    async def info(self, job_id: str) -> JobInfo | None:
        """The job's snapshot, or None."""
        async with self._connection() as conn:
            row = await conn.fetchrow(f"SELECT {INFO_COLUMNS} FROM {self._names.jobs} WHERE id = $1", job_id)
        return None if row is None else info_of(tuple(row), time.time())

    async def finished(self, job_ids: Sequence[str]) -> dict[str, Finished | None]:
        """Each known job of ``job_ids``: its snapshot and result once finished, None while not (unknown: left out)."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                f"SELECT {INFO_COLUMNS}, result FROM {self._names.jobs} WHERE id = ANY($1::text[])", list(job_ids)
            )
        now = time.time()
        return {row[0]: finished_of(tuple(row), now) for row in rows}

    async def stats(self, queue: str) -> QueueStats:
        """The counts of ``queue`` (one aggregate) and the live consumers."""
        now = time.time()
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT"
                " count(*) FILTER (WHERE state = 'queued' AND priority AND ready_at <= $2),"
                " count(*) FILTER (WHERE state = 'queued' AND NOT priority AND ready_at <= $2),"
                " count(*) FILTER (WHERE state = 'queued' AND ready_at > $2),"
                " count(*) FILTER (WHERE state = 'running'),"
                " count(*) FILTER (WHERE state = 'dead')"
                f" FROM {self._names.jobs} WHERE state IN ('queued', 'running', 'dead') AND queue = $1",
                queue,
                now,
            )
            consumers = await conn.fetch(
                f"SELECT {CONSUMER_COLUMNS} FROM {self._names.consumers} WHERE $1 - heartbeat_at < $2 ORDER BY id",
                now,
                CONSUMER_STALE_AFTER,
            )
        assert row is not None  # an aggregate always yields a row
        return queue_stats_of(row, consumers)

    async def backlog(self, queues: Sequence[str]) -> int:
        """Ready jobs in ``queues``: one count over both lanes."""
        if not queues:
            return 0
        sql = (
            f"SELECT count(*) FROM {self._names.jobs} WHERE state = 'queued' AND queue = ANY($1::text[])"
            " AND ready_at <= $2"
        )
        async with self._connection() as conn:
            return int(await conn.fetchval(sql, sorted(set(queues)), time.time()))

    async def earliest_ready(self, queues: Sequence[str]) -> float | None:
        """The earliest ready time among the queued jobs of ``queues`` (past when some are ready), or None."""
        if not queues:
            return None
        sql = f"SELECT min(ready_at) FROM {self._names.jobs} WHERE state = 'queued' AND queue = ANY($1::text[])"
        async with self._connection() as conn:
            value = await conn.fetchval(sql, sorted(set(queues)))
        return None if value is None else float(value)

    async def queue_names(self) -> list[str]:
        """The distinct queues of the jobs table, sorted."""
        async with self._connection() as conn:
            rows = await conn.fetch(f"SELECT DISTINCT queue FROM {self._names.jobs} ORDER BY queue")
        return [str(row[0]) for row in rows]

    async def finished_jobs(self, states: Sequence[str], queue: str | None, limit: int) -> list[JobInfo]:
        """The jobs finished in ``states`` (of ``queue`` if given), newest first: ``Store.finished_jobs``."""
        sql = _finished_jobs_sql(self._names.jobs, tuple(states), queue is not None)
        async with self._connection() as conn:
            rows = await conn.fetch(sql, limit, *(() if queue is None else (queue,)))
        now = time.time()
        return [info_of(tuple(row), now) for row in rows]

    async def run_ids(self, states: Sequence[str], limit: int) -> list[str]:
        """The ids of the runs in ``states``, newest first: what ``Store.recent_runs`` snapshots."""
        async with self._connection() as conn:
            rows = await conn.fetch(_run_ids_sql(self._names.runs, tuple(states)), limit)
        return [str(row[0]) for row in rows]
