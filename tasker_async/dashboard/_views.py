"""The JSON shapes the API and the page share: jobs, runs (with their graph) and the overview. Pure functions."""

from __future__ import annotations

from typing import Any

from ..durable import ErrorInfo, JobInfo, RunInfo, StepInfo
from ._graph import layout

__all__ = ("error_view", "job_view", "overview", "run_view", "step_view")


def error_view(error: ErrorInfo | None) -> dict[str, str] | None:
    """``{"type", "message", "traceback"}``, or None."""
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "traceback": error.traceback}


def job_view(job: JobInfo) -> dict[str, Any]:
    """One job, every field of ``JobInfo``; ``error`` as ``error_view`` gives it."""
    return {
        "id": job.id,
        "name": job.name,
        "queue": job.queue,
        "state": job.state,
        "deliveries": job.deliveries,
        "priority": job.priority,
        "key": job.key,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "consumer": job.consumer,
        "error": error_view(job.error),
    }


def step_view(step: StepInfo) -> dict[str, Any]:
    """One step of a run: every field of ``StepInfo``."""
    return {
        "name": step.name,
        "state": step.state,
        "attempts": step.attempts,
        "items": step.items,
        "parents": list(step.parents),
        "map_over": step.map_over,
        "started_at": step.started_at,
        "finished_at": step.finished_at,
        "error": error_view(step.error),
    }


def run_view(run: RunInfo) -> dict[str, Any]:
    """One run: its fields, its steps in definition order, and its graph laid out (``_graph.layout``)."""
    return {
        "id": run.id,
        "workflow": run.workflow,
        "state": run.state,
        "key": run.key,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "steps": [step_view(step) for step in run.steps.values()],
        "graph": layout({name: step.parents for name, step in run.steps.items()}).as_dict(),
    }


def overview(
    *,
    at: float,
    status: dict[str, Any] | None,
    history: dict[str, Any],
    jobs: dict[str, list[JobInfo]],
    runs: list[RunInfo],
    actions: dict[str, bool],
    error: str | None = None,
) -> dict[str, Any]:
    """What the page shows, in one document (``GET /api/overview``, each ``overview`` event).

    Args:
        at: when the store was read (seconds since the epoch).
        status: the ``status --json`` document (None when the store could not be read).
        history: ``History.as_dict()``.
        jobs: the job lists by name (``recent``, ``failed``, ``dead``).
        runs: the recent runs.
        actions: ``{"allowed": ..., "token": ...}``: whether the page offers actions, and needs a token for them.
        error: why the store could not be read, if it could not.
    """
    return {
        "at": at,
        "status": status if status is not None else {"queues": {}, "consumers": []},
        "history": history,
        "jobs": {name: [job_view(job) for job in listed] for name, listed in jobs.items()},
        "runs": [run_view(run) for run in runs],
        "actions": actions,
        "error": error,
    }
