"""The PostgreSQL store's reads: snapshots, counts and what waiters look for. Each is one statement, no lock."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from ..._model.records import JobInfo, QueueStats
from ..protocol import CONSUMER_STALE_AFTER
from ..records import Finished
from ..rows import CONSUMER_COLUMNS, INFO_COLUMNS, finished_of, info_of, queue_stats_of
from .schema import Names

if TYPE_CHECKING:
    from .schema import Conn

__all__ = ("Reads",)


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
