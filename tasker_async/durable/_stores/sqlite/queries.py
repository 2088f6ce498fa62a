"""The SQLite store's transitions: each one write transaction on the caller's connection, synchronous.

Each function takes the write lock first (``BEGIN IMMEDIATE``), reads the clock under it, and decides with
the shared rules (``rules.py``), so it changes the jobs exactly as ``MemoryStore`` does. The claim is one
``UPDATE ... RETURNING``; the batches read the rows they concern once and write them with ``executemany``.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from ..._model.records import FINISHED, ConsumerInfo
from ..protocol import CONSUMER_STALE_AFTER
from ..records import Claim, Lease, NewJob, Outcome, Renewal, StepRef
from ..rows import (
    CLAIM_COLUMNS,
    NEW_JOB_COLUMNS,
    claim_of,
    error_columns,
    new_job_values,
    queues_text,
)
from ..rules import key_in_use
from ..runs.apply import StepEnd
from .rows import placeholders, state_rows
from .runs import report
from .schema import write

__all__ = (
    "cancel",
    "claim",
    "complete",
    "complete_and_claim",
    "enqueue",
    "leave",
    "purge",
    "renew",
    "requeue_dead",
)


def enqueue(conn: sqlite3.Connection, jobs: Sequence[NewJob]) -> list[str]:
    """Store each job unless its key or its id is in use, all in one transaction.

    Returns, for each job, the id of the job that holds its place (the jobs see one another: of two with one
    key, the first is stored).
    """
    with write(conn):
        now = time.time()
        return [_enqueue_one(conn, job, now) for job in jobs]


def _enqueue_one(conn: sqlite3.Connection, job: NewJob, now: float) -> str:
    if job.key is not None:
        # The key's latest job decides, as in every store.
        row = conn.execute(
            "SELECT id, state, finished_at, result_ttl FROM jobs WHERE key = ? ORDER BY seq DESC LIMIT 1", (job.key,)
        ).fetchone()
        if row is not None and key_in_use(row[1], row[2], row[3], now):
            return str(row[0])
    if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job.id,)).fetchone() is not None:
        return job.id  # a retried enqueue whose first attempt was stored
    conn.execute(
        f"INSERT INTO jobs ({NEW_JOB_COLUMNS}, state) VALUES ({placeholders(12)}, 'queued')", new_job_values(job, now)
    )
    return job.id


@functools.lru_cache(maxsize=64)
def _claim_sql(queue_count: int) -> str:
    # One index range per queue and lane, each cut to the limit, then merged: a claim reads O(limit) index
    # entries however long the queues are (the literal state = 'queued' lets SQLite use the partial index).
    lane = (
        "SELECT * FROM (SELECT seq, priority, ready_at FROM jobs WHERE state = 'queued' AND queue = ?"
        " AND priority = ? AND ready_at <= ? ORDER BY ready_at, seq LIMIT ?)"
    )
    lanes = " UNION ALL ".join([lane] * (2 * queue_count))
    return (
        "UPDATE jobs SET state = 'running', token = lower(hex(randomblob(16))), consumer = ?,"
        " deliveries = deliveries + 1, started_at = ?, lease_until = ? + lease"
        f" WHERE seq IN (SELECT seq FROM ({lanes}) ORDER BY priority DESC, ready_at, seq LIMIT ?)"
        f" RETURNING {CLAIM_COLUMNS}"
    )


def claim(conn: sqlite3.Connection, consumer: str, queues: Sequence[str], limit: int) -> list[Claim]:
    """Take up to ``limit`` ready jobs of ``queues``, priority lane first, then ready order."""
    if limit <= 0 or not queues:
        return []
    with write(conn):
        return _claim(conn, consumer, queues, limit, time.time())


def _claim(conn: sqlite3.Connection, consumer: str, queues: Sequence[str], limit: int, now: float) -> list[Claim]:
    names = sorted(set(queues))
    if limit <= 0 or not names:
        return []
    lanes: list[Any] = []
    for name in names:
        for priority in (1, 0):
            lanes += [name, priority, now, limit]
    rows = conn.execute(_claim_sql(len(names)), [consumer, now, now, *lanes, limit]).fetchall()
    # RETURNING follows no order: put the claims back in the order they were taken.
    rows.sort(key=lambda row: (-row[4], row[10], row[11]))
    return [claim_of(row) for row in rows]


def complete_and_claim(
    conn: sqlite3.Connection, outcomes: Sequence[Outcome], consumer: str, queues: Sequence[str], limit: int
) -> tuple[list[bool], list[Claim]]:
    """``complete`` then ``claim`` in one transaction."""
    with write(conn):
        now = time.time()
        recorded = _complete(conn, outcomes, now) if outcomes else []
        return recorded, _claim(conn, consumer, queues, limit, now)


def renew(conn: sqlite3.Connection, consumer: ConsumerInfo, leases: Sequence[Lease]) -> Renewal:
    """Record the heartbeat (at this clock) and extend the leases still held."""
    with write(conn):
        now = time.time()
        conn.execute(
            "INSERT OR REPLACE INTO consumers (id, host, pid, started_at, capacity, running, heartbeat_at, queues)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                consumer.id,
                consumer.host,
                consumer.pid,
                consumer.started_at,
                consumer.capacity,
                consumer.running,
                now,
                queues_text(consumer.queues),
            ),
        )
        # Consumers that died without leaving would otherwise stay in the table for good.
        conn.execute("DELETE FROM consumers WHERE ? - heartbeat_at >= ?", (now, CONSUMER_STALE_AFTER))
        rows = state_rows(conn, [lease.job_id for lease in leases])
        lost: set[str] = set()
        cancelled: set[str] = set()
        held: list[tuple[float, str]] = []
        for lease in leases:
            row = rows.get(lease.job_id)
            if row is None or not row.held_by(lease.token):
                lost.add(lease.job_id)
                continue
            held.append((now, row.id))
            if row.cancel_requested:
                cancelled.add(row.id)
        conn.executemany("UPDATE jobs SET lease_until = ? + lease WHERE id = ?", held)
    return Renewal(frozenset(lost), frozenset(cancelled))


def complete(conn: sqlite3.Connection, outcomes: Sequence[Outcome]) -> list[bool]:
    """Record each outcome whose lease is still held; True where recorded."""
    with write(conn):
        return _complete(conn, outcomes, time.time())


def _complete(conn: sqlite3.Connection, outcomes: Sequence[Outcome], now: float) -> list[bool]:
    rows = state_rows(conn, [outcome.lease.job_id for outcome in outcomes])
    recorded: list[bool] = []
    updates: list[tuple[Any, ...]] = []
    ends: list[StepEnd] = []
    for outcome in outcomes:
        row = rows.get(outcome.lease.job_id)
        held = row is not None and row.held_by(outcome.lease.token)
        recorded.append(held)
        if row is None or not held:
            continue
        row.state = outcome.state  # a second outcome for the same lease in this batch finds it finished
        result = outcome.result if outcome.state == "succeeded" else None
        error = outcome.error if outcome.state in ("failed", "dead") else None
        updates.append((outcome.state, result, *error_columns(error), now, row.id))
        if row.ref is not None:
            ends.append(
                StepEnd(
                    ref=row.ref,
                    state=outcome.state,
                    deliveries=row.deliveries,
                    started_at=row.started_at,
                    result=result,
                    parts=outcome.parts,
                    error=error,
                )
            )
    conn.executemany(
        "UPDATE jobs SET state = ?, result = ?, error_type = ?, error_message = ?, error_traceback = ?,"
        " finished_at = ?, token = NULL, lease_until = NULL WHERE id = ?",
        updates,
    )
    report(conn, ends, now)
    return recorded


def cancel(conn: sqlite3.Connection, job_id: str) -> bool:
    """End a queued or delayed job ``cancelled``; flag a running one for its holder. False if finished or unknown."""
    with write(conn):
        sql = "SELECT state, run_id, step, item, deliveries, started_at FROM jobs WHERE id = ?"
        row = conn.execute(sql, (job_id,)).fetchone()
        if row is None or row[0] in FINISHED:
            return False
        if row[0] == "running":
            conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
            return True
        now = time.time()
        conn.execute("UPDATE jobs SET state = 'cancelled', finished_at = ?, token = NULL WHERE id = ?", (now, job_id))
        if row[1] is not None:
            end = StepEnd(ref=StepRef(row[1], row[2], row[3]), state="cancelled", deliveries=row[4], started_at=row[5])
            report(conn, [end], now)
        return True


def requeue_dead(conn: sqlite3.Connection, job_id: str) -> bool:
    """Make a dead job ready now with no deliveries; False if it is not dead."""
    with write(conn):
        changed = conn.execute(
            "UPDATE jobs SET state = 'queued', deliveries = 0, ready_at = ?, finished_at = NULL, error_type = NULL,"
            " error_message = NULL, error_traceback = NULL, cancel_requested = 0, token = NULL, lease_until = NULL"
            " WHERE id = ? AND state = 'dead' AND run_id IS NULL",
            (time.time(), job_id),
        ).rowcount
    return changed == 1


def purge(conn: sqlite3.Connection) -> int:
    """Delete the jobs finished longer than their ``result_ttl`` ago (never dead ones): ``rules.purgeable``.

    And the runs ``run_purgeable`` says, with their steps and items (not counted: the count is of jobs).
    """
    with write(conn):
        now = time.time()
        gone = "SELECT id FROM runs WHERE state IN ('succeeded', 'cancelled') AND ? - finished_at >= result_ttl"
        for table in ("run_items", "run_steps"):
            conn.execute(f"DELETE FROM {table} WHERE run_id IN ({gone})", (now,))
        conn.execute(f"DELETE FROM runs WHERE id IN ({gone})", (now,))
        return conn.execute(
            "DELETE FROM jobs WHERE state IN ('succeeded', 'failed', 'cancelled') AND finished_at IS NOT NULL"
            " AND ? - finished_at >= result_ttl",
            (now,),
        ).rowcount


def leave(conn: sqlite3.Connection, consumer: str) -> None:
    """Forget ``consumer``'s heartbeat."""
    with write(conn):
        conn.execute("DELETE FROM consumers WHERE id = ?", (consumer,))
