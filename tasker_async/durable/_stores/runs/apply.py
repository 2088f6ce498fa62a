"""The glue between a store's ``RunTable`` and the state machine: each function is one atomic operation's part.

Each reads the run, decides with ``machine`` (which states the contract), writes what changed and carries out
the effects in order. The caller runs it inside its atomic operation (one transaction, one synchronous step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..._model.records import ErrorInfo, qualified_name
from ..._model.workflow import machine
from ..._model.workflow.machine import CancelSteps, Effect, Release, RunEnded
from ..._model.workflow.records import RunEvent, RunInfo, StepInfo
from ..records import NewRun, OutcomeState, RunOutput, StepRef
from .plans import run_key_in_use, shapes, step_jobs

if TYPE_CHECKING:
    from .table import ItemState, RunRow, RunTable

__all__ = ("StepEnd", "cancel", "ended", "info", "not_a_list", "outcome", "output", "resume", "start")


@dataclass(frozen=True, slots=True, kw_only=True)
class StepEnd:
    """How a run step's job ended, as its run is told (what ``outcome`` takes).

    A store collects them as it finishes jobs, then applies them (``ended``) in the same atomic operation.
    """

    ref: StepRef
    state: OutcomeState
    deliveries: int
    started_at: float | None = None
    result: bytes | None = None
    parts: tuple[bytes, ...] | None = None
    error: ErrorInfo | None = None


def not_a_list(step: str) -> ErrorInfo:
    """The error of a step whose result some step maps over, but which returned no list."""
    return ErrorInfo(qualified_name(TypeError), f"step {step!r} is mapped over, so its result must be a list")


async def start(table: RunTable, run: NewRun, now: float) -> str:
    """Store ``run`` and release its roots, unless its key (or id) is in use: then return that run's id."""
    if run.key is not None:
        holder = await table.run_of_key(run.key)
        if holder is not None and run_key_in_use(holder.state, holder.finished_at, holder.result_ttl, now):
            return holder.id
    if await table.run(run.id) is not None:
        return run.id
    await table.add_run(run, now)
    row = await table.run(run.id)
    assert row is not None
    statuses, effects = machine.start(shapes(row.steps))
    await table.set_statuses(row.id, statuses, now)
    await table.told(RunEvent(kind="started", run_id=row.id, workflow=row.workflow, at=now))
    await _carry_out(table, row, effects, now)
    return row.id


async def outcome(
    table: RunTable,
    ref: StepRef,
    state: OutcomeState,
    *,
    now: float,
    deliveries: int,
    started_at: float | None = None,
    result: bytes | None = None,
    parts: tuple[bytes, ...] | None = None,
    error: ErrorInfo | None = None,
) -> None:
    """Apply one step job's outcome to its run (a purged run is left alone)."""
    row = await table.run(ref.run_id)
    if row is None:
        return
    if started_at is not None:
        await table.step_started(row.id, ref.step, started_at)
    steps = shapes(row.steps)
    before = await table.statuses(row)
    plan = next(step for step in row.steps if step.name == ref.step)
    mapped = plan.map_over is not None
    if state == "succeeded" and not mapped and machine.mapped_children(steps, ref.step) and parts is None:
        state, error = "failed", not_a_list(ref.step)
    if state == "succeeded":
        if mapped and ref.item is not None:
            await table.set_items(row.id, ref.step, {ref.item: ("succeeded", result)})
            after, effects = machine.item_succeeded(steps, before, ref.step)
        else:
            await table.set_result(row.id, ref.step, result or b"")
            if parts is not None:
                await table.set_items(row.id, ref.step, {i: ("succeeded", part) for i, part in enumerate(parts)})
            count = None if parts is None else len(parts)
            after, effects = machine.item_succeeded(steps, before, ref.step, result_items=count)
    else:
        if mapped and ref.item is not None:
            await table.set_items(row.id, ref.step, {ref.item: ("failed", None)})
        if state == "cancelled":
            after, effects = machine.item_cancelled(steps, before, ref.step)
        else:
            failure = error or ErrorInfo(qualified_name(RuntimeError), f"step {ref.step!r} failed")
            after, effects = machine.item_failed(steps, before, ref.step, error=failure)
    after[ref.step] = replace(after[ref.step], attempts=after[ref.step].attempts + deliveries)
    await table.set_statuses(row.id, machine.changed(before, after), now)
    await _carry_out(table, row, effects, now)


async def ended(table: RunTable, ends: Sequence[StepEnd], now: float) -> None:
    """Apply each end to its run, runs in id order (a store that locks runs takes their locks in that order)."""
    for end in sorted(ends, key=lambda end: end.ref.run_id):
        await outcome(
            table,
            end.ref,
            end.state,
            now=now,
            deliveries=end.deliveries,
            started_at=end.started_at,
            result=end.result,
            parts=end.parts,
            error=end.error,
        )


async def cancel(table: RunTable, run_id: str, now: float) -> bool:
    """Cancel the run: True if it was running (``machine.cancel_run`` for the rest); False if finished or unknown."""
    row = await table.run(run_id)
    if row is None:
        return False
    before = await table.statuses(row)
    after, effects = machine.cancel_run(shapes(row.steps), before)
    await table.set_statuses(row.id, machine.changed(before, after), now)
    await _carry_out(table, row, effects, now)
    return row.state == "running"


async def resume(table: RunTable, run_id: str, now: float) -> bool:
    """Run a failed run's failed steps again; False if it is not failed.

    Raises:
        LookupError: the run is unknown (or purged).
    """
    row = await table.run(run_id)
    if row is None:
        raise LookupError(f"no run {run_id!r}: it is unknown, or was purged")
    if row.state != "failed":
        return False
    before = await table.statuses(row)
    failed_items: dict[str, list[int]] = {}
    for plan in row.steps:
        if plan.map_over is not None and before[plan.name].state == "failed":
            items = await table.items(run_id, plan.name)
            failed_items[plan.name] = [index for index, (state, _) in items.items() if state == "failed"]
    after, effects = machine.resume(shapes(row.steps), before, failed_items=failed_items)
    await table.set_run(run_id, "running", None)
    await table.set_statuses(run_id, machine.changed(before, after), now)
    await table.told(RunEvent(kind="started", run_id=row.id, workflow=row.workflow, at=now))
    await _carry_out(table, row, effects, now)
    return True


async def _carry_out(table: RunTable, row: RunRow, effects: list[Effect], now: float) -> None:
    for effect in effects:
        if isinstance(effect, Release):
            await _release(table, row, effect, now)
        elif isinstance(effect, CancelSteps):
            # Queued jobs end here: their outcomes go to the run like any other (counted items, a resume needs).
            for ref, deliveries in await table.stop_jobs(row.id, effect.steps, now):
                await outcome(table, ref, "cancelled", now=now, deliveries=deliveries)
        elif isinstance(effect, RunEnded):
            assert effect.state != "running"  # a run ends succeeded, failed or cancelled
            await table.set_run(row.id, effect.state, now)
            await table.told(RunEvent(kind=effect.state, run_id=row.id, workflow=row.workflow, at=now))


async def _release(table: RunTable, row: RunRow, release: Release, now: float) -> None:
    plan = next(step for step in row.steps if step.name == release.step)
    parents: dict[str, bytes | tuple[bytes, ...]] = {}
    for parent in plan.parents:
        if parent != plan.map_over:
            parents[parent] = await _result(table, row, parent)
    values: dict[int, tuple[ItemState, bytes | None]] = {}
    if release.items is not None:
        assert plan.map_over is not None
        values = await table.items(row.id, plan.map_over)
        await table.set_items(row.id, plan.name, dict.fromkeys(release.items, ("queued", None)))
    jobs = step_jobs(row.id, row.inputs, plan, release, parents, lambda index: values[index][1] or b"")
    await table.enqueue_steps(jobs, now)


async def _result(table: RunTable, row: RunRow, step: str) -> bytes | tuple[bytes, ...]:
    plan = next(each for each in row.steps if each.name == step)
    if plan.map_over is None:
        return await table.result(row.id, step) or b""
    items = await table.items(row.id, step)
    return tuple(items[index][1] or b"" for index in sorted(items))


async def info(table: RunTable, run_id: str) -> RunInfo | None:
    """The run's snapshot: a ``ready`` step with a running job shows ``running``, and live jobs' starts count."""
    row = await table.run(run_id)
    if row is None:
        return None
    statuses, times = await table.statuses(row), await table.times(run_id)
    running: set[str] = set()
    attempts = {name: status.attempts for name, status in statuses.items()}
    started = {name: times[name].started_at if name in times else None for name in statuses}
    for job in await table.live_jobs(run_id):
        attempts[job.step] += job.deliveries
        if job.running:
            running.add(job.step)
        if job.started_at is not None:
            known = started[job.step]
            started[job.step] = job.started_at if known is None else min(known, job.started_at)
    plans = {plan.name: plan for plan in row.steps}
    steps = {}
    for name, status in statuses.items():
        state = "running" if status.state == "ready" and name in running else status.state
        steps[name] = StepInfo(
            name=name,
            state=state,
            attempts=attempts[name],
            error=status.error if status.state == "failed" else None,
            items=status.items,
            started_at=started[name],
            finished_at=times[name].finished_at if name in times else None,
            parents=plans[name].parents,
            map_over=plans[name].map_over,
        )
    return RunInfo(
        id=row.id,
        workflow=row.workflow,
        state=row.state,
        steps=steps,
        key=row.key,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


async def output(table: RunTable, run_id: str) -> RunOutput | None:
    """A finished run's snapshot and results; None while it runs.

    Raises:
        LookupError: the run is unknown (or purged).
    """
    snapshot = await info(table, run_id)
    if snapshot is None:
        raise LookupError(f"no run {run_id!r}: it is unknown, or was purged")
    if snapshot.state == "running":
        return None
    row = await table.run(run_id)
    assert row is not None
    results = {}
    for name, step in snapshot.steps.items():
        if step.state == "succeeded":
            results[name] = await _result(table, row, name)
    return RunOutput(snapshot, results)
