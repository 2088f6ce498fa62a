"""Recording outcomes: a batch as the statements' arrays, and the path of run step jobs' outcomes.

A plain job's outcome is recorded by one statement in autocommit (``queries``), which leaves run step jobs
alone (``run_id IS NULL``): a plain job pays nothing for workflows. The outcomes that statement did not
record (a step job's, or one whose lease was lost) take ``record_steps``: one transaction that records the
step jobs' outcomes and applies them to their runs, so an outcome and its run's transition commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..._model.workflow.records import RunEvent
from ..records import Outcome, StepRef
from ..rows import error_columns
from ..runs.apply import StepEnd
from .schema import Names
from .workflows import report

if TYPE_CHECKING:
    from .schema import Conn

__all__ = ("DONE", "Batch", "record_steps")

_ARRAYS = (
    "o AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::text[],"
    " $7::text[]) AS o(id, token, state, result, error_type, error_message, error_traceback))"
)
_SET = (
    "state = o.state, result = o.result, error_type = o.error_type, error_message = o.error_message,"
    " error_traceback = o.error_traceback, finished_at = $8, token = NULL, lease_until = NULL"
)

# A CTE, ``done``: each outcome of a plain job whose lease is still held ($1-$7, one array per column),
# finished at $8. Step jobs are filtered out before their rows are locked.
DONE = (
    f"{_ARRAYS}, done AS (UPDATE {{jobs}} j SET {_SET} FROM o WHERE j.id = o.id AND j.token = o.token"
    " AND j.state = 'running' AND j.run_id IS NULL RETURNING j.id, o.token)"
)

# The step jobs among the outcomes, their rows locked in id order (as a run's cancel locks them), recorded;
# each comes back with what its run needs, and the waiters on the job are told ($9).
_STEPS_DONE = (
    f"WITH {_ARRAYS}, mine AS (SELECT j.id FROM {{jobs}} j JOIN o ON j.id = o.id AND j.token = o.token"
    " WHERE j.state = 'running' AND j.run_id IS NOT NULL ORDER BY j.id FOR UPDATE OF j),"
    f" done AS (UPDATE {{jobs}} j SET {_SET} FROM o, mine WHERE j.id = mine.id AND j.id = o.id"
    " AND j.token = o.token AND j.state = 'running'"
    " RETURNING j.id, o.token, j.run_id, j.step, j.item, j.deliveries, j.started_at)"
    " SELECT *, pg_notify($9, id)::text FROM done"
)


class Batch:
    """Outcomes as the ``DONE`` arrays, and which of them counts (the same lease twice: the first)."""

    def __init__(self, outcomes: Sequence[Outcome]) -> None:
        self.outcomes = outcomes
        self.first: dict[tuple[str, str], int] = {}
        for index, outcome in enumerate(outcomes):
            self.first.setdefault((outcome.lease.job_id, outcome.lease.token), index)
        self.columns: list[list[object]] = [[] for _ in range(7)]
        for index in sorted(self.first.values()):
            outcome = outcomes[index]
            result = outcome.result if outcome.state == "succeeded" else None
            error = outcome.error if outcome.state in ("failed", "dead") else None
            values = (outcome.lease.job_id, outcome.lease.token, outcome.state, result, *error_columns(error))
            for column, value in zip(self.columns, values, strict=True):
                column.append(value)

    def recorded(self, held: set[tuple[str, str]]) -> list[bool]:
        """For each outcome, whether it was recorded, given the (id, token) pairs the statement updated."""
        return [
            self.first[(outcome.lease.job_id, outcome.lease.token)] == index
            and (outcome.lease.job_id, outcome.lease.token) in held
            for index, outcome in enumerate(self.outcomes)
        ]

    def missed(self, held: set[tuple[str, str]]) -> list[Outcome]:
        """The outcomes that count and were not recorded: step jobs' (or lost leases)."""
        return [self.outcomes[index] for pair, index in sorted(self.first.items(), key=_at) if pair not in held]


def _at(entry: tuple[tuple[str, str], int]) -> int:
    return entry[1]


async def record_steps(
    conn: Conn, names: Names, outcomes: Sequence[Outcome], now: float, told: list[RunEvent]
) -> set[tuple[str, str]]:
    """Record the outcomes of step jobs still held and apply them to their runs, in one transaction.

    The caller's, if it is in one (its other statements then commit with these: one commit), else its own.
    Returns the (id, token) pairs recorded; the run events go to ``told``.
    """
    if not outcomes:
        return set()
    if not conn.is_in_transaction():
        async with conn.transaction():
            return await record_steps(conn, names, outcomes, now, told)
    batch = Batch(outcomes)
    by_lease = {(outcome.lease.job_id, outcome.lease.token): outcome for outcome in outcomes}
    rows = await conn.fetch(_STEPS_DONE.format(jobs=names.jobs), *batch.columns, now, names.done)
    ends = []
    for row in rows:
        outcome = by_lease[(row[0], row[1])]
        ends.append(
            StepEnd(
                ref=StepRef(row[2], row[3], row[4]),
                state=outcome.state,
                deliveries=row[5],
                started_at=row[6],
                result=outcome.result if outcome.state == "succeeded" else None,
                parts=outcome.parts if outcome.state == "succeeded" else None,
                error=outcome.error if outcome.state in ("failed", "dead") else None,
            )
        )
    await report(conn, names, ends, now, told)
    return {(row[0], row[1]) for row in rows}
