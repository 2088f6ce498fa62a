"""The run-state machine of workflow runs: pure transitions every store applies the same way.

Each function takes a run's shapes and its steps' statuses and returns the new statuses (a new mapping, the
input is never changed) and the effects to carry out. Nothing here does I/O.

The contract a store implements:

- **Start.** Keep ``shapes_of(workflow)`` with the run (a run keeps the graph it started with), write every
  status ``start`` returns, carry out its effects.
- **One atomic operation per transition.** Read (and lock) the run's statuses, call the transition, write the
  statuses that changed (``changed(before, after)``) and the run's state (``run_state(after)``), and carry
  out the effects in order -- all in one transaction (one Lua script). Recording a job's outcome belongs
  to the same operation: that is what makes fan-in exactly once.
- **Outcomes.** Report each step job's outcome once (the job layer records an outcome once; a redelivered
  job whose outcome is recorded is not reported again): ``succeeded`` -> ``item_succeeded``, ``failed``
  for good or ``dead`` -> ``item_failed``, ``cancelled`` -> ``item_cancelled``. When some child maps over a
  step (``mapped_children``), its success carries ``result_items=len(result)``; a result that is not a list
  is reported as a failure of the step instead. A dead step job must not be requeued by ``requeue_dead``
  (that would report a second outcome): ``resume`` is how a run tries again.
- **Starts.** ``job_started`` moves ``ready`` to ``running`` and counts attempts; calling it is optional for
  the fan-in logic (outcomes accept a ``ready`` step), so a store may fold it into its claim or skip it.
- **Effects.** ``Release(step, None)``: enqueue the step's job. ``Release(step, items)``: one job per index;
  item ``i`` receives element ``i`` of the ``map_over`` parent's result. ``CancelSteps``: cancel the queued
  jobs of those steps in this run and ask their running ones to stop (their late outcomes may be
  reported: they are only counted). ``RunEnded``: the run finished (events, waiters, ``finished_at``).
- **Results.** A mapped step's result is the list of its items' results in index order; a mapped step whose
  parent's list is empty succeeds at once without jobs, with ``[]`` as its result.
- **Resume.** Pass, for each ``failed`` mapped step, the indices of the items whose latest job failed, went
  dead or was cancelled (as many as its ``items_failed``): only those run again. A mapped step's result is
  then built from the latest succeeded job of each index.
- **Ports.** A store that cannot call Python inside its atomic operation (Redis: a Lua script) ports these
  functions and must decide exactly as they do, effects in the same order.

Decisions:

- **Run cancel ends the run at once.** ``cancel_run`` marks every unfinished step ``cancelled``, asks the
  store to stop the jobs of ready and running steps (and the items still running of a failed mapped step)
  and emits ``RunEnded("cancelled")``, so ``run.result()`` raises ``JobCancelledError`` without waiting for
  a job that may take long to notice. Outcomes of those jobs arrive at finished steps: counted, nothing
  released. A cancelled run is final. A finished run keeps its state (a failed one stays resumable): its
  cancel only stops the items still running of its failed mapped steps, which then count as failed items.
- **A step job cancelled by hand fails its step.** ``item_cancelled`` on a step that is not finished is a
  failure with a ``JobCancelledError`` error: descendants ``upstream_failed``, independent branches go on,
  the run ends ``failed`` and ``resume`` runs the step again. So ``cancelled`` steps exist only in a
  cancelled run, and an operator can stop one stuck step without losing the run.
- **A mapped step fails at its first failed item**, its descendants with it; its other items keep running
  (nothing cancels them) and are counted, so a resume only re-runs the failed ones. The run may end
  ``failed`` while such items still run.
- **Outcomes of finished steps are ignored but counted**: a late job of a finished step releases nothing.
  An outcome that cannot be (a step that was never released, more item outcomes than items) raises
  ``ValueError``: the store broke the contract, and its transaction must not commit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..errors import JobCancelledError
from ..records import ErrorInfo, qualified_name
from .machine_records import (
    CancelSteps,
    Effect,
    Release,
    RunEnded,
    RunGraph,
    StepShape,
    StepStatus,
    Transition,
    changed,
    mapped_children,
    run_graph,
    run_state,
    shapes_of,
)
from .machine_requests import cancel_run, resume
from .records import STEP_FINISHED

# The transitions and, for a store's convenience, the records and helpers around them: one import.
__all__ = (
    "CancelSteps",
    "Effect",
    "Release",
    "RunEnded",
    "StepShape",
    "StepStatus",
    "Transition",
    "cancel_run",
    "changed",
    "item_cancelled",
    "item_failed",
    "item_succeeded",
    "job_started",
    "mapped_children",
    "resume",
    "run_state",
    "shapes_of",
    "start",
)


def start(shapes: Sequence[StepShape]) -> Transition:
    """A new run: its roots ``ready`` and released, every other step ``pending`` on all its parents.

    Raises:
        ValueError: the shapes do not form a graph (see ``run_graph``).
    """
    graph = run_graph(tuple(shapes))
    statuses: dict[str, StepStatus] = {}
    effects: list[Effect] = []
    for name, shape in graph.shapes.items():
        if shape.parents:
            statuses[name] = StepStatus(state="pending", parents_left=len(shape.parents))
        else:
            statuses[name] = StepStatus(state="ready")
            effects.append(Release(step=name))
    return statuses, effects


def job_started(shapes: Sequence[StepShape], statuses: Mapping[str, StepStatus], step: str) -> dict[str, StepStatus]:
    """A job of ``step`` started (each item's job, for a mapped step; a redelivery too): ``ready`` -> ``running``.

    A finished step only counts the attempt (a job may start as its step is being cancelled).

    Raises:
        KeyError: no step is named ``step``.
        ValueError: ``step`` is ``pending``: no job of it was released.
    """
    _, out = _open(shapes, statuses)
    status = _released(out, step)
    state = "running" if status.state == "ready" else status.state
    out[step] = replace(status, state=state, attempts=status.attempts + 1)
    return out


def item_succeeded(
    shapes: Sequence[StepShape], statuses: Mapping[str, StepStatus], step: str, *, result_items: int | None = None
) -> Transition:
    """A job of ``step`` succeeded: the step succeeds (a mapped one, with its last item) and releases its children.

    Each child counts one more parent done; one whose parents all succeeded is released. A mapped child
    whose list is empty succeeds at once, and so on down (iteratively: no depth limit).

    Args:
        shapes: the run's shapes.
        statuses: every step's status.
        step: the step whose job succeeded.
        result_items: the length of the step's result; required when a child maps over the step, which must
            not be mapped itself (a mapped step's list is as long as its items). Ignored otherwise.

    Raises:
        KeyError: no step is named ``step``.
        ValueError: the caller broke the contract: a missing or negative ``result_items``, one given for a
            mapped step, or an outcome that cannot be (see the module's decisions).
    """
    graph, out = _open(shapes, statuses)
    status = _released(out, step)
    if graph.shapes[step].map_over is not None:
        if result_items is not None:
            raise ValueError(f"step {step!r} is mapped: its list is as long as its items; pass no result_items")
        status = out[step] = _counted(step, status, done=1)
        if status.state in STEP_FINISHED or status.items_done < (status.items or 0):
            return out, []
        result_items = status.items
    else:
        if status.state in STEP_FINISHED:
            return out, []
        _check_length(graph, step, result_items)
    effects: list[Effect] = []
    _succeed(graph, out, step, result_items, effects)
    _ended(statuses, out, effects)
    return out, effects


def item_failed(
    shapes: Sequence[StepShape], statuses: Mapping[str, StepStatus], step: str, *, error: ErrorInfo
) -> Transition:
    """A job of ``step`` failed for good (or went dead): the step fails, its pending descendants ``upstream_failed``.

    Branches that do not depend on it go on. A step that is not finished has no ready or running descendant
    (those need every ancestor succeeded), so nothing is left to cancel. For a finished step (a later item
    of a failed mapped step, say) the failure is only counted and the first error kept.

    Raises:
        KeyError: no step is named ``step``.
        ValueError: an outcome that cannot be (see the module's decisions).
    """
    graph, out = _open(shapes, statuses)
    status = _released(out, step)
    if graph.shapes[step].map_over is not None:
        status = out[step] = _counted(step, status, failed=1)
    if status.state in STEP_FINISHED:
        return out, []
    out[step] = replace(status, state="failed", error=error)
    for name in graph.descendants(step):
        if out[name].state == "pending":
            out[name] = replace(out[name], state="upstream_failed")
    effects: list[Effect] = []
    _ended(statuses, out, effects)
    return out, effects


def item_cancelled(
    shapes: Sequence[StepShape], statuses: Mapping[str, StepStatus], step: str, *, error: ErrorInfo | None = None
) -> Transition:
    """A job of ``step`` ended cancelled: counted for a finished step, a failure (resumable) for an unfinished one.

    A run cancel finished every step already, so an unfinished step's job was cancelled by hand: the step
    fails with ``error`` (default: a ``JobCancelledError`` naming the step), as ``item_failed`` says.

    Raises:
        KeyError: no step is named ``step``.
        ValueError: an outcome that cannot be (see the module's decisions).
    """
    if error is None:
        error = ErrorInfo(qualified_name(JobCancelledError), f"the job of step {step!r} was cancelled")
    return item_failed(shapes, statuses, step, error=error)


def _open(shapes: Sequence[StepShape], statuses: Mapping[str, StepStatus]) -> tuple[RunGraph, dict[str, StepStatus]]:
    graph = run_graph(tuple(shapes))
    return graph, graph.checked_copy(statuses)


def _released(statuses: Mapping[str, StepStatus], step: str) -> StepStatus:
    status = statuses[step]
    if status.state == "pending":
        raise ValueError(f"step {step!r} is pending: no job of it was released, so none can start or end")
    return status


def _counted(step: str, status: StepStatus, *, done: int = 0, failed: int = 0) -> StepStatus:
    # Every item job reports once, and a resume resets the failures it re-runs, so done + failed never
    # exceeds items; more is a second report of some item, which would let a fan-in fire early.
    if status.items is None or status.items_open < done + failed:
        raise ValueError(f"step {step!r} got more item outcomes than its {status.items} items")
    return replace(status, items_done=status.items_done + done, items_failed=status.items_failed + failed)


def _check_length(graph: RunGraph, step: str, result_items: int | None) -> None:
    mapping = [child for child in graph.children[step] if graph.shapes[child].map_over == step]
    if mapping and result_items is None:
        raise ValueError(f"step(s) {mapping} map over {step!r}: its success needs result_items (its list's length)")
    if result_items is not None and result_items < 0:
        raise ValueError(f"result_items must be >= 0, got {result_items}")


def _succeed(graph: RunGraph, out: dict[str, StepStatus], step: str, length: int | None, effects: list[Effect]) -> None:
    # Breadth-first with a queue, not recursion: a chain of mapped steps over empty lists succeeds in one go.
    todo: deque[tuple[str, int | None]] = deque([(step, length)])
    while todo:
        name, length = todo.popleft()
        out[name] = replace(out[name], state="succeeded")
        for child in graph.children[name]:
            if _parent_succeeded(graph, out, child, name, length, effects):
                todo.append((child, 0))


def _parent_succeeded(
    graph: RunGraph, out: dict[str, StepStatus], child: str, parent: str, length: int | None, effects: list[Effect]
) -> bool:
    """Count ``parent`` done for ``child``; release the child if it was the last. True: it succeeds at once."""
    status = out[child]
    # A cancelled child is final; an upstream_failed one still learns its items, which a resume needs.
    if status.state not in ("pending", "upstream_failed"):
        return False
    mapped = graph.shapes[child].map_over
    items = length if mapped == parent else status.items
    status = out[child] = replace(status, parents_left=status.parents_left - 1, items=items)
    if status.state != "pending" or status.parents_left > 0:
        return False
    if mapped is not None and items == 0:
        return True
    out[child] = replace(status, state="ready")
    # A mapped child's items are known here: its map_over parent succeeded with a length (checked on entry).
    effects.append(Release(step=child) if mapped is None else Release(step=child, items=tuple(range(items or 0))))
    return False


def _ended(before: Mapping[str, StepStatus], after: Mapping[str, StepStatus], effects: list[Effect]) -> None:
    # Only the transition that takes the run out of ``running`` tells it ended: once per round.
    state = run_state(after)
    if state != "running" and run_state(before) == "running":
        effects.append(RunEnded(state=state))
