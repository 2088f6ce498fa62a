"""``CachedRuns``: the PostgreSQL ``RunTable`` with its run rows read once and written back once per transaction.

The shared glue asks its table a question per step of a transition (the run, its statuses, an item, ...).
Asked of the server one by one, an outcome would cost a round trip each. Here a run is read (and locked) with
its steps' statuses once, the transitions work on that copy, and ``flush`` writes what changed
in at most three statements (steps, items, runs), whatever the number of outcomes of the transaction: a batch
of a fan-out's item outcomes costs a handful of statements, not a handful per item. The run's row is locked
as it is read, so the copy stays the truth until the transaction ends. Everything that is not a run row
(jobs released, stopped, listed; run events) goes straight to ``PgRuns``.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..._model.workflow.machine import StepStatus
from ..._model.workflow.records import STEP_FINISHED, RunEvent, RunState
from ..records import NewJob, NewRun, StepRef
from ..runs.rows import status_values
from ..runs.table import ItemState, LiveJob, RunRow, StepTimes
from .runs import STATUS_COLUMNS, PgRuns

if TYPE_CHECKING:
    from .schema import Conn, Names

__all__ = ("CachedRuns",)

Items = dict[int, tuple[ItemState, bytes | None]]

# What ``flush`` writes, each a part of one statement (a data-modifying CTE); ``$n`` are numbered from 1 in each
# and moved past the parameters of the parts before it. The statuses changed, of any runs: a finished step keeps
# its first finish time and its first start; a result is written where one is given (NULL keeps the row's).
_FLUSH_STEPS = (
    f"INSERT INTO {{steps}} (run_id, {STATUS_COLUMNS}, finished_at, started_at, result)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[], $7::int[],"
    " $8::int[], $9::text[], $10::text[], $11::text[], $12::float8[], $13::float8[], $14::bytea[])"
    " ON CONFLICT (run_id, name) DO UPDATE SET state = EXCLUDED.state, parents_left = EXCLUDED.parents_left,"
    " items = EXCLUDED.items, items_done = EXCLUDED.items_done, items_failed = EXCLUDED.items_failed,"
    " attempts = EXCLUDED.attempts, error_type = EXCLUDED.error_type, error_message = EXCLUDED.error_message,"
    " error_traceback = EXCLUDED.error_traceback,"
    " finished_at = CASE WHEN EXCLUDED.finished_at IS NULL THEN NULL"
    " ELSE coalesce({steps}.finished_at, EXCLUDED.finished_at) END,"
    " started_at = least({steps}.started_at, EXCLUDED.started_at),"
    " result = coalesce(EXCLUDED.result, {steps}.result)"
)
_FLUSH_ITEMS = (
    "INSERT INTO {items} (run_id, step, item, state, value)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bytea[])"
    " ON CONFLICT (run_id, step, item) DO UPDATE SET state = EXCLUDED.state, value = EXCLUDED.value"
)
_FLUSH_RUNS = (
    "UPDATE {runs} AS r SET state = u.state, finished_at = u.finished_at"
    " FROM unnest($1::text[], $2::text[], $3::float8[]) AS u(id, state, finished_at) WHERE r.id = u.id"
)
_PARAMETER = re.compile(r"\$(\d+)")


def one_statement(parts: list[tuple[str, list[Any]]]) -> tuple[str, list[Any]]:
    """The data-modifying ``parts`` (each its SQL and its arguments) as one statement, and its arguments."""
    ctes: list[str] = []
    arguments: list[Any] = []
    for number, (sql, args) in enumerate(parts):
        offset = len(arguments)
        moved = _PARAMETER.sub(functools.partial(_moved, offset=offset), sql)
        ctes.append(f"w{number} AS ({moved})")
        arguments += args
    return f"WITH {', '.join(ctes)} SELECT 1", arguments


def _moved(found: re.Match[str], *, offset: int) -> str:
    return f"${int(found.group(1)) + offset}"


class CachedRuns:
    """A ``RunTable`` over ``PgRuns`` that reads each run once and writes back at ``flush`` (see the module)."""

    def __init__(self, conn: Conn, names: Names, *, lock: bool, told: list[RunEvent]) -> None:
        self._rows = PgRuns(conn, names, lock=lock, told=told)
        self._conn, self._names = conn, names
        self._runs: dict[str, RunRow | None] = {}
        self._statuses: dict[str, dict[str, StepStatus]] = {}
        self._items: dict[tuple[str, str], Items] = {}
        self._results: dict[tuple[str, str], bytes | None] = {}
        # What flush writes: step rows (with when each first started, if a job of it did here), items, runs.
        self._steps: dict[tuple[str, str], float | None] = {}
        self._now: float | None = None  # the transition's clock: a step that finishes here finishes then
        self._new_items: dict[tuple[str, str, int], tuple[ItemState, bytes | None]] = {}
        self._new_runs: dict[str, tuple[RunState, float | None]] = {}

    async def run(self, run_id: str) -> RunRow | None:
        if run_id not in self._runs:
            # Two statements, not one join: a row lock waited for is re-read at its latest version, but the rows
            # joined to it would still be those of the statement's start, from before the transaction that held
            # the lock committed; the statuses are read once the lock is held.
            row = self._runs[run_id] = await self._rows.run(run_id)
            if row is not None:
                self._statuses[run_id] = await self._rows.statuses(row)
        return self._runs[run_id]

    async def run_of_key(self, key: str) -> RunRow | None:
        return await self._rows.run_of_key(key)

    async def add_run(self, run: NewRun, now: float) -> None:
        await self._rows.add_run(run, now)
        self._runs.pop(run.id, None)  # read again (with its row locked) when asked

    async def set_run(self, run_id: str, state: RunState, finished_at: float | None) -> None:
        row = await self.run(run_id)
        assert row is not None
        self._runs[run_id] = _replace_run(row, state, finished_at)
        self._new_runs[run_id] = (state, finished_at)

    async def statuses(self, run: RunRow) -> dict[str, StepStatus]:
        await self.run(run.id)
        return dict(self._statuses[run.id])

    async def set_statuses(self, run_id: str, statuses: Mapping[str, StepStatus], now: float) -> None:
        self._now = now
        known = self._statuses[run_id]
        for name, status in statuses.items():
            known[name] = status
            self._steps.setdefault((run_id, name), None)

    async def times(self, run_id: str) -> dict[str, StepTimes]:
        await self.flush()
        return await self._rows.times(run_id)

    async def step_started(self, run_id: str, step: str, at: float) -> None:
        started = self._steps.get((run_id, step))
        self._steps[run_id, step] = at if started is None else min(started, at)

    async def set_result(self, run_id: str, step: str, result: bytes) -> None:
        self._results[run_id, step] = result
        self._steps.setdefault((run_id, step), None)

    async def result(self, run_id: str, step: str) -> bytes | None:
        if (run_id, step) not in self._results:
            self._results[run_id, step] = await self._rows.result(run_id, step)
        return self._results[run_id, step]

    async def set_items(self, run_id: str, step: str, items: Mapping[int, tuple[ItemState, bytes | None]]) -> None:
        if (run_id, step) in self._items:
            self._items[run_id, step].update(items)
        for index, item in items.items():
            self._new_items[run_id, step, index] = item

    async def items(self, run_id: str, step: str) -> Items:
        if (run_id, step) not in self._items:
            found = await self._rows.items(run_id, step)
            found.update({key[2]: item for key, item in self._new_items.items() if key[:2] == (run_id, step)})
            self._items[run_id, step] = found
        return dict(self._items[run_id, step])

    async def enqueue_steps(self, jobs: Sequence[NewJob], now: float) -> None:
        await self._rows.enqueue_steps(jobs, now)

    async def stop_jobs(self, run_id: str, steps: Sequence[str], now: float) -> list[tuple[StepRef, int]]:
        return await self._rows.stop_jobs(run_id, steps, now)

    async def live_jobs(self, run_id: str) -> list[LiveJob]:
        return await self._rows.live_jobs(run_id)

    async def told(self, event: RunEvent) -> None:
        await self._rows.told(event)

    async def flush(self) -> None:
        """Write what changed, the steps' rows, the items, the runs, in one statement."""
        parts: list[tuple[str, list[Any]]] = []
        if self._steps:
            parts.append((_FLUSH_STEPS.format(steps=self._names.run_steps), self._step_columns()))
        if self._new_items:
            keys = list(self._new_items)
            columns = [[key[0] for key in keys], [key[1] for key in keys], [key[2] for key in keys]]
            columns += [[self._new_items[key][0] for key in keys], [self._new_items[key][1] for key in keys]]
            parts.append((_FLUSH_ITEMS.format(items=self._names.run_items), columns))
        if self._new_runs:
            ids = list(self._new_runs)
            columns = [ids, [self._new_runs[i][0] for i in ids], [self._new_runs[i][1] for i in ids]]
            parts.append((_FLUSH_RUNS.format(runs=self._names.runs), columns))
        self._steps, self._new_items, self._new_runs = {}, {}, {}
        if parts:
            sql, arguments = one_statement(parts)
            await self._conn.execute(sql, *arguments)

    def _step_columns(self) -> list[list[Any]]:
        # A finished step's row keeps the first finish time it has (the statement's coalesce); one that
        # finishes here gets the transition's.
        now = self._now if self._now is not None else time.time()
        columns: list[list[Any]] = [[] for _ in range(14)]
        for (run_id, name), started_at in self._steps.items():
            status = self._statuses[run_id][name]
            finished_at = now if status.state in STEP_FINISHED else None
            result = self._results.get((run_id, name))
            values = (run_id, name, *status_values(status), finished_at, started_at, result)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        return columns


def _replace_run(row: RunRow, state: RunState, finished_at: float | None) -> RunRow:
    return replace(row, state=state, finished_at=finished_at)
