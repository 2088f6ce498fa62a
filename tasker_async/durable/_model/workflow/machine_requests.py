"""The transitions a user asks for: cancel a running run, resume a failed one (``machine`` states the contract)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from .machine_records import CancelSteps, Release, RunEnded, run_graph, run_state
from .records import STEP_FINISHED

if TYPE_CHECKING:
    from .machine_records import Effect, RunGraph, StepShape, StepStatus, Transition

__all__ = ("cancel_run", "resume")

_LIVE = frozenset({"ready", "running"})


def cancel_run(shapes: Sequence[StepShape], statuses: Mapping[str, StepStatus]) -> Transition:
    """Cancel a run: a running one ends ``cancelled`` at once, every unfinished step ``cancelled``, their jobs stopped.

    A finished run keeps its state (a failed one stays resumable); only the items still running of its failed
    mapped steps are stopped, and come back as failed items (as a resume needs). The caller reports that the
    run had finished.

    Raises:
        ValueError: the statuses are not those of the shapes' steps.
    """
    graph = run_graph(tuple(shapes))
    out = graph.checked_copy(statuses)
    stopping = []
    for name, shape in graph.shapes.items():
        status = statuses[name]
        # A failed mapped step's other items may still run: they are jobs of the run too.
        in_flight = shape.map_over is not None and status.state == "failed" and status.items_open > 0
        if status.state in _LIVE or in_flight:
            stopping.append(name)
    effects: list[Effect] = [CancelSteps(steps=tuple(stopping))] if stopping else []
    if run_state(statuses) == "running":
        for name, status in statuses.items():
            if status.state not in STEP_FINISHED:
                out[name] = replace(status, state="cancelled")
        effects.append(RunEnded(state="cancelled"))
    return out, effects


def resume(
    shapes: Sequence[StepShape],
    statuses: Mapping[str, StepStatus],
    *,
    failed_items: Mapping[str, Sequence[int]] | None = None,
) -> Transition:
    """Run a failed run's failed steps again and let the ``upstream_failed`` ones wait for their parents anew.

    A failed step is released again (a mapped one: only its ``failed_items``); an ``upstream_failed`` step
    goes back to ``pending`` on its parents that have not succeeded. Attempts are kept; the run is
    ``running`` again. A run that is not ``failed`` is left as it is (no effects): the caller reports that.

    Args:
        shapes: the run's shapes.
        statuses: every step's status.
        failed_items: for each ``failed`` mapped step, the indices of its items whose latest job failed,
            went dead or was cancelled: as many as its ``items_failed``.

    Raises:
        ValueError: ``failed_items`` does not match the failed mapped steps.
    """
    graph = run_graph(tuple(shapes))
    out = graph.checked_copy(statuses)
    if run_state(statuses) != "failed":
        return out, []
    again = _items_again(graph, statuses, failed_items or {})
    effects: list[Effect] = []
    for name, shape in graph.shapes.items():
        status = statuses[name]
        if status.state == "failed":
            out[name] = replace(status, state="ready", items_failed=0, error=None)
            effects.append(Release(step=name, items=again.get(name)))
        elif status.state == "upstream_failed":
            left = sum(1 for parent in shape.parents if statuses[parent].state != "succeeded")
            known = shape.map_over is not None and statuses[shape.map_over].state == "succeeded"
            out[name] = replace(status, state="pending", parents_left=left, items=status.items if known else None)
    return out, effects


def _items_again(
    graph: RunGraph, statuses: Mapping[str, StepStatus], failed_items: Mapping[str, Sequence[int]]
) -> dict[str, tuple[int, ...]]:
    failed = {name for name, shape in graph.shapes.items() if shape.map_over and statuses[name].state == "failed"}
    if set(failed_items) != failed:
        raise ValueError(f"failed_items must name exactly the failed mapped steps {sorted(failed)}")
    again = {}
    for name in sorted(failed):
        status, indices = statuses[name], tuple(sorted(failed_items[name]))
        fits = all(0 <= index < (status.items or 0) for index in indices)
        if not fits or len(set(indices)) != len(indices) or len(indices) != status.items_failed:
            raise ValueError(
                f"step {name!r} has {status.items_failed} failed item(s) of {status.items}, got indices {indices}"
            )
        again[name] = indices
    return again
