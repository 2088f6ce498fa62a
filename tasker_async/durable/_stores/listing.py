"""What the listing reads (``finished_jobs``, ``recent_runs``) share on every engine: their checks and order."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from .._model.records import FINISHED, JobInfo, JobState
from .._model.workflow.records import RUN_STATES, RunInfo, RunState

__all__ = ("MAX_LISTED", "check_finished_states", "check_limit", "check_run_states", "newest_jobs", "newest_runs")

# The most a listing returns at once: a page an operator reads, not an export.
MAX_LISTED = 1000


def check_limit(limit: int) -> int:
    """``limit`` if it is a whole number from 1 to ``MAX_LISTED``.

    Raises:
        ValueError: it is not.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LISTED:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_LISTED}, got {limit!r}")
    return limit


def check_finished_states(states: Collection[JobState]) -> tuple[JobState, ...]:
    """``states`` sorted, if each is a finished job state (and there is one at least).

    Raises:
        ValueError: one is not a finished state, or there is none (a bare string is refused too).
    """
    if isinstance(states, str):
        raise ValueError(f"states must be a collection of job states, not the string {states!r}")
    wrong = sorted(str(state) for state in states if state not in FINISHED)
    if wrong or not states:
        allowed = ", ".join(sorted(FINISHED))
        raise ValueError(f"states must be finished job states ({allowed}); got {wrong or 'none'}")
    return tuple(sorted(set(states)))


def check_run_states(states: Collection[RunState] | None) -> tuple[RunState, ...]:
    """``states`` sorted (every run state for None), if each is a run state.

    Raises:
        ValueError: one is not a run state, or ``states`` is empty or a bare string.
    """
    if states is None:
        return RUN_STATES
    if isinstance(states, str):
        raise ValueError(f"states must be a collection of run states, not the string {states!r}")
    wrong = sorted(str(state) for state in states if state not in RUN_STATES)
    if wrong or not states:
        raise ValueError(f"states must be run states ({', '.join(RUN_STATES)}); got {wrong or 'none'}")
    return tuple(sorted(set(states)))


def newest_jobs(jobs: Iterable[JobInfo], limit: int) -> list[JobInfo]:
    """The order ``finished_jobs`` promises: newest ``finished_at`` first, then id; ``limit`` at most."""
    return sorted(jobs, key=lambda job: (-(job.finished_at or 0.0), job.id))[:limit]


def newest_runs(runs: Iterable[RunInfo], limit: int) -> list[RunInfo]:
    """The order ``recent_runs`` promises: newest ``created_at`` first, then id; ``limit`` at most."""
    return sorted(runs, key=lambda run: (-run.created_at, run.id))[:limit]
