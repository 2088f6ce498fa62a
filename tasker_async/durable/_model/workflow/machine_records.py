"""The records of a run's state machine: step shapes and statuses, the effects a store carries out, the run state.

``machine`` holds the transitions and the contract every store implements; this module holds what they read
and return, and the read-only helpers a store needs around them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..records import ErrorInfo
from .graph import children_of, reachable
from .records import STEP_FINISHED, RunState, StepState

if TYPE_CHECKING:
    from .definition import Workflow

__all__ = (
    "CancelSteps",
    "Effect",
    "Release",
    "RunEnded",
    "RunGraph",
    "StepShape",
    "StepStatus",
    "Transition",
    "changed",
    "mapped_children",
    "run_graph",
    "run_state",
    "shapes_of",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepShape:
    """One step of a run as the state machine sees it; a store keeps a run's shapes from its start on.

    Attributes:
        name: the step's name.
        parents: its parents' names: it is released once all of them succeeded.
        map_over: the parent whose result list it runs once per item of, or ``None``.
    """

    name: str
    parents: tuple[str, ...] = ()
    map_over: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepStatus:
    """What a store persists of one step of a run (one row each); the transitions read and replace them.

    Attributes:
        state: the step's ``StepState``.
        parents_left: how many of its parents have not succeeded (yet).
        items: for a mapped step, how many item jobs it runs: the length of its ``map_over`` parent's result,
            known once that parent succeeded; ``None`` before, and always for a step that is not mapped.
        items_done: for a mapped step, how many of its item jobs succeeded.
        items_failed: for a mapped step, how many of its item jobs failed (or were cancelled) since it was
            last released: a resume sets it back to 0 as it runs those items again.
        attempts: how many times a job of it was started (each item's, for a mapped step).
        error: for a ``failed`` step, the first error of this round.
    """

    state: StepState
    parents_left: int = 0
    items: int | None = None
    items_done: int = 0
    items_failed: int = 0
    attempts: int = 0
    error: ErrorInfo | None = None

    @property
    def items_open(self) -> int:
        """For a mapped step that was released: its items neither done nor failed (queued or running)."""
        return (self.items or 0) - self.items_done - self.items_failed


@dataclass(frozen=True, slots=True, kw_only=True)
class Release:
    """Enqueue the jobs of a step that became ready.

    Attributes:
        step: the step's name.
        items: ``None``: one job for the step; otherwise one job per item index listed (a mapped step; the
            job of item ``i`` receives element ``i`` of the ``map_over`` parent's result).
    """

    step: str
    items: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSteps:
    """Cancel the queued jobs of these steps and ask their running jobs to stop.

    Attributes:
        steps: the steps' names, in definition order (may be empty).
    """

    steps: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEnded:
    """The run finished in this transition: emitted exactly once per round (from ``start`` or a resume to its end).

    Attributes:
        state: ``succeeded``, ``failed`` or ``cancelled``.
    """

    state: RunState


Effect = Release | CancelSteps | RunEnded
"""What a store carries out, in order, in the same atomic operation as the statuses it writes."""
Transition = tuple[dict[str, StepStatus], list[Effect]]
"""A transition's result: every step's new status (a new mapping), and the effects to carry out."""


@dataclass(frozen=True, slots=True)
class RunGraph:
    """A run's shapes by name, with each step's children: what the transitions walk.

    Attributes:
        shapes: the shapes by step name, in definition order.
        children: each step's children, in definition order.
    """

    shapes: Mapping[str, StepShape]
    children: Mapping[str, tuple[str, ...]]

    def checked_copy(self, statuses: Mapping[str, StepStatus]) -> dict[str, StepStatus]:
        """A new mapping of ``statuses``, once checked to hold exactly this graph's steps.

        Raises:
            ValueError: they name other steps.
        """
        if statuses.keys() != self.shapes.keys():
            raise ValueError(f"the statuses are of steps {sorted(statuses)}, the run's are {sorted(self.shapes)}")
        return dict(statuses)

    def descendants(self, name: str) -> tuple[str, ...]:
        """The steps that depend on ``name`` directly or not, in definition order (``name`` left out)."""
        found = reachable(self.children, name)
        return tuple(step for step in self.shapes if step in found)


@functools.lru_cache(maxsize=256)
def run_graph(shapes: tuple[StepShape, ...]) -> RunGraph:
    """The graph of a run's ``shapes`` (cached: a store calls a transition per job outcome with the same shapes).

    Raises:
        ValueError: no shapes, a name twice, a parent that is no step, or a ``map_over`` that is no parent.
    """
    by_name = {shape.name: shape for shape in shapes}
    if not shapes or len(by_name) != len(shapes):
        raise ValueError(f"a run needs steps with distinct names, got {[shape.name for shape in shapes]}")
    for shape in shapes:
        unknown = [parent for parent in shape.parents if parent not in by_name]
        if unknown or len(set(shape.parents)) != len(shape.parents):
            raise ValueError(f"step {shape.name!r} has unknown or repeated parents: {list(shape.parents)}")
        if shape.map_over is not None and shape.map_over not in shape.parents:
            raise ValueError(f"step {shape.name!r} maps over {shape.map_over!r}, which is not one of its parents")
    return RunGraph(by_name, children_of({name: shape.parents for name, shape in by_name.items()}))


def shapes_of(workflow: Workflow) -> tuple[StepShape, ...]:
    """A run's shapes from its ``workflow``, in definition order; a store keeps them with the run.

    Raises:
        WorkflowError: the workflow's definition is wrong.
    """
    workflow.validate()
    return tuple(
        StepShape(name=step.name, parents=step.depends_on, map_over=step.map_over) for step in workflow.steps.values()
    )


def run_state(statuses: Mapping[str, StepStatus]) -> RunState:
    """The run state its steps' statuses imply.

    ``running`` while a step is not finished; then ``succeeded`` if all succeeded, ``cancelled`` if one was
    cancelled (only a run cancel cancels steps), ``failed`` otherwise (a step failed, its descendants
    ``upstream_failed``).
    """
    states = {status.state for status in statuses.values()}
    if not states <= STEP_FINISHED:
        return "running"
    if states == {"succeeded"}:
        return "succeeded"
    return "cancelled" if "cancelled" in states else "failed"


def changed(before: Mapping[str, StepStatus], after: Mapping[str, StepStatus]) -> dict[str, StepStatus]:
    """The statuses of ``after`` that differ from ``before``: the rows a store writes after a transition."""
    return {name: status for name, status in after.items() if before.get(name) != status}


def mapped_children(shapes: Sequence[StepShape], step: str) -> tuple[str, ...]:
    """The children that map over ``step``: when there are any, its success must come with its result's length.

    Raises:
        KeyError: no step is named ``step``.
    """
    graph = run_graph(tuple(shapes))
    return tuple(child for child in graph.children[step] if graph.shapes[child].map_over == step)
