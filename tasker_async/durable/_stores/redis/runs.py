"""Workflow runs on ``RedisStore``: the protocol's run operations, each one script, and their arguments.

The transitions run in Lua (``machine.lua``, ``runs.lua``, ``run_calls.lua``: a port of the state machine and
of ``runs/apply.py``), inside the scripts that change jobs. Reads go the other way: one script returns what
a snapshot needs, and ``apply.info`` / ``apply.output`` build it from a read-only ``RunTable`` over that
(``snapshot.py``).
"""

from __future__ import annotations

from typing import Any

from ..._model.workflow import machine
from ..._model.workflow.machine import Release, StepStatus
from ..._model.workflow.records import RunInfo
from ..records import NewJob, NewRun, RunOutput, StepRef
from ..runs import apply
from ..runs.plans import plan_text, shapes, step_jobs
from . import codec
from .snapshot import RunSnapshot

__all__ = ("RedisRuns", "start_args", "status_value")


def status_value(status: StepStatus) -> bytes:
    """A step's status as ``runs.lua`` keeps it: netstrings, the error's three fields last when it has one."""
    values: list[bytes | str | int] = [
        status.state,
        status.parents_left,
        "" if status.items is None else status.items,
        status.items_done,
        status.items_failed,
        status.attempts,
    ]
    if status.error is not None:
        values += [status.error.type, status.error.message, status.error.traceback]
    return codec.pack(values)


def _ref_value(ref: StepRef) -> bytes:
    return codec.pack([ref.run_id, ref.step, "" if ref.item is None else ref.item])


def start_args(run: NewRun) -> list[bytes]:
    """``start_run``'s arguments: the run, its steps' first statuses, and its roots' jobs (``machine.start``).

    The start depends on nothing stored, so it is decided here; the script dedups by key and id, and writes.

    Raises:
        ValueError: the plans do not form a graph.
    """
    statuses, effects = machine.start(shapes(run.steps))
    has_key = "0" if run.key is None else "1"
    head = codec.pack([run.id, run.workflow, has_key, run.key or "", run.inputs, plan_text(run.steps)])
    head += codec.pack([repr(float(run.result_ttl))])
    packed = codec.pack([part for name, status in statuses.items() for part in (name, status_value(status))])
    plans = {plan.name: plan for plan in run.steps}
    jobs: list[NewJob] = []
    for effect in effects:
        assert isinstance(effect, Release)  # a start only releases its roots
        jobs += step_jobs(run.id, run.inputs, plans[effect.step], effect, {}, lambda index: b"")
    roots = b"".join(codec.pack_job(job) + codec.frames([_ref_value(job.step)]) for job in jobs if job.step)
    return [head, packed, roots]


class RedisRuns:
    """The store protocol's run operations, each one script (``run_calls.lua``); mixed into ``RedisStore``."""

    async def _run(self, name: str, *args: Any) -> Any:
        raise NotImplementedError

    async def start_run(self, run: NewRun) -> str:
        """Store ``run`` and enqueue its roots' jobs in one script; a key (or an id) in use returns that run's id."""
        return codec.text(await self._run("start_run", *start_args(run)))

    async def _snapshot_of(self, run_id: str, *, results: bool) -> RunSnapshot:
        return RunSnapshot(run_id, await self._run("run_look", run_id, "1" if results else "0"))

    async def run_info(self, run_id: str) -> RunInfo | None:
        """The run's snapshot, or None if it is unknown."""
        return await apply.info(await self._snapshot_of(run_id, results=False), run_id)

    async def _run_look(self, run_id: str) -> RunOutput | None:
        return await apply.output(await self._snapshot_of(run_id, results=True), run_id)

    async def _purge_runs(self, batch: int) -> None:
        """Delete the runs ``plans.run_purgeable`` says, ``batch`` per script at most."""
        while int(await self._run("purge_runs", batch)) >= batch:
            pass

    async def cancel_run(self, run_id: str) -> bool:
        """Cancel a running run at once; False if it had finished or is unknown."""
        return int(await self._run("cancel_run", run_id)) == 1

    async def resume_run(self, run_id: str) -> bool:
        """Run a failed run's failed steps again; False if it is not failed.

        Raises:
            LookupError: the run is unknown.
        """
        resumed = int(await self._run("resume_run", run_id))
        if resumed < 0:
            raise LookupError(f"no run {run_id!r}: it is unknown, or was purged")
        return resumed == 1
