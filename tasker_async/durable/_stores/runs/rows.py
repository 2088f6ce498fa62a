"""The run rows the SQL stores keep and the records they become: read by position, so one reader serves both.

SQLite and PostgreSQL keep a run's columns, and a step's status columns, in the same order (their names may
differ: each store's module lists its own); a row is any sequence (a ``sqlite3`` tuple, an ``asyncpg.Record``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from ..._model.records import ErrorInfo
from ..._model.workflow.machine import StepStatus
from ..._model.workflow.records import RunState, StepState
from ..rows import error_columns
from .plans import plans_of
from .table import RunRow

__all__ = ("run_of", "status_of", "status_values")


def run_of(row: Sequence[Any]) -> RunRow:
    """A run from its row: id, workflow, key, state, inputs, plans (text), created_at, finished_at, result_ttl."""
    return RunRow(
        id=row[0],
        workflow=row[1],
        key=row[2],
        state=cast(RunState, row[3]),
        inputs=bytes(row[4]),
        steps=plans_of(row[5]),
        created_at=row[6],
        finished_at=row[7],
        result_ttl=row[8],
    )


def status_of(row: Sequence[Any]) -> StepStatus:
    """A step's status from its row: name, then ``status_values``' columns."""
    error = None if row[7] is None else ErrorInfo(row[7], row[8] or "", row[9] or "")
    return StepStatus(
        state=cast(StepState, row[1]),
        parents_left=row[2],
        items=row[3],
        items_done=row[4],
        items_failed=row[5],
        attempts=row[6],
        error=error,
    )


def status_values(status: StepStatus) -> tuple[Any, ...]:
    """A status's columns after the step's name: state, parents left, items, done, failed, attempts, the error."""
    return (
        status.state,
        status.parents_left,
        status.items,
        status.items_done,
        status.items_failed,
        status.attempts,
        *error_columns(status.error),
    )
