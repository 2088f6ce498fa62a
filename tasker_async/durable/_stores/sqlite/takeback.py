"""The SQLite store's give-backs: jobs taken out of ``running`` by a release or an expired lease, in one transaction.

A job queued again has no outcome yet; one that ends by its fate (failed, dead, cancelled) is a step job's
outcome too, which its run learns in the same transaction (``runs.report``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from ..._model.records import ErrorInfo
from ..records import Lease
from ..rows import STATE_COLUMNS, error_columns
from ..rules import Fate, expired_fate, fate_error, unstarted_fate
from ..runs.apply import StepEnd
from .rows import HeldRow, state_rows
from .runs import report
from .schema import write

__all__ = ("reclaim", "release")


# Takes a job out of ``running``: queued again (at its place or now) or finished by its fate.
_TAKE_BACK = (
    "UPDATE jobs SET state = ?, ready_at = coalesce(?, ready_at), deliveries = ?, started_at = ?,"
    " finished_at = ?, error_type = ?, error_message = ?, error_traceback = ?, token = NULL, lease_until = NULL"
    " WHERE id = ?"
)


def _take_back(row: HeldRow, fate: Fate, now: float) -> tuple[Any, ...]:
    """The ``_TAKE_BACK`` parameters that give ``row`` its ``fate``; queued again, at its old place (ready_at kept)."""
    if fate == "queued":
        return ("queued", None, row.deliveries, row.started_at, None, None, None, None, row.id)
    error = error_columns(fate_error(fate, row.deliveries))
    return (fate, None, row.deliveries, row.started_at, now, *error, row.id)


def _cut_short(row: HeldRow, now: float) -> tuple[Any, ...]:
    """A job whose run was cut short (expired lease, or a kill), given its fate."""
    fate = expired_fate(
        once=row.once,
        deliveries=row.deliveries,
        max_deliveries=row.max_deliveries,
        cancel_requested=row.cancel_requested,
    )
    return _take_back(row, fate, now)


def release(conn: sqlite3.Connection, leases: Sequence[Lease], started: bool) -> None:
    """Give held jobs back: a started one as an expired lease; an unstarted one keeps its place, uncounted."""
    with write(conn):
        now = time.time()
        rows = state_rows(conn, [lease.job_id for lease in leases])
        updates: list[tuple[Any, ...]] = []
        for lease in leases:
            row = rows.get(lease.job_id)
            if row is None or not row.held_by(lease.token):
                continue
            row.state = "released"  # the same lease twice in one batch is given back once
            if started:
                updates.append(_cut_short(row, now))
                continue
            row.deliveries -= 1
            if row.deliveries == 0:
                row.started_at = None
            fate = unstarted_fate(cancel_requested=row.cancel_requested)
            updates.append(_take_back(row, fate, now))
        conn.executemany(_TAKE_BACK, updates)
        report(conn, _ends(rows, updates), now)


def _ends(rows: dict[str, HeldRow], updates: list[tuple[Any, ...]]) -> list[StepEnd]:
    """The step jobs that ``_TAKE_BACK`` ``updates`` finish (a job queued again has no outcome yet)."""
    ends = []
    for update in updates:
        row = rows[update[-1]]
        if row.ref is not None and update[0] != "queued":
            error = None if update[5] is None else ErrorInfo(update[5], update[6], update[7])
            end = StepEnd(
                ref=row.ref, state=update[0], deliveries=row.deliveries, started_at=row.started_at, error=error
            )
            ends.append(end)
    return ends


def reclaim(conn: sqlite3.Connection) -> int:
    """Take back the running jobs whose lease has expired; return how many."""
    with write(conn):
        now = time.time()
        # Named, or the planner may prefer jobs_state and read every running job.
        sql = (
            f"SELECT {STATE_COLUMNS}, run_id, step, item FROM jobs INDEXED BY jobs_lease"
            " WHERE state = 'running' AND lease_until <= ?"
        )
        rows = {row[0]: HeldRow(row) for row in conn.execute(sql, (now,))}
        updates = [_cut_short(row, now) for row in rows.values()]
        conn.executemany(_TAKE_BACK, updates)
        report(conn, _ends(rows, updates), now)
        return len(rows)
