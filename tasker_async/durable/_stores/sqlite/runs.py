"""The SQLite store's workflow runs: ``RunTable`` over the connection, inside the caller's write transaction.

Its methods are coroutines that never suspend (``runs/drive.py`` runs the glue in the connection's thread).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from ..._model.workflow.machine import StepStatus
from ..._model.workflow.records import STEP_FINISHED, RunEvent, RunState
from ..records import NewJob, NewRun, StepRef
from ..rows import NEW_JOB_COLUMNS, new_job_values
from ..runs import apply
from ..runs.apply import StepEnd
from ..runs.drive import drive
from ..runs.events import RunEventLog
from ..runs.plans import plan_text
from ..runs.rows import run_of, status_of, status_values
from ..runs.table import ItemState, LiveJob, RunRow, StepTimes
from .rows import placeholders

__all__ = ("SQLiteRuns", "collecting", "report")

# The run events of the operation running on this thread (the store runs one at a time on its connection).
_collected = threading.local()


@contextmanager
def collecting(log: RunEventLog) -> Iterator[None]:
    """Collect the run events of the operation in the block; ``log`` keeps them if it returns (it committed)."""
    events: list[RunEvent] = []
    _collected.events = events
    try:
        yield
        log.add(events)
    finally:
        _collected.events = None


_RUN_COLUMNS = "id, workflow, key, state, inputs, plan, created_at, finished_at, result_ttl"
_STEP_COLUMNS = (
    "step, state, parents_left, items, items_done, items_failed, attempts, error_type, error_message, error_traceback"
)


class SQLiteRuns:
    """The runs of one SQLite file, read and written on ``conn`` inside the caller's transaction.

    The run events it is told go to the operation's ``collecting`` block (the store's waiters of a run that
    ended are woken by the store's own commit, as for a finished job).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def run(self, run_id: str) -> RunRow | None:
        row = self._conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else run_of(row)

    async def run_of_key(self, key: str) -> RunRow | None:
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE key = ? ORDER BY rowid DESC LIMIT 1"
        row = self._conn.execute(sql, (key,)).fetchone()
        return None if row is None else run_of(row)

    async def add_run(self, run: NewRun, now: float) -> None:
        self._conn.execute(
            f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({placeholders(9)})",
            (run.id, run.workflow, run.key, "running", run.inputs, plan_text(run.steps), now, None, run.result_ttl),
        )

    async def set_run(self, run_id: str, state: RunState, finished_at: float | None) -> None:
        self._conn.execute("UPDATE runs SET state = ?, finished_at = ? WHERE id = ?", (state, finished_at, run_id))

    async def statuses(self, run: RunRow) -> dict[str, StepStatus]:
        rows = self._conn.execute(f"SELECT {_STEP_COLUMNS} FROM run_steps WHERE run_id = ?", (run.id,))
        found = {row[0]: status_of(row) for row in rows}
        return {step.name: found[step.name] for step in run.steps}

    async def set_statuses(self, run_id: str, statuses: Mapping[str, StepStatus], now: float) -> None:
        self._conn.executemany(
            f"INSERT INTO run_steps (run_id, {_STEP_COLUMNS}, finished_at) VALUES ({placeholders(12)})"
            " ON CONFLICT (run_id, step) DO UPDATE SET state = excluded.state, parents_left = excluded.parents_left,"
            " items = excluded.items, items_done = excluded.items_done, items_failed = excluded.items_failed,"
            " attempts = excluded.attempts, error_type = excluded.error_type,"
            " error_message = excluded.error_message, error_traceback = excluded.error_traceback,"
            " finished_at = CASE WHEN excluded.finished_at IS NULL THEN NULL"
            " ELSE coalesce(run_steps.finished_at, excluded.finished_at) END",
            [
                (run_id, name, *status_values(s), now if s.state in STEP_FINISHED else None)
                for name, s in statuses.items()
            ],
        )

    async def times(self, run_id: str) -> dict[str, StepTimes]:
        rows = self._conn.execute("SELECT step, started_at, finished_at FROM run_steps WHERE run_id = ?", (run_id,))
        return {row[0]: StepTimes(started_at=row[1], finished_at=row[2]) for row in rows}

    async def step_started(self, run_id: str, step: str, at: float) -> None:
        self._conn.execute(
            "UPDATE run_steps SET started_at = min(coalesce(started_at, ?), ?) WHERE run_id = ? AND step = ?",
            (at, at, run_id, step),
        )

    async def set_result(self, run_id: str, step: str, result: bytes) -> None:
        self._conn.execute("UPDATE run_steps SET result = ? WHERE run_id = ? AND step = ?", (result, run_id, step))

    async def result(self, run_id: str, step: str) -> bytes | None:
        sql = "SELECT result FROM run_steps WHERE run_id = ? AND step = ?"
        row = self._conn.execute(sql, (run_id, step)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    async def set_items(self, run_id: str, step: str, items: Mapping[int, tuple[ItemState, bytes | None]]) -> None:
        self._conn.executemany(
            "INSERT OR REPLACE INTO run_items (run_id, step, item, state, result) VALUES (?, ?, ?, ?, ?)",
            [(run_id, step, index, state, result) for index, (state, result) in items.items()],
        )

    async def items(self, run_id: str, step: str) -> dict[int, tuple[ItemState, bytes | None]]:
        sql = "SELECT item, state, result FROM run_items WHERE run_id = ? AND step = ? ORDER BY item"
        rows = self._conn.execute(sql, (run_id, step))
        return {row[0]: (cast(ItemState, row[1]), None if row[2] is None else bytes(row[2])) for row in rows}

    async def enqueue_steps(self, jobs: Sequence[NewJob], now: float) -> None:
        self._conn.executemany(
            f"INSERT INTO jobs ({NEW_JOB_COLUMNS}, state, run_id, step, item)"
            f" VALUES ({placeholders(12)}, 'queued', ?, ?, ?)",
            [_step_job_values(job, now) for job in jobs],
        )

    async def stop_jobs(self, run_id: str, steps: Sequence[str], now: float) -> list[tuple[StepRef, int]]:
        marks = placeholders(len(steps))
        self._conn.execute(
            f"UPDATE jobs SET cancel_requested = 1 WHERE run_id = ? AND step IN ({marks}) AND state = 'running'",
            (run_id, *steps),
        )
        rows = self._conn.execute(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?, token = NULL"
            f" WHERE run_id = ? AND step IN ({marks}) AND state = 'queued' RETURNING step, item, deliveries, seq",
            (now, run_id, *steps),
        ).fetchall()
        rows.sort(key=lambda row: row[3])
        return [(StepRef(run_id, row[0], row[1]), row[2]) for row in rows]

    async def live_jobs(self, run_id: str) -> list[LiveJob]:
        rows = self._conn.execute(
            "SELECT step, state, deliveries, started_at FROM jobs"
            " WHERE run_id = ? AND state IN ('queued', 'running') ORDER BY seq",
            (run_id,),
        )
        return [LiveJob(step=row[0], running=row[1] == "running", deliveries=row[2], started_at=row[3]) for row in rows]

    async def told(self, event: RunEvent) -> None:
        events: list[RunEvent] | None = getattr(_collected, "events", None)
        if events is not None:
            events.append(event)


def _step_job_values(job: NewJob, now: float) -> tuple[Any, ...]:
    assert job.step is not None
    return (*new_job_values(job, now), job.step.run_id, job.step.step, job.step.item)


def report(conn: sqlite3.Connection, ends: Sequence[StepEnd], now: float) -> None:
    """Apply each step job's end to its run, in the caller's transaction, after the jobs' own rows changed."""
    if ends:
        drive(apply.ended(SQLiteRuns(conn), ends, now))
