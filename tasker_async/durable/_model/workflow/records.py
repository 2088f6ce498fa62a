"""Frozen records of workflow runs: run and step states, snapshots, and the events told to hooks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ..records import ErrorInfo

__all__ = (
    "RUN_FINISHED",
    "RUN_STATES",
    "STEP_FINISHED",
    "STEP_STATES",
    "RunEvent",
    "RunEventKind",
    "RunInfo",
    "RunState",
    "StepEvent",
    "StepEventKind",
    "StepInfo",
    "StepState",
)

RunState = Literal["running", "succeeded", "failed", "cancelled"]
"""A run's state: ``running`` until every step succeeded (``succeeded``), one failed for good (``failed``), or it
was cancelled (``cancelled``)."""
RUN_STATES: tuple[RunState, ...] = ("running", "succeeded", "failed", "cancelled")
"""Every ``RunState``, in the order a run goes through them."""
RUN_FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
"""The run states it leaves only by ``resume`` (``failed``) or never."""

StepState = Literal["pending", "ready", "running", "succeeded", "failed", "upstream_failed", "cancelled"]
"""A step's state: ``pending`` (waiting for parents), ``ready`` (its job is queued), ``running``, then
``succeeded``, ``failed``, ``upstream_failed`` (a step it depends on failed) or ``cancelled``."""
STEP_STATES: tuple[StepState, ...] = (
    "pending",
    "ready",
    "running",
    "succeeded",
    "failed",
    "upstream_failed",
    "cancelled",
)
"""Every ``StepState``, in the order a step goes through them."""
STEP_FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "upstream_failed", "cancelled"})
"""The step states a step leaves only by ``resume`` (``failed``, ``upstream_failed``) or never."""

StepEventKind = Literal["started", "succeeded", "failed", "cancelled"]
"""What a ``StepEvent`` tells: a step's job started, or the step ended so."""
RunEventKind = Literal["started", "succeeded", "failed", "cancelled"]
"""What a ``RunEvent`` tells: a run started (or was resumed), or it ended so."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepInfo:
    """A snapshot of one step of a run.

    Attributes:
        name: the step's name.
        state: ``pending``, ``ready``, ``running``, ``succeeded``, ``failed``, ``upstream_failed`` or
            ``cancelled``.
        attempts: how many times its job was started (for a mapped step: its items' jobs, all together).
        error: for a ``failed`` step, what it raised.
        items: for a mapped step, how many items it runs for, once its parent's list is known.
        started_at: when it first started (seconds since the epoch), if it did.
        finished_at: when it finished, if it did.
        parents: the steps it depends on, in definition order (the run's graph, for whoever draws it).
        map_over: the parent whose list it maps over, if it is a mapped step.
    """

    name: str
    state: StepState
    attempts: int
    error: ErrorInfo | None = None
    items: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    parents: tuple[str, ...] = ()
    map_over: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """A snapshot of one workflow run.

    Attributes:
        id: the run's id.
        workflow: its workflow's name.
        state: ``running``, ``succeeded``, ``failed`` or ``cancelled``.
        steps: every step of the workflow, by name, in definition order.
        key: its idempotency key, if any.
        created_at: when it was started (seconds since the epoch).
        finished_at: when it finished, if it did.
    """

    id: str
    workflow: str
    state: RunState
    steps: Mapping[str, StepInfo]
    key: str | None = None
    created_at: float
    finished_at: float | None = None

    @property
    def errors(self) -> dict[str, ErrorInfo]:
        """Each failed step's name to its error (what ``RunFailedError.steps`` holds)."""
        return {name: step.error for name, step in self.steps.items() if step.state == "failed" and step.error}


@dataclass(frozen=True, slots=True, kw_only=True)
class StepEvent:
    """A step event, told to the manager's hooks (the ``step.started``, ``step.completed`` family).

    Attributes:
        kind: ``started`` (its job started on this process), ``succeeded``, ``failed`` (for good) or
            ``cancelled``.
        run_id: the run's id.
        workflow: the workflow's name.
        step: the step's name.
        job_id: the id of the step's job (of the item's job, for a mapped step).
        item: for a mapped step, the index of the item this event is about; ``None`` otherwise.
        attempt: the job's delivery count at the event.
        at: when it happened (seconds since the epoch).
        error: for ``failed``, what the step raised.
    """

    kind: StepEventKind
    run_id: str
    workflow: str
    step: str
    job_id: str
    item: int | None = None
    attempt: int
    at: float
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEvent:
    """A run event, told to the manager's hooks.

    Attributes:
        kind: ``started`` (started or resumed), ``succeeded``, ``failed`` or ``cancelled``.
        run_id: the run's id.
        workflow: the workflow's name.
        at: when it happened (seconds since the epoch).
    """

    kind: RunEventKind
    run_id: str
    workflow: str
    at: float
