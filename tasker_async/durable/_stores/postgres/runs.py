"""The PostgreSQL store's ``RunTable``: the runs' rows, read and written with real awaits on one transaction.

Every method is a statement on the connection of the caller's transaction. A table that writes (``lock``)
reads a run's row ``FOR UPDATE``: two outcomes of one run take turns, so a fan-in fires once. Released
jobs are inserted with their step and ``NOTIFY`` the ready channel, a run's end the done channel, both sent
when the transaction commits; the run events told go to a list the store keeps once it has committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..._model.workflow.machine import StepStatus
from ..._model.workflow.records import STEP_FINISHED, RunEvent, RunState
from ..records import NewJob, NewRun, StepRef
from ..rows import NEW_JOB_COLUMNS, new_job_values
from ..runs.plans import plan_text
from ..runs.rows import run_of, status_of, status_values
from ..runs.table import ItemState, LiveJob, RunRow, StepTimes
from .schema import Names

if TYPE_CHECKING:
    from .schema import Conn

__all__ = ("RUN_COLUMNS", "STATUS_COLUMNS", "PgRuns", "ask_cancel")

RUN_COLUMNS = "id, workflow, key, state, inputs, steps, created_at, finished_at, result_ttl"
STATUS_COLUMNS = (
    "name, state, parents_left, items, items_done, items_failed, attempts, error_type, error_message, error_traceback"
)

# A run step's jobs, ready now (never delayed, never keyed), in the order given; one NOTIFY per queue ($16).
_INSERT_STEPS = (
    f"WITH ins AS (INSERT INTO {{jobs}} ({NEW_JOB_COLUMNS}, state, run_id, step, item)"
    f" SELECT {NEW_JOB_COLUMNS}, 'queued', run_id, step, item FROM unnest($1::text[], $2::text[], $3::text[],"
    " $4::bytea[], $5::boolean[], $6::text[], $7::float8[], $8::float8[], $9::int[], $10::boolean[], $11::float8[],"
    " $12::float8[], $13::text[], $14::text[], $15::int[])"
    f" WITH ORDINALITY AS j({NEW_JOB_COLUMNS}, run_id, step, item, ordinality) ORDER BY ordinality RETURNING queue)"
    " SELECT pg_notify($16, q) FROM (SELECT DISTINCT queue AS q FROM ins) AS queues"
)

# Every status of a transition in one statement; a step that becomes finished keeps its first finish time.
_SET_STATUSES = (
    f"INSERT INTO {{steps}} (run_id, {STATUS_COLUMNS}, finished_at) SELECT $1::text, * FROM unnest($2::text[],"
    " $3::text[], $4::int[], $5::int[], $6::int[], $7::int[], $8::int[], $9::text[], $10::text[], $11::text[],"
    " $12::float8[]) ON CONFLICT (run_id, name) DO UPDATE SET state = EXCLUDED.state,"
    " parents_left = EXCLUDED.parents_left, items = EXCLUDED.items, items_done = EXCLUDED.items_done,"
    " items_failed = EXCLUDED.items_failed, attempts = EXCLUDED.attempts, error_type = EXCLUDED.error_type,"
    " error_message = EXCLUDED.error_message, error_traceback = EXCLUDED.error_traceback,"
    " finished_at = CASE WHEN EXCLUDED.finished_at IS NULL THEN NULL"
    " ELSE coalesce({steps}.finished_at, EXCLUDED.finished_at) END"
)


async def ask_cancel(conn: Conn, names: Names, job_ids: list[str]) -> None:
    """Flag the running ``job_ids`` for their holders, and notify each holder (sent when the transaction commits)."""
    await conn.execute(
        f"WITH asked AS (UPDATE {names.jobs} SET cancel_requested = true WHERE id = ANY($1::text[]) RETURNING consumer)"
        " SELECT pg_notify($2, consumer) FROM asked WHERE consumer IS NOT NULL",
        job_ids,
        names.cancel,
    )


class PgRuns:
    """The runs of one schema, over the connection of one transaction (a ``RunTable``).

    Args:
        conn: the connection, inside the caller's transaction.
        names: the store's schema.
        lock: read runs ``FOR UPDATE`` (every table that writes); a snapshot's reads take no lock.
        told: where the run events told go: the caller keeps them once its transaction committed.
    """

    def __init__(self, conn: Conn, names: Names, *, lock: bool, told: list[RunEvent]) -> None:
        self._conn = conn
        self._names = names
        self._lock = " FOR UPDATE" if lock else ""
        self._told = told

    async def run(self, run_id: str) -> RunRow | None:
        sql = f"SELECT {RUN_COLUMNS} FROM {self._names.runs} WHERE id = $1{self._lock}"
        return _maybe_run(await self._conn.fetchrow(sql, run_id))

    async def run_of_key(self, key: str) -> RunRow | None:
        sql = f"SELECT {RUN_COLUMNS} FROM {self._names.runs} WHERE key = $1 ORDER BY seq DESC LIMIT 1{self._lock}"
        return _maybe_run(await self._conn.fetchrow(sql, key))

    async def add_run(self, run: NewRun, now: float) -> None:
        await self._conn.execute(
            f"INSERT INTO {self._names.runs} ({RUN_COLUMNS}) VALUES ($1, $2, $3, 'running', $4, $5, $6, NULL, $7)",
            run.id,
            run.workflow,
            run.key,
            run.inputs,
            plan_text(run.steps),
            now,
            run.result_ttl,
        )

    async def set_run(self, run_id: str, state: RunState, finished_at: float | None) -> None:
        sql = f"UPDATE {self._names.runs} SET state = $2, finished_at = $3 WHERE id = $1"
        await self._conn.execute(sql, run_id, state, finished_at)

    async def statuses(self, run: RunRow) -> dict[str, StepStatus]:
        sql = f"SELECT {STATUS_COLUMNS} FROM {self._names.run_steps} WHERE run_id = $1"
        found = {row[0]: status_of(row) for row in await self._conn.fetch(sql, run.id)}
        # In definition order, as a snapshot lists them.
        return {step.name: found[step.name] for step in run.steps if step.name in found}

    async def set_statuses(self, run_id: str, statuses: Mapping[str, StepStatus], now: float) -> None:
        if not statuses:
            return
        columns: list[list[Any]] = [[] for _ in range(11)]
        for name, status in statuses.items():
            finished_at = now if status.state in STEP_FINISHED else None
            values = (name, *status_values(status), finished_at)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        sql = _SET_STATUSES.format(steps=self._names.run_steps)
        await self._conn.execute(sql, run_id, *columns)

    async def times(self, run_id: str) -> dict[str, StepTimes]:
        sql = f"SELECT name, started_at, finished_at FROM {self._names.run_steps} WHERE run_id = $1"
        return {row[0]: StepTimes(started_at=row[1], finished_at=row[2]) for row in await self._conn.fetch(sql, run_id)}

    async def step_started(self, run_id: str, step: str, at: float) -> None:
        sql = (
            f"UPDATE {self._names.run_steps} SET started_at = least(coalesce(started_at, $3), $3)"
            " WHERE run_id = $1 AND name = $2"
        )
        await self._conn.execute(sql, run_id, step, at)

    async def set_result(self, run_id: str, step: str, result: bytes) -> None:
        sql = f"UPDATE {self._names.run_steps} SET result = $3 WHERE run_id = $1 AND name = $2"
        await self._conn.execute(sql, run_id, step, result)

    async def result(self, run_id: str, step: str) -> bytes | None:
        sql = f"SELECT result FROM {self._names.run_steps} WHERE run_id = $1 AND name = $2"
        value = await self._conn.fetchval(sql, run_id, step)
        return None if value is None else bytes(value)

    async def set_items(self, run_id: str, step: str, items: Mapping[int, tuple[ItemState, bytes | None]]) -> None:
        if not items:
            return
        indices = sorted(items)
        await self._conn.execute(
            f"INSERT INTO {self._names.run_items} (run_id, step, item, state, value)"
            " SELECT $1::text, $2::text, * FROM unnest($3::int[], $4::text[], $5::bytea[])"
            " ON CONFLICT (run_id, step, item) DO UPDATE SET state = EXCLUDED.state, value = EXCLUDED.value",
            run_id,
            step,
            indices,
            [items[index][0] for index in indices],
            [items[index][1] for index in indices],
        )

    async def items(self, run_id: str, step: str) -> dict[int, tuple[ItemState, bytes | None]]:
        sql = f"SELECT item, state, value FROM {self._names.run_items} WHERE run_id = $1 AND step = $2"
        rows = await self._conn.fetch(sql, run_id, step)
        return {row[0]: (row[1], None if row[2] is None else bytes(row[2])) for row in rows}

    async def enqueue_steps(self, jobs: Sequence[NewJob], now: float) -> None:
        if not jobs:
            return
        columns: list[list[Any]] = [[] for _ in range(15)]
        for job in jobs:
            assert job.step is not None
            values = (*new_job_values(job, now), job.step.run_id, job.step.step, job.step.item)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        await self._conn.execute(_INSERT_STEPS.format(jobs=self._names.jobs), *columns, self._names.ready)

    async def stop_jobs(self, run_id: str, steps: Sequence[str], now: float) -> list[tuple[StepRef, int]]:
        jobs = self._names.jobs
        # NOWAIT: a job locked by another transaction is being finished (or claimed, or renewed) by it, and
        # that one may wait for this run's lock next; the caller rolls back and tries again instead of waiting.
        rows = await self._conn.fetch(
            f"SELECT id, state, step, item, deliveries FROM {jobs} WHERE run_id = $1 AND step = ANY($2::text[])"
            " AND state IN ('queued', 'running') ORDER BY id FOR UPDATE NOWAIT",
            run_id,
            list(steps),
        )
        running = [row[0] for row in rows if row[1] == "running"]
        queued = [row for row in rows if row[1] == "queued"]
        if running:
            await ask_cancel(self._conn, self._names, running)
        if queued:
            await self._conn.execute(
                f"WITH c AS (UPDATE {jobs} SET state = 'cancelled', finished_at = $2, token = NULL"
                " WHERE id = ANY($1::text[]) RETURNING id) SELECT pg_notify($3, id) FROM c",
                [row[0] for row in queued],
                now,
                self._names.done,
            )
        return [(StepRef(run_id, row[2], row[3]), row[4]) for row in queued]

    async def live_jobs(self, run_id: str) -> list[LiveJob]:
        sql = (
            f"SELECT step, state, deliveries, started_at FROM {self._names.jobs}"
            " WHERE run_id = $1 AND state IN ('queued', 'running') ORDER BY id"
        )
        return [
            LiveJob(step=row[0], running=row[1] == "running", deliveries=row[2], started_at=row[3])
            for row in await self._conn.fetch(sql, run_id)
        ]

    async def told(self, event: RunEvent) -> None:
        self._told.append(event)
        if event.kind != "started":
            # Published as a finished job's id is: the store's waiters are keyed by id, a run's as a job's.
            await self._conn.execute("SELECT pg_notify($1, $2)", self._names.done, event.run_id)


def _maybe_run(row: Any) -> RunRow | None:
    return None if row is None else run_of(row)
