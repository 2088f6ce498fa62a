"""The rows the SQL stores keep and the records they become: column lists, and readers and writers of rows.

Engine-neutral: SQLite and PostgreSQL keep the same columns in the same order, so one reader serves both
(a row is any sequence: a ``sqlite3.Row`` tuple or an ``asyncpg.Record``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from .._model.records import FINISHED, ConsumerInfo, ErrorInfo, JobInfo, JobState, QueueStats
from .records import Claim, Finished, NewJob
from .rules import visible_state

__all__ = (
    "CLAIM_COLUMNS",
    "CONSUMER_COLUMNS",
    "INFO_COLUMNS",
    "NEW_JOB_COLUMNS",
    "STATE_COLUMNS",
    "StateRow",
    "claim_of",
    "consumer_of",
    "error_columns",
    "finished_of",
    "info_of",
    "new_job_values",
    "queue_stats_of",
    "queues_text",
)

INFO_COLUMNS = (
    "id, name, queue, state, deliveries, priority, key, created_at, started_at, finished_at,"
    " error_type, error_message, error_traceback, consumer, ready_at"
)
CLAIM_COLUMNS = "id, name, queue, payload, priority, once, deliveries, max_deliveries, lease, token, ready_at, seq"
# What the transitions of held jobs decide from.
STATE_COLUMNS = "id, state, token, once, deliveries, max_deliveries, cancel_requested, started_at"
CONSUMER_COLUMNS = "id, host, pid, started_at, capacity, running, heartbeat_at, queues"
# What an enqueue writes, the state aside (always 'queued'); ``new_job_values`` gives them in this order.
NEW_JOB_COLUMNS = (
    "id, name, queue, payload, priority, key, ready_at, lease, max_deliveries, once, result_ttl, created_at"
)


def new_job_values(job: NewJob, now: float) -> tuple[Any, ...]:
    """The ``NEW_JOB_COLUMNS`` of ``job``, enqueued at ``now``."""
    return (
        job.id,
        job.name,
        job.queue,
        job.payload,
        job.priority,
        job.key,
        now + max(0.0, job.delay),
        job.lease,
        job.max_deliveries,
        job.once,
        job.result_ttl,
        now,
    )


def queue_stats_of(counts: Sequence[Any], consumers: Sequence[Sequence[Any]]) -> QueueStats:
    """A queue's stats from its counts row (ready priority, ready main, delayed, running, dead) and its consumers.

    ``consumers`` are ``CONSUMER_COLUMNS`` rows.
    """
    return QueueStats(
        ready_priority=int(counts[0]),
        ready_main=int(counts[1]),
        delayed=int(counts[2]),
        running=int(counts[3]),
        dead=int(counts[4]),
        consumers=tuple(consumer_of(tuple(consumer)) for consumer in consumers),
    )


def info_of(row: Sequence[Any], now: float) -> JobInfo:
    """A job's snapshot from its ``INFO_COLUMNS`` row, at ``now``."""
    error_type, message, traceback = row[10], row[11], row[12]
    error = None if error_type is None else ErrorInfo(error_type, message or "", traceback or "")
    return JobInfo(
        id=row[0],
        name=row[1],
        queue=row[2],
        state=visible_state(cast(JobState, row[3]), row[14], now),
        deliveries=row[4],
        priority=bool(row[5]),
        key=row[6],
        created_at=row[7],
        started_at=row[8],
        finished_at=row[9],
        error=error,
        consumer=row[13],
    )


def finished_of(row: Sequence[Any], now: float) -> Finished | None:
    """A job's snapshot and result from its ``INFO_COLUMNS, result`` row once it is finished; None while it is not."""
    if row[3] not in FINISHED:
        return None
    result = row[15]
    return Finished(info_of(row, now), None if result is None else bytes(result))


def claim_of(row: Sequence[Any]) -> Claim:
    """What a consumer receives for a ``CLAIM_COLUMNS`` row it just claimed."""
    return Claim(
        id=row[0],
        name=row[1],
        queue=row[2],
        payload=bytes(row[3]),
        priority=bool(row[4]),
        once=bool(row[5]),
        deliveries=row[6],
        max_deliveries=row[7],
        lease=row[8],
        token=row[9],
    )


def error_columns(error: ErrorInfo | None) -> tuple[str | None, str | None, str | None]:
    """``error_type, error_message, error_traceback`` for ``error``."""
    if error is None:
        return None, None, None
    return error.type, error.message, error.traceback


def queues_text(queues: Sequence[str]) -> str:
    """A consumer's queues as its row keeps them."""
    return json.dumps(list(queues))


def consumer_of(row: Sequence[Any]) -> ConsumerInfo:
    """A consumer's heartbeat from its ``CONSUMER_COLUMNS`` row."""
    return ConsumerInfo(
        id=row[0],
        host=row[1],
        pid=row[2],
        started_at=row[3],
        capacity=row[4],
        running=row[5],
        heartbeat_at=row[6],
        queues=tuple(json.loads(row[7])),
    )


class StateRow:
    """A job's ``STATE_COLUMNS``: whether a lease still holds it, and what its fate depends on."""

    __slots__ = ("cancel_requested", "deliveries", "id", "max_deliveries", "once", "started_at", "state", "token")

    def __init__(self, row: Sequence[Any]) -> None:
        self.id: str = row[0]
        self.state: str = row[1]
        self.token: str | None = row[2]
        self.once = bool(row[3])
        self.deliveries: int = row[4]
        self.max_deliveries: int = row[5]
        self.cancel_requested = bool(row[6])
        self.started_at: float | None = row[7]

    def held_by(self, token: str) -> bool:
        """Whether a lease with ``token`` still holds the job."""
        return self.state == "running" and self.token == token
