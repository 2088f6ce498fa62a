"""The PostgreSQL store's rarer transitions: give back, reclaim, cancel, requeue, purge, leave.

Those that decide a job's fate lock its row (``FOR UPDATE``), decide in Python with the shared rules
(``rules.py``), exactly as ``MemoryStore`` and ``SQLiteStore`` do, and write the rows back in one
``UPDATE ... FROM unnest(...)``, then ``NOTIFY`` the waiters, all in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..._model.records import FINISHED
from ..records import Lease
from ..rows import STATE_COLUMNS, StateRow, error_columns
from ..rules import Fate, expired_fate, fate_error, unstarted_fate
from .schema import Names

if TYPE_CHECKING:
    from .schema import Conn

__all__ = ("cancel", "leave", "purge", "reclaim", "release", "requeue_dead")

# Jobs a reclaim or a purge takes at most per transaction: short transactions, short locks.
BATCH = 500

# One row per job taken out of ``running``: queued again (at its place when ready_at is NULL) or finished.
_TAKE_BACK = (
    "UPDATE {jobs} j SET state = u.state, ready_at = coalesce(u.ready_at, j.ready_at), deliveries = u.deliveries,"
    " started_at = u.started_at, finished_at = u.finished_at, error_type = u.error_type,"
    " error_message = u.error_message, error_traceback = u.error_traceback, token = NULL, lease_until = NULL"
    " FROM unnest($1::text[], $2::text[], $3::float8[], $4::int[], $5::float8[], $6::float8[], $7::text[],"
    " $8::text[], $9::text[]) AS u(id, state, ready_at, deliveries, started_at, finished_at, error_type,"
    " error_message, error_traceback) WHERE j.id = u.id"
)


class _Changes:
    """The rows to write back, and whom to wake once they are."""

    def __init__(self) -> None:
        self.columns: list[list[Any]] = [[] for _ in range(9)]
        self.ready: set[str] = set()
        self.done: list[str] = []

    def add(self, row: StateRow, queue: str, fate: Fate, now: float, *, keep_place: bool) -> None:
        if fate == "queued":
            ready_at = None if keep_place else now
            values: tuple[Any, ...] = (ready_at, row.deliveries, row.started_at, None, None, None, None)
            self.ready.add(queue)
        else:
            values = (None, row.deliveries, row.started_at, now, *error_columns(fate_error(fate, row.deliveries)))
            self.done.append(row.id)
        for column, value in zip(self.columns, (row.id, fate, *values), strict=True):
            column.append(value)

    async def write(self, conn: Conn, names: Names) -> None:
        if self.columns[0]:
            await conn.execute(_TAKE_BACK.format(jobs=names.jobs), *self.columns)
        await notify(conn, names.ready, sorted(self.ready))
        await notify(conn, names.done, self.done)


async def notify(conn: Conn, channel: str, payloads: Sequence[str]) -> None:
    """``NOTIFY channel`` once per payload (sent when the transaction commits)."""
    if payloads:
        await conn.execute("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", channel, list(payloads))


async def _locked_rows(conn: Conn, names: Names, sql: str, *args: Any) -> list[tuple[StateRow, str]]:
    rows = await conn.fetch(f"SELECT {STATE_COLUMNS}, queue FROM {names.jobs} WHERE {sql}", *args)
    return [(StateRow(tuple(row)), str(row[8])) for row in rows]


def _cut_short(changes: _Changes, row: StateRow, queue: str, now: float) -> None:
    """A job whose run was cut short (expired lease, or a kill), given its fate."""
    fate = expired_fate(
        once=row.once,
        deliveries=row.deliveries,
        max_deliveries=row.max_deliveries,
        cancel_requested=row.cancel_requested,
    )
    changes.add(row, queue, fate, now, keep_place=False)


async def release(conn: Conn, names: Names, leases: Sequence[Lease], started: bool) -> None:
    """Give held jobs back: a started one as an expired lease; an unstarted one keeps its place, uncounted."""
    async with conn.transaction():
        now = time.time()
        ids = sorted({lease.job_id for lease in leases})
        rows = {row.id: (row, queue) for row, queue in await _locked_rows(conn, names, "id = ANY($1) FOR UPDATE", ids)}
        changes = _Changes()
        for lease in leases:
            found = rows.get(lease.job_id)
            if found is None or not found[0].held_by(lease.token):
                continue
            row, queue = found
            row.state = "released"  # the same lease twice in one batch is given back once
            if started:
                _cut_short(changes, row, queue, now)
                continue
            row.deliveries -= 1
            if row.deliveries == 0:
                row.started_at = None
            changes.add(row, queue, unstarted_fate(cancel_requested=row.cancel_requested), now, keep_place=True)
        await changes.write(conn, names)


async def reclaim(conn: Conn, names: Names) -> int:
    """Take back running jobs whose lease has expired (a batch; rows another reclaimer holds are skipped)."""
    async with conn.transaction():
        now = time.time()
        where = "state = 'running' AND lease_until <= $1 ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED"
        rows = await _locked_rows(conn, names, where, now, BATCH)
        changes = _Changes()
        for row, queue in rows:
            _cut_short(changes, row, queue, now)
        await changes.write(conn, names)
        return len(rows)


async def cancel(conn: Conn, names: Names, job_id: str) -> bool:
    """End a queued or delayed job ``cancelled``; flag a running one for its holder. False if finished or unknown."""
    async with conn.transaction():
        state = await conn.fetchval(f"SELECT state FROM {names.jobs} WHERE id = $1 FOR UPDATE", job_id)
        if state is None or state in FINISHED:
            return False
        if state == "running":
            await conn.execute(f"UPDATE {names.jobs} SET cancel_requested = true WHERE id = $1", job_id)
        else:
            await conn.execute(
                f"UPDATE {names.jobs} SET state = 'cancelled', finished_at = $2, token = NULL WHERE id = $1",
                job_id,
                time.time(),
            )
            await notify(conn, names.done, [job_id])
        return True


async def requeue_dead(conn: Conn, names: Names, job_id: str) -> bool:
    """Make a dead job ready now with no deliveries; False if it is not dead."""
    rows = await conn.fetch(
        f"WITH r AS (UPDATE {names.jobs} SET state = 'queued', deliveries = 0, ready_at = $2, finished_at = NULL,"
        " error_type = NULL, error_message = NULL, error_traceback = NULL, cancel_requested = false, token = NULL,"
        " lease_until = NULL WHERE id = $1 AND state = 'dead' RETURNING queue)"
        " SELECT pg_notify($3, queue)::text FROM r",
        job_id,
        time.time(),
        names.ready,
    )
    return len(rows) == 1


async def purge(conn: Conn, names: Names) -> int:
    """Delete the jobs finished longer than their ``result_ttl`` ago (never dead ones), in small batches."""
    sql = (
        f"WITH gone AS (DELETE FROM {names.jobs} WHERE id IN (SELECT id FROM {names.jobs}"
        " WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at IS NOT NULL"
        " AND $1 - finished_at >= result_ttl LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id)"
        " SELECT pg_notify($3, id)::text FROM gone"
    )
    total = 0
    while True:
        count = len(await conn.fetch(sql, time.time(), BATCH, names.done))
        total += count
        if count < BATCH:
            return total


async def leave(conn: Conn, names: Names, consumer: str) -> None:
    """Forget ``consumer``'s heartbeat."""
    await conn.execute(f"DELETE FROM {names.consumers} WHERE id = $1", consumer)
