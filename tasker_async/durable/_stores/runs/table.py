"""``RunTable``: what a store whose atomic operation runs Python offers ``apply``'s glue (memory, SQLite, PostgreSQL).

Every method runs inside the store's atomic operation (one synchronous step, one transaction): the glue
reads, decides with the state machine, and writes through these, and the operation commits it all at once.
The methods are coroutines so that an engine with an async driver (asyncpg) awaits its queries; a table
over synchronous calls (memory, SQLite's connection in its thread) never suspends, and ``drive`` runs the
glue to its end in one synchronous step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ..._model.workflow.machine import StepStatus
from ..._model.workflow.records import RunEvent, RunState
from ..records import NewJob, NewRun, StepPlan, StepRef

__all__ = ("ItemState", "LiveJob", "RunRow", "RunTable", "StepTimes")

# What a store keeps of each item of a mapped step (and each element of a list some step maps over).
ItemState = Literal["queued", "succeeded", "failed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRow:
    """A stored run."""

    id: str
    workflow: str
    key: str | None
    state: RunState
    inputs: bytes
    steps: tuple[StepPlan, ...]
    created_at: float
    finished_at: float | None
    result_ttl: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StepTimes:
    """When a step first started and when it finished (each ``None`` until it did)."""

    started_at: float | None = None
    finished_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveJob:
    """An unfinished job of a run: what a snapshot of the run shows of it."""

    step: str
    running: bool
    deliveries: int
    started_at: float | None


class RunTable(Protocol):
    """A store's run rows, read and written inside its atomic operation."""

    async def run(self, run_id: str) -> RunRow | None:
        """The run, or None if unknown (or purged)."""
        ...

    async def run_of_key(self, key: str) -> RunRow | None:
        """The latest run started with ``key``, or None."""
        ...

    async def add_run(self, run: NewRun, now: float) -> None:
        """Store a new run, ``running``."""
        ...

    async def set_run(self, run_id: str, state: RunState, finished_at: float | None) -> None:
        """Set the run's state (and when it finished)."""
        ...

    async def statuses(self, run: RunRow) -> dict[str, StepStatus]:
        """Every step's status, by name (all of ``run.steps``)."""
        ...

    async def set_statuses(self, run_id: str, statuses: Mapping[str, StepStatus], now: float) -> None:
        """Write these steps' statuses; a step that becomes finished finishes at ``now``, one released again not."""
        ...

    async def times(self, run_id: str) -> dict[str, StepTimes]:
        """When each step that did first started and finished."""
        ...

    async def step_started(self, run_id: str, step: str, at: float) -> None:
        """Note that a job of ``step`` started at ``at`` (kept if the step has an earlier start already)."""
        ...

    async def set_result(self, run_id: str, step: str, result: bytes) -> None:
        """Keep the encoded result of a step that is not mapped."""
        ...

    async def result(self, run_id: str, step: str) -> bytes | None:
        """The kept result of a step that is not mapped."""
        ...

    async def set_items(self, run_id: str, step: str, items: Mapping[int, tuple[ItemState, bytes | None]]) -> None:
        """Write items of ``step``: a mapped step's item states and results, or a list's elements (``succeeded``)."""
        ...

    async def items(self, run_id: str, step: str) -> dict[int, tuple[ItemState, bytes | None]]:
        """Every item of ``step`` kept, by index."""
        ...

    async def enqueue_steps(self, jobs: Sequence[NewJob], now: float) -> None:
        """Enqueue released step jobs (each with its ``step``), ready now."""
        ...

    async def stop_jobs(self, run_id: str, steps: Sequence[str], now: float) -> list[tuple[StepRef, int]]:
        """End the queued jobs of ``steps`` ``cancelled`` and ask their running ones to stop.

        Returns the ref and delivery count of each job ended here: the glue reports those outcomes to the run.
        """
        ...

    async def live_jobs(self, run_id: str) -> list[LiveJob]:
        """The run's unfinished jobs."""
        ...

    async def told(self, event: RunEvent) -> None:
        """A run started (or was resumed) or ended.

        Once the operation commits, the store keeps the event for ``take_run_events``, and an end wakes the
        run's waiters.
        """
        ...
