"""The read endpoints: status, overview, jobs, runs and health, as JSON."""

from __future__ import annotations

from typing import cast

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..durable import JobState, RunState
from ._live import Dashboard
from ._params import job_query, run_query
from ._views import job_view, run_view

__all__ = ("dashboard_of", "failure", "health", "job", "jobs", "overview", "run", "runs", "status")


def dashboard_of(request: Request) -> Dashboard:
    """The dashboard the application serves."""
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


def failure(status_code: int, message: str) -> JSONResponse:
    """An error answer: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status_code)


async def status(request: Request) -> JSONResponse:
    """``GET /api/status``: the document ``python -m tasker_async status --json`` prints."""
    return JSONResponse(await dashboard_of(request).read_status())


async def overview(request: Request) -> JSONResponse:
    """``GET /api/overview``: what the page shows, read now (the history as the sampler keeps it)."""
    return JSONResponse(await dashboard_of(request).read_overview())


async def jobs(request: Request) -> JSONResponse:
    """``GET /api/jobs?states=failed,dead&queue=Q&limit=N``: finished jobs, newest first."""
    store = dashboard_of(request).store
    try:
        query = job_query(request.query_params)
        # Passed as they came: the store checks them, and its ValueError names what is wrong.
        states = cast("list[JobState]", list(query.states))
        listed = await store.finished_jobs(states, queue=query.queue, limit=query.limit)
    except ValueError as exc:
        return failure(400, str(exc))
    return JSONResponse({"jobs": [job_view(job) for job in listed]})


async def job(request: Request) -> JSONResponse:
    """``GET /api/jobs/{id}``: one job, whatever its state."""
    job_id = request.path_params["job_id"]
    info = await dashboard_of(request).store.info(job_id)
    if info is None:
        return failure(404, f"no job {job_id!r} in the store")
    return JSONResponse(job_view(info))


async def runs(request: Request) -> JSONResponse:
    """``GET /api/runs?states=running,failed&limit=N``: workflow runs, newest first, each with its graph."""
    store = dashboard_of(request).store
    try:
        query = run_query(request.query_params)
        states = cast("list[RunState]", list(query.states)) if query.states else None
        listed = await store.recent_runs(states=states, limit=query.limit)
    except ValueError as exc:
        return failure(400, str(exc))
    return JSONResponse({"runs": [run_view(run) for run in listed]})


async def run(request: Request) -> JSONResponse:
    """``GET /api/runs/{id}``: one run with its steps and its graph laid out."""
    run_id = request.path_params["run_id"]
    info = await dashboard_of(request).store.run_info(run_id)
    if info is None:
        return failure(404, f"no workflow run {run_id!r} in the store")
    return JSONResponse(run_view(info))


async def health(request: Request) -> JSONResponse:
    """``GET /health``: 200 ``{"status": "ok"}`` while the store answers, else 503 with why."""
    problem = await dashboard_of(request).health()
    if problem is None:
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "store unreachable", "error": problem}, status_code=503)
