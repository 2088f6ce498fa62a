"""The PostgreSQL store's hot transitions: enqueue, claim, renew and complete, each one statement where it can be.

A statement in autocommit is its own transaction, so the common paths cost one round trip: a claim is one
``UPDATE ... RETURNING`` over a ``FOR UPDATE SKIP LOCKED`` pick (consumers never wait on one another's rows),
a batch of outcomes or renewals is one ``UPDATE ... FROM unnest(...)``, and the ``NOTIFY`` that wakes the
waiters rides in the same statement (``pg_notify`` is sent when the transaction commits). Clocks are this
process's (``time.time()``), as in every store; the rules are those of ``rules.py``. Outcomes of run step jobs
are recorded by a transaction of their own, with their runs' transitions (``outcomes.record_steps``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..._model.records import ConsumerInfo
from ..._model.workflow.records import RunEvent
from ..protocol import CONSUMER_STALE_AFTER
from ..records import Claim, Lease, NewJob, Outcome, Renewal
from ..rows import CLAIM_COLUMNS, NEW_JOB_COLUMNS, claim_of, new_job_values, queues_text
from ..rules import key_in_use
from .outcomes import DONE, Batch, record_steps
from .schema import Names

if TYPE_CHECKING:
    from .schema import Conn

__all__ = ("claim", "complete", "complete_and_claim", "enqueue", "renew")

# Keyless jobs of a group, one array per column of NEW_JOB_COLUMNS, inserted in the order given (so their
# ``seq`` keeps the submission order); one NOTIFY per queue that got jobs (and per kind: ready, delayed).
_INSERT_MANY = (
    f"WITH ins AS (INSERT INTO {{jobs}} ({NEW_JOB_COLUMNS}, state)"
    f" SELECT {NEW_JOB_COLUMNS}, 'queued' FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::boolean[],"
    " $6::text[], $7::float8[], $8::float8[], $9::int[], $10::boolean[], $11::float8[], $12::float8[])"
    f" WITH ORDINALITY AS j({NEW_JOB_COLUMNS}, ordinality) ORDER BY ordinality"
    " ON CONFLICT (id) DO NOTHING RETURNING queue, ready_at > created_at AS later)"
    # Ready jobs tell the waiters to come and claim ($13); delayed ones, to look at when they are due ($14).
    " SELECT pg_notify(CASE WHEN later THEN $14 ELSE $13 END, q)"
    " FROM (SELECT DISTINCT queue AS q, later FROM ins) AS queues"
)


async def enqueue(conn: Conn, names: Names, jobs: Sequence[NewJob]) -> list[str]:
    """Store ``jobs`` unless a key or an id is in use; return, for each, the id of the job that holds its place.

    A group without keys is one statement (one commit). Keys need a transaction: each keyed job takes an
    advisory lock on its key first, so that of two submitters of one key the second sees the first's job
    (the unique index backs this up); the keyless jobs before it go in first, to keep the order.
    """
    if all(job.key is None for job in jobs):
        await _insert(conn, names, jobs, time.time())
        return [job.id for job in jobs]
    ids: list[str] = []
    async with conn.transaction():
        plain: list[NewJob] = []
        for job in jobs:
            if job.key is None:
                plain.append(job)
                ids.append(job.id)
                continue
            await _insert(conn, names, plain, time.time())
            plain = []
            ids.append(await _enqueue_keyed(conn, names, job))
        await _insert(conn, names, plain, time.time())
    return ids


async def _insert(conn: Conn, names: Names, jobs: Sequence[NewJob], now: float) -> None:
    if jobs:
        columns = zip(*(new_job_values(job, now) for job in jobs), strict=True)
        await conn.execute(_INSERT_MANY.format(jobs=names.jobs), *map(list, columns), names.ready, names.later)


async def _enqueue_keyed(conn: Conn, names: Names, job: NewJob) -> str:
    """Within the caller's transaction: store ``job`` unless its key is in use; the id holding its place."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"tasker_async.key.{names.schema}.{job.key}")
    now = time.time()
    row = await conn.fetchrow(
        f"SELECT id, state, finished_at, result_ttl FROM {names.jobs} WHERE key = $1 ORDER BY seq DESC LIMIT 1",
        job.key,
    )
    if row is not None and key_in_use(row[1], row[2], row[3], now):
        return str(row[0])
    await _insert(conn, names, [job], now)
    return job.id


def _taken(names: Names, consumer: str, now: str, queues: Sequence[str], limit: str) -> str:
    """Two CTEs, ``picked`` and ``taken``: the claim of up to ``limit`` ready jobs (the arguments are placeholders).

    One ordered range of the ready index per queue, each cut to the limit, then merged: a claim reads O(limit)
    index entries however long the queues are (``queue = ANY(...)`` would sort every queued job of them).
    """
    columns = ", ".join(f"j.{column.strip()}" for column in CLAIM_COLUMNS.split(","))
    lanes = " UNION ALL ".join(
        # Each a subquery of its own: FOR UPDATE is refused in a branch of a UNION, not below one.
        f"SELECT * FROM (SELECT id, priority, ready_at, seq FROM {names.jobs} WHERE state = 'queued'"
        f" AND queue = {queue} AND ready_at <= {now} ORDER BY priority DESC, ready_at, seq LIMIT {limit}"
        f" FOR UPDATE SKIP LOCKED) AS lane{index}"
        for index, queue in enumerate(queues)
    )
    return (
        f"picked AS (SELECT id FROM ({lanes}) AS lanes ORDER BY priority DESC, ready_at, seq LIMIT {limit}),"
        f" taken AS (UPDATE {names.jobs} j SET state = 'running', token = replace(gen_random_uuid()::text, '-', ''),"
        f" consumer = {consumer}, deliveries = j.deliveries + 1, started_at = {now}, lease_until = {now} + j.lease"
        f" FROM picked WHERE j.id = picked.id RETURNING {columns})"
    )


@functools.lru_cache(maxsize=256)
def _claim_sql(names: Names, queue_count: int) -> str:
    queues = [f"${index}" for index in range(4, 4 + queue_count)]
    return f"WITH {_taken(names, '$1', '$2', queues, '$3')} SELECT * FROM taken"


def _complete_sql(names: Names) -> str:
    return f"WITH {DONE.format(jobs=names.jobs)} SELECT id, token, pg_notify($9, id)::text FROM done"


@functools.lru_cache(maxsize=256)
def _exchange_sql(names: Names, queue_count: int) -> str:
    # One statement, so one round trip and one commit: the outcomes' rows are running and the claimed ones
    # queued, so the two updates never touch the same row. Recorded outcomes come back as rows whose first
    # column is true (id and token filled in), claims as rows whose first column is false.
    queues = [f"${index}" for index in range(12, 12 + queue_count)]
    nulls = "NULL::text, NULL::text, NULL::bytea, NULL::boolean, NULL::boolean, NULL::int, NULL::int, NULL::float8"
    return (
        f"WITH {DONE.format(jobs=names.jobs)}, {_taken(names, '$10', '$8', queues, '$11')},"
        # Materialized, so that each NOTIFY is sent although the query reads no column of it.
        " notified AS MATERIALIZED (SELECT id, token, pg_notify($9, id)::text AS sent FROM done)"
        f" SELECT true, id, {nulls}, token, NULL::float8, NULL::bigint FROM notified"
        " UNION ALL SELECT false, * FROM taken"
    )


async def claim(conn: Conn, names: Names, consumer: str, queues: Sequence[str], limit: int, now: float) -> list[Claim]:
    """Take up to ``limit`` ready jobs of ``queues``, priority lane first, then ready order: one statement."""
    if limit <= 0 or not queues:
        return []
    wanted = sorted(set(queues))
    rows = await conn.fetch(_claim_sql(names, len(wanted)), consumer, now, limit, *wanted)
    return _claims([tuple(row) for row in rows])


def _claims(rows: list[tuple[object, ...]]) -> list[Claim]:
    # RETURNING follows no order: put the claims back in the order they were taken.
    rows.sort(key=lambda row: (-int(bool(row[4])), row[10], row[11]))
    return [claim_of(row) for row in rows]


async def complete(
    conn: Conn, names: Names, outcomes: Sequence[Outcome], now: float, told: list[RunEvent]
) -> list[bool]:
    """Record each outcome whose lease is still held (token matches, job running): one statement."""
    if not outcomes:
        return []
    batch = Batch(outcomes)
    rows = await conn.fetch(_complete_sql(names), *batch.columns, now, names.done)
    held = {(row[0], row[1]) for row in rows}
    held |= await record_steps(conn, names, batch.missed(held), now, told)
    return batch.recorded(held)


async def complete_and_claim(
    conn: Conn,
    names: Names,
    outcomes: Sequence[Outcome],
    consumer: str,
    queues: Sequence[str],
    limit: int,
    told: list[RunEvent],
) -> tuple[list[bool], list[Claim]]:
    """``complete`` then ``claim`` as one statement: one round trip, one commit."""
    now = time.time()
    if not outcomes:
        return [], await claim(conn, names, consumer, queues, limit, now)
    if limit <= 0 or not queues:
        return await complete(conn, names, outcomes, now, told), []
    if any(outcome.step for outcome in outcomes):
        # Run steps' outcomes: the plain ones and the claim commit with them, in one transaction (one sync).
        async with conn.transaction():
            return await _exchange(conn, names, outcomes, consumer, queues, limit, now, told)
    return await _exchange(conn, names, outcomes, consumer, queues, limit, now, told)


async def _exchange(
    conn: Conn,
    names: Names,
    outcomes: Sequence[Outcome],
    consumer: str,
    queues: Sequence[str],
    limit: int,
    now: float,
    told: list[RunEvent],
) -> tuple[list[bool], list[Claim]]:
    batch = Batch(outcomes)
    wanted = sorted(set(queues))
    args = (*batch.columns, now, names.done, consumer, limit, *wanted)
    rows = [tuple(row) for row in await conn.fetch(_exchange_sql(names, len(wanted)), *args)]
    held = {(str(row[1]), str(row[10])) for row in rows if row[0]}
    claims = _claims([row[1:] for row in rows if not row[0]])
    held |= await record_steps(conn, names, batch.missed(held), now, told)
    return batch.recorded(held), claims


def _renew_sql(names: Names) -> str:
    return (
        f"WITH beat AS (INSERT INTO {names.consumers} (id, host, pid, started_at, capacity, running, heartbeat_at,"
        " queues) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host,"
        " pid = EXCLUDED.pid, started_at = EXCLUDED.started_at, capacity = EXCLUDED.capacity,"
        " running = EXCLUDED.running, heartbeat_at = EXCLUDED.heartbeat_at, queues = EXCLUDED.queues),"
        # Consumers that died without leaving would otherwise stay in the table for good.
        f" gone AS (DELETE FROM {names.consumers} WHERE $7 - heartbeat_at >= $9 AND id <> $1),"
        f" held AS (UPDATE {names.jobs} j SET lease_until = $7 + j.lease FROM unnest($10::text[], $11::text[])"
        " AS l(id, token) WHERE j.id = l.id AND j.token = l.token AND j.state = 'running'"
        " RETURNING j.id, l.token, j.cancel_requested)"
        " SELECT id, token, cancel_requested FROM held"
    )


async def renew(conn: Conn, names: Names, consumer: ConsumerInfo, leases: Sequence[Lease]) -> Renewal:
    """Record the heartbeat (at this clock) and extend the leases still held: one statement."""
    info = (consumer.id, consumer.host, consumer.pid, consumer.started_at, consumer.capacity, consumer.running)
    # In id order, as a run's cancel locks its jobs: two such lockers never wait on each other in a circle.
    ordered = sorted(leases, key=lambda lease: lease.job_id)
    rows = await conn.fetch(
        _renew_sql(names),
        *info,
        time.time(),
        queues_text(consumer.queues),
        CONSUMER_STALE_AFTER,
        [lease.job_id for lease in ordered],
        [lease.token for lease in ordered],
    )
    held = {(row[0], row[1]) for row in rows}
    lost = {lease.job_id for lease in leases if (lease.job_id, lease.token) not in held}
    cancelled = {row[0] for row in rows if row[2]}
    return Renewal(frozenset(lost), frozenset(cancelled))
