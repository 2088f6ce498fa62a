"""The PostgreSQL store's workflow runs: start, cancel, resume and snapshots, and step jobs' ends applied to runs.

Each operation is one transaction over ``runs.PgRuns`` and the shared glue (``runs/apply.py``), which decides
with the state machine. Locks are taken jobs first, then runs (in id order): a transition that finishes a
step job holds the job's row when it applies the outcome to the run. The one operation that must lock jobs
while it holds a run, a run's cancel, first locks the run's live jobs (waiting for those being finished,
whose outcomes reach the run before it), and locks any other without waiting: should one be held, it rolls
back and tries again rather than wait for a transaction that may be waiting for the run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio
import asyncpg

from ..._model.workflow.records import RunEvent, RunInfo
from ..records import NewRun, RunOutput
from ..runs import apply
from ..runs.apply import StepEnd
from .run_cache import CachedRuns
from .schema import Names

if TYPE_CHECKING:
    from .schema import Conn

__all__ = ("cancel_run", "report", "resume_run", "run_info", "run_output", "start_run")

# Attempts of a run's cancel that found one of its jobs locked by another transaction, and the pause between.
_CANCEL_TRIES = 100
_CANCEL_PAUSE = 0.01


async def report(conn: Conn, names: Names, ends: Sequence[StepEnd], now: float, told: list[RunEvent]) -> None:
    """Within the caller's transaction, which holds the jobs' rows: apply each end to its run, runs in id order.

    The run events go to ``told``, for the caller to keep once its transaction committed (as every operation
    here does with its own ``told``).
    """
    if not ends:
        return
    table = CachedRuns(conn, names, lock=True, told=told)
    await apply.ended(table, ends, now)
    await table.flush()


async def start_run(conn: Conn, names: Names, run: NewRun, told: list[RunEvent]) -> str:
    """Store ``run`` and enqueue its roots' jobs, unless its key (or id) is in use: that run's id then."""
    async with conn.transaction():
        # Two starts of one key (or one id) take turns, so the second sees the first's run.
        if run.key is not None:
            await _advisory_lock(conn, f"tasker_async.run_key.{names.schema}.{run.key}")
        await _advisory_lock(conn, f"tasker_async.run.{names.schema}.{run.id}")
        table = CachedRuns(conn, names, lock=True, told=told)
        run_id = await apply.start(table, run, time.time())
        await table.flush()
        return run_id


async def cancel_run(conn: Conn, names: Names, run_id: str, told: list[RunEvent]) -> bool:
    """Cancel a running run at once; False if it had finished or is unknown."""
    attempt, kept = 1, len(told)
    while True:
        try:
            async with conn.transaction():
                await conn.execute(
                    f"SELECT id FROM {names.jobs} WHERE run_id = $1 AND state IN ('queued', 'running')"
                    " ORDER BY id FOR UPDATE",
                    run_id,
                )
                table = CachedRuns(conn, names, lock=True, told=told)
                cancelled = await apply.cancel(table, run_id, time.time())
                await table.flush()
                return cancelled
        except asyncpg.LockNotAvailableError:
            del told[kept:]  # rolled back: nothing of this attempt happened
            # A job released after the first lock is held by another transaction: let it finish.
            if attempt == _CANCEL_TRIES:
                raise
        attempt += 1
        await anyio.sleep(_CANCEL_PAUSE)


async def resume_run(conn: Conn, names: Names, run_id: str, told: list[RunEvent]) -> bool:
    """Run a failed run's failed steps again; False if it is not failed (LookupError if unknown)."""
    async with conn.transaction():
        table = CachedRuns(conn, names, lock=True, told=told)
        resumed = await apply.resume(table, run_id, time.time())
        await table.flush()
        return resumed


async def run_info(conn: Conn, names: Names, run_id: str) -> RunInfo | None:
    """The run's snapshot (one consistent view of its rows), or None if it is unknown."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await apply.info(CachedRuns(conn, names, lock=False, told=[]), run_id)


async def run_output(conn: Conn, names: Names, run_id: str) -> RunOutput | None:
    """The finished run's snapshot and results; None while it runs (LookupError if unknown)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await apply.output(CachedRuns(conn, names, lock=False, told=[]), run_id)


async def _advisory_lock(conn: Conn, name: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", name)
