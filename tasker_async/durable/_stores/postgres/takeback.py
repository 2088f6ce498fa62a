"""The PostgreSQL store's rarer transitions: give back, reclaim, cancel, requeue, purge, leave.

Those that decide a job's fate lock its row (``FOR UPDATE``), decide in Python with the shared rules
(``rules.py``), exactly as ``MemoryStore`` and ``SQLiteStore`` do, and write the rows back in one
``UPDATE ... FROM unnest(...)``, then ``NOTIFY`` the waiters, all in one transaction. A run step's job that
ends here goes to its run in the same transaction (``workflows.report``), after the jobs' rows are locked.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..._model.records import FINISHED
from ..._model.workflow.records import RunEvent
from ..records import Lease, StepRef
from ..rows import STATE_COLUMNS, StateRow, error_columns
from ..rules import Fate, expired_fate, fate_error, unstarted_fate
from ..runs.apply import StepEnd
from .runs import ask_cancel
from .schema import Names
from .workflows import report

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
        self.ends: list[StepEnd] = []

    def add(self, row: StateRow, queue: str, fate: Fate, now: float, *, step: StepRef | None) -> None:
        if fate == "queued":
            # At its old place (ready_at kept): a give-back unstarted, and a run cut short alike (rules.expired_fate).
            values: tuple[Any, ...] = (None, row.deliveries, row.started_at, None, None, None, None)
            self.ready.add(queue)
        else:
            error = fate_error(fate, row.deliveries)
            values = (None, row.deliveries, row.started_at, now, *error_columns(error))
            self.done.append(row.id)
            if step is not None:
                self.ends.append(
                    StepEnd(ref=step, state=fate, deliveries=row.deliveries, started_at=row.started_at, error=error)
                )
        for column, value in zip(self.columns, (row.id, fate, *values), strict=True):
            column.append(value)

    async def write(self, conn: Conn, names: Names, now: float, told: list[RunEvent]) -> None:
        if self.columns[0]:
            await conn.execute(_TAKE_BACK.format(jobs=names.jobs), *self.columns)
        await notify(conn, names.ready, sorted(self.ready))
        await notify(conn, names.done, self.done)
        await report(conn, names, self.ends, now, told)


async def notify(conn: Conn, channel: str, payloads: Sequence[str]) -> None:
    """``NOTIFY channel`` once per payload (sent when the transaction commits)."""
    if payloads:
        await conn.execute("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", channel, list(payloads))


class _Locked:
    """A job's row locked for a transition: its ``STATE_COLUMNS``, its queue and its run step (if any)."""

    __slots__ = ("queue", "row", "step")

    def __init__(self, row: Sequence[Any]) -> None:
        self.row = StateRow(row)
        self.queue: str = row[8]
        self.step = None if row[9] is None else StepRef(row[9], row[10], row[11])


async def _locked_rows(conn: Conn, names: Names, sql: str, *args: Any) -> list[_Locked]:
    rows = await conn.fetch(f"SELECT {STATE_COLUMNS}, queue, run_id, step, item FROM {names.jobs} WHERE {sql}", *args)
    return [_Locked(tuple(row)) for row in rows]


def _cut_short(changes: _Changes, locked: _Locked, now: float) -> None:
    """A job whose run was cut short (expired lease, or a kill), given its fate."""
    row = locked.row
    fate = expired_fate(
        once=row.once,
        deliveries=row.deliveries,
        max_deliveries=row.max_deliveries,
        cancel_requested=row.cancel_requested,
    )
    changes.add(row, locked.queue, fate, now, step=locked.step)


async def release(conn: Conn, names: Names, leases: Sequence[Lease], started: bool, told: list[RunEvent]) -> None:
    """Give held jobs back: a started one as an expired lease; an unstarted one keeps its place, uncounted."""
    async with conn.transaction():
        now = time.time()
        ids = sorted({lease.job_id for lease in leases})
        # In id order, as a run's cancel locks its jobs.
        where = "id = ANY($1) ORDER BY id FOR UPDATE"
        rows = {locked.row.id: locked for locked in await _locked_rows(conn, names, where, ids)}
        changes = _Changes()
        for lease in leases:
            locked = rows.get(lease.job_id)
            if locked is None or not locked.row.held_by(lease.token):
                continue
            row = locked.row
            row.state = "released"  # the same lease twice in one batch is given back once
            if started:
                _cut_short(changes, locked, now)
                continue
            row.deliveries -= 1
            if row.deliveries == 0:
                row.started_at = None
            fate = unstarted_fate(cancel_requested=row.cancel_requested)
            changes.add(row, locked.queue, fate, now, step=locked.step)
        await changes.write(conn, names, now, told)


async def reclaim(conn: Conn, names: Names, told: list[RunEvent]) -> int:
    """Take back running jobs whose lease has expired (a batch; rows another reclaimer holds are skipped)."""
    async with conn.transaction():
        now = time.time()
        where = "state = 'running' AND lease_until <= $1 ORDER BY lease_until LIMIT $2 FOR UPDATE SKIP LOCKED"
        rows = await _locked_rows(conn, names, where, now, BATCH)
        changes = _Changes()
        for locked in rows:
            _cut_short(changes, locked, now)
        await changes.write(conn, names, now, told)
        return len(rows)


async def cancel(conn: Conn, names: Names, job_id: str, told: list[RunEvent]) -> bool:
    """End a queued or delayed job ``cancelled``; flag a running one for its holder. False if finished or unknown."""
    async with conn.transaction():
        sql = f"SELECT state, run_id, step, item, deliveries, started_at FROM {names.jobs} WHERE id = $1 FOR UPDATE"
        row = await conn.fetchrow(sql, job_id)
        if row is None or row[0] in FINISHED:
            return False
        if row[0] == "running":
            await ask_cancel(conn, names, [job_id])
            return True
        now = time.time()
        await conn.execute(
            f"UPDATE {names.jobs} SET state = 'cancelled', finished_at = $2, token = NULL WHERE id = $1", job_id, now
        )
        await notify(conn, names.done, [job_id])
        if row[1] is not None:
            end = StepEnd(ref=StepRef(row[1], row[2], row[3]), state="cancelled", deliveries=row[4], started_at=row[5])
            await report(conn, names, [end], now, told)
        return True


async def requeue_dead(conn: Conn, names: Names, job_id: str) -> bool:
    """Make a dead job ready now with no deliveries; False if it is not dead, or is a run step's.

    A run step's dead job stays dead: its run tries again by a resume, which reports one outcome per job.
    """
    rows = await conn.fetch(
        f"WITH r AS (UPDATE {names.jobs} SET state = 'queued', deliveries = 0, ready_at = $2, finished_at = NULL,"
        " error_type = NULL, error_message = NULL, error_traceback = NULL, cancel_requested = false, token = NULL,"
        " lease_until = NULL WHERE id = $1 AND state = 'dead' AND run_id IS NULL RETURNING queue)"
        " SELECT pg_notify($3, queue)::text FROM r",
        job_id,
        time.time(),
        names.ready,
    )
    return len(rows) == 1


async def purge(conn: Conn, names: Names) -> int:
    """Delete the jobs finished longer than their ``result_ttl`` ago (never dead ones), in batches; return how many.

    Runs go the same way: succeeded or cancelled ones finished longer than their ``result_ttl`` ago (a failed
    one stays, resumable), with their steps and items; their jobs go by their own ``result_ttl``.
    """
    jobs = (
        f"WITH gone AS (DELETE FROM {names.jobs} WHERE id IN (SELECT id FROM {names.jobs}"
        " WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at IS NOT NULL"
        " AND $1 - finished_at >= result_ttl LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id)"
        " SELECT pg_notify($3, id)::text FROM gone"
    )
    # A run whose row another transaction holds (a late outcome of one of its jobs) waits for the next purge.
    runs = (
        f"WITH gone AS (DELETE FROM {names.runs} WHERE id IN (SELECT id FROM {names.runs}"
        " WHERE state IN ('succeeded', 'cancelled') AND finished_at IS NOT NULL"
        " AND $1 - finished_at >= result_ttl LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id),"
        f" steps AS (DELETE FROM {names.run_steps} WHERE run_id IN (SELECT id FROM gone)),"
        f" items AS (DELETE FROM {names.run_items} WHERE run_id IN (SELECT id FROM gone))"
        " SELECT pg_notify($3, id)::text FROM gone"
    )
    total = 0
    for sql in (jobs, runs):
        while True:
            count = len(await conn.fetch(sql, time.time(), BATCH, names.done))
            total += count if sql is jobs else 0
            if count < BATCH:
                break
    return total


async def leave(conn: Conn, names: Names, consumer: str) -> None:
    """Forget ``consumer``'s heartbeat."""
    await conn.execute(f"DELETE FROM {names.consumers} WHERE id = $1", consumer)
