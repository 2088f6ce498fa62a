"""The PostgreSQL store's reads: snapshots, counts and what waiters look for. Each is one statement, no lock."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..._model.records import FINISHED, JobInfo, QueueStats
from ..protocol import CONSUMER_STALE_AFTER
from ..records import Finished
from ..sqlite.rows import CONSUMER_COLUMNS, INFO_COLUMNS, consumer_of, info_of
from .schema import Names

if TYPE_CHECKING:
    from .schema import Conn

__all__ = ("backlog", "earliest_ready", "finished", "info", "queue_names", "stats")


async def info(conn: Conn, names: Names, job_id: str) -> JobInfo | None:
    """The job's snapshot, or None if it is unknown (or purged)."""
    row = await conn.fetchrow(f"SELECT {INFO_COLUMNS} FROM {names.jobs} WHERE id = $1", job_id)
    return None if row is None else info_of(tuple(row), time.time())


async def finished(conn: Conn, names: Names, job_id: str) -> Finished | None:
    """The job's snapshot and result once it is finished; None while it is not.

    Raises:
        LookupError: the job is unknown (or purged).
    """
    row = await conn.fetchrow(f"SELECT {INFO_COLUMNS}, result FROM {names.jobs} WHERE id = $1", job_id)
    if row is None:
        raise LookupError(f"no job {job_id!r}: it is unknown, or was purged")
    if row[3] not in FINISHED:
        return None
    result = row[15]
    return Finished(info_of(tuple(row), time.time()), None if result is None else bytes(result))


async def stats(conn: Conn, names: Names, queue: str) -> QueueStats:
    """The counts of ``queue`` and the consumers heard from within ``CONSUMER_STALE_AFTER``."""
    now = time.time()
    row = await conn.fetchrow(
        "SELECT"
        " count(*) FILTER (WHERE state = 'queued' AND priority AND ready_at <= $2),"
        " count(*) FILTER (WHERE state = 'queued' AND NOT priority AND ready_at <= $2),"
        " count(*) FILTER (WHERE state = 'queued' AND ready_at > $2),"
        " count(*) FILTER (WHERE state = 'running'),"
        " count(*) FILTER (WHERE state = 'dead')"
        f" FROM {names.jobs} WHERE state IN ('queued', 'running', 'dead') AND queue = $1",
        queue,
        now,
    )
    consumers = await conn.fetch(
        f"SELECT {CONSUMER_COLUMNS} FROM {names.consumers} WHERE $1 - heartbeat_at < $2 ORDER BY id",
        now,
        CONSUMER_STALE_AFTER,
    )
    assert row is not None  # an aggregate always yields a row
    return QueueStats(
        ready_priority=int(row[0]),
        ready_main=int(row[1]),
        delayed=int(row[2]),
        running=int(row[3]),
        dead=int(row[4]),
        consumers=tuple(consumer_of(tuple(consumer)) for consumer in consumers),
    )


async def backlog(conn: Conn, names: Names, queues: Sequence[str]) -> int:
    """Ready jobs in ``queues``, both lanes."""
    if not queues:
        return 0
    sql = f"SELECT count(*) FROM {names.jobs} WHERE state = 'queued' AND queue = ANY($1::text[]) AND ready_at <= $2"
    return int(await conn.fetchval(sql, sorted(set(queues)), time.time()))


async def earliest_ready(conn: Conn, names: Names, queues: Sequence[str]) -> float | None:
    """The earliest ready time among the queued jobs of ``queues`` (past when some are ready), or None."""
    if not queues:
        return None
    sql = f"SELECT min(ready_at) FROM {names.jobs} WHERE state = 'queued' AND queue = ANY($1::text[])"
    value = await conn.fetchval(sql, sorted(set(queues)))
    return None if value is None else float(value)


async def queue_names(conn: Conn, names: Names) -> list[str]:
    """The queues that hold any job, sorted."""
    return [str(row[0]) for row in await conn.fetch(f"SELECT DISTINCT queue FROM {names.jobs} ORDER BY queue")]
