"""The action endpoints: requeue a dead job, cancel a job, cancel or resume a run. POST only, and guarded.

Every action goes through ``guard`` first: 403 while the dashboard was not started with actions allowed,
401 without the right token (when one is set), 415 without a JSON content type or an Authorization header.
That last rule is what keeps another site from acting through a visitor's browser: a cross-site HTML
form can only send urlencoded, multipart or text/plain bodies and no custom header, and a script on
another origin that sets ``Content-Type: application/json`` or ``Authorization`` needs a CORS preflight,
which this application never grants; so a request that carries either came from the page itself or from
a program, not from a page of another site.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

from ._api import dashboard_of, failure
from ._live import Dashboard
from ._views import job_view, run_view

__all__ = ("cancel_job", "cancel_run", "guard", "requeue_job", "resume_run")

Action = Callable[[Dashboard, str], Awaitable[JSONResponse]]


def guard(dashboard: Dashboard, headers: dict[str, str]) -> JSONResponse | None:
    """The refusal of an action request with these headers (lower-case names), or None to let it through."""
    if not dashboard.allow_actions:
        return failure(403, "actions are off: start the dashboard with --allow-actions")
    authorization = headers.get("authorization")
    if dashboard.token is not None:
        expected = f"Bearer {dashboard.token}".encode()
        # compare_digest: how long the comparison takes tells nothing of the token.
        if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
            return failure(401, "this action needs the header Authorization: Bearer TOKEN (the dashboard's token)")
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and authorization is None:
        return failure(415, "an action needs Content-Type: application/json (or an Authorization header)")
    return None


def _endpoint(action: Action, key: str) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        dashboard = dashboard_of(request)
        refused = guard(dashboard, dict(request.headers))
        if refused is not None:
            return refused
        return await action(dashboard, request.path_params[key])

    endpoint.__name__ = action.__name__
    endpoint.__doc__ = action.__doc__
    return endpoint


async def _requeue(dashboard: Dashboard, job_id: str) -> JSONResponse:
    """``POST /api/jobs/{id}/requeue``: give a dead job another round."""
    store = dashboard.store
    info = await store.info(job_id)
    if info is None:
        return failure(404, f"no job {job_id!r} in the store")
    if not await store.requeue_dead(job_id):
        if info.state == "dead":  # a workflow step's job: only its run's resume runs it again
            return failure(409, f"job {job_id!r} is a workflow step's: resume its run instead")
        return failure(409, f"job {job_id!r} is {info.state}, not dead: only a dead job is requeued")
    after = await store.info(job_id)
    return JSONResponse({"job": job_view(after or info)})


async def _cancel_job(dashboard: Dashboard, job_id: str) -> JSONResponse:
    """``POST /api/jobs/{id}/cancel``: cancel a queued or delayed job; ask a running one's consumer to."""
    store = dashboard.store
    info = await store.info(job_id)
    if info is None:
        return failure(404, f"no job {job_id!r} in the store")
    if not await store.cancel(job_id):
        now = await store.info(job_id)
        return failure(409, f"job {job_id!r} is {(now or info).state}: it has finished, there is nothing to cancel")
    after = await store.info(job_id)
    return JSONResponse({"job": job_view(after or info)})


async def _cancel_run(dashboard: Dashboard, run_id: str) -> JSONResponse:
    """``POST /api/runs/{id}/cancel``: cancel a running run's pending and running steps."""
    store = dashboard.store
    info = await store.run_info(run_id)
    if info is None:
        return failure(404, f"no workflow run {run_id!r} in the store")
    if not await store.cancel_run(run_id):
        now = await store.run_info(run_id)
        return failure(409, f"run {run_id!r} is {(now or info).state}: only a running run is cancelled")
    after = await store.run_info(run_id)
    return JSONResponse({"run": run_view(after or info)})


async def _resume_run(dashboard: Dashboard, run_id: str) -> JSONResponse:
    """``POST /api/runs/{id}/resume``: run a failed run's failed steps again."""
    store = dashboard.store
    try:
        resumed = await store.resume_run(run_id)
    except LookupError:
        return failure(404, f"no workflow run {run_id!r} in the store")
    info = await store.run_info(run_id)
    if info is None:
        return failure(404, f"no workflow run {run_id!r} in the store")
    if not resumed:
        return failure(409, f"run {run_id!r} is {info.state}, not failed: only a failed run is resumed")
    return JSONResponse({"run": run_view(info)})


requeue_job = _endpoint(_requeue, "job_id")
cancel_job = _endpoint(_cancel_job, "job_id")
cancel_run = _endpoint(_cancel_run, "run_id")
resume_run = _endpoint(_resume_run, "run_id")
