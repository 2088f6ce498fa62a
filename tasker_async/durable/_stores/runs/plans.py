"""A run's plans as a store keeps them (JSON text), the shapes the state machine reads, and the jobs it releases."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence

from ..._model.workflow.machine import Release, StepShape
from ..._model.workflow.payload import StepCall
from ..records import NewJob, StepPlan, StepRef

__all__ = ("plan_text", "plans_of", "run_key_in_use", "run_purgeable", "shapes", "step_jobs")


def plan_text(steps: Sequence[StepPlan]) -> str:
    """The plans as JSON text: one column (or hash field) per run."""
    return json.dumps(
        [
            [s.name, list(s.parents), s.map_over, s.task, s.queue, s.priority, s.max_deliveries, s.lease, s.result_ttl]
            for s in steps
        ],
        separators=(",", ":"),
    )


@functools.lru_cache(maxsize=1024)
def plans_of(text: str) -> tuple[StepPlan, ...]:
    """The plans ``plan_text`` wrote (cached: every outcome of a run reads them again)."""
    return tuple(
        StepPlan(
            name=name,
            parents=tuple(parents),
            map_over=map_over,
            task=task,
            queue=queue,
            priority=bool(priority),
            max_deliveries=int(max_deliveries),
            lease=float(lease),
            result_ttl=float(result_ttl),
        )
        for name, parents, map_over, task, queue, priority, max_deliveries, lease, result_ttl in json.loads(text)
    )


@functools.lru_cache(maxsize=1024)
def shapes(steps: tuple[StepPlan, ...]) -> tuple[StepShape, ...]:
    """The shapes the state machine reads, from a run's plans."""
    return tuple(StepShape(name=step.name, parents=step.parents, map_over=step.map_over) for step in steps)


def run_key_in_use(state: str, finished_at: float | None, result_ttl: float, now: float) -> bool:
    """Whether a run's key still dedups starts: running or failed (resumable), or finished within its TTL."""
    if state in ("running", "failed") or finished_at is None:
        return True
    return now - finished_at < result_ttl


def run_purgeable(state: str, finished_at: float | None, result_ttl: float, now: float) -> bool:
    """Whether ``purge`` deletes a run: succeeded or cancelled longer than its ``result_ttl`` ago.

    A failed run stays, resumable, as a dead job does.
    """
    return state in ("succeeded", "cancelled") and finished_at is not None and now - finished_at >= result_ttl


def step_jobs(
    run_id: str,
    inputs: bytes,
    plan: StepPlan,
    release: Release,
    parents: Mapping[str, bytes | tuple[bytes, ...]],
    item_value: Callable[[int], bytes],
) -> list[NewJob]:
    """The jobs that ``release`` enqueues: one for the step, or one per item index of a mapped step.

    Args:
        run_id: the run's id.
        inputs: the run's encoded inputs.
        plan: the released step's plan.
        release: the effect.
        parents: the encoded results of the step's parents, its ``map_over`` parent left out (each item job
            receives its own item instead).
        item_value: the encoded element ``i`` of the ``map_over`` parent's result.
    """
    indices: Sequence[int | None] = [None] if release.items is None else release.items
    jobs = []
    for index in indices:
        value = None if index is None else item_value(index)
        call = StepCall(run_id=run_id, step=plan.name, item=index, inputs=inputs, item_value=value, parents=parents)
        jobs.append(
            NewJob(
                id=uuid.uuid4().hex,
                name=plan.task,
                queue=plan.queue,
                payload=call.pack(),
                priority=plan.priority,
                max_deliveries=plan.max_deliveries,
                lease=plan.lease,
                result_ttl=plan.result_ttl,
                step=StepRef(run_id, plan.name, index),
            )
        )
    return jobs
