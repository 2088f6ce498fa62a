"""A live dashboard of a durable store: queues, consumers, jobs and workflow runs, in a browser.

Needs the ``dashboard`` extra (``pip install 'tasker-async[dashboard]'``: Starlette and uvicorn). Run it
with ``python -m tasker_async dashboard --store URL``, or serve the application yourself::

    async with open_store("sqlite:///tasker.db") as store:
        app = create_app(store, allow_actions=True, token="s3cret")
        ...  # serve `app` with any ASGI server; call stop_streams(app) when its shutdown begins

The page (``GET /``) updates itself from the event stream. The same data as JSON:

- ``GET /api/status``: the document of ``python -m tasker_async status --json``.
- ``GET /api/overview``: ``{"at", "status", "history", "jobs": {"recent", "failed", "dead"}, "runs",
  "actions": {"allowed", "token"}, "error"}``, what the page shows.
- ``GET /api/events``: server-sent events, an ``overview`` event (the overview's JSON) at once, then each interval.
- ``GET /api/jobs?states=failed,dead&queue=Q&limit=N``: finished jobs, newest first (default: every finished
  state, any queue, 50) as ``{"jobs": [...]}``; ``GET /api/jobs/{id}``: one job.
- ``GET /api/runs?states=running,failed&limit=N``: workflow runs, newest first, as ``{"runs": [...]}``, each with
  its steps and its graph laid out; ``GET /api/runs/{id}``: one run.
- ``POST /api/jobs/{id}/requeue`` (a dead job), ``POST /api/jobs/{id}/cancel``, ``POST /api/runs/{id}/cancel``,
  ``POST /api/runs/{id}/resume`` (a failed run): the actions, answering the job or run after it.
- ``GET /health``: 200 ``{"status": "ok"}`` while the store answers, 503 otherwise.

A bad query parameter answers 400, an unknown job or run 404, each with ``{"error": message}``. Actions
answer 403 unless the application allows them, 401 without the right ``Authorization: Bearer TOKEN``
(when a token is set), 415 without a JSON content type or an Authorization header (so that no form of
another site can trigger them), and 409 when the job or run is not in a state the action applies to.
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401 - checked here so the error names the extra
except ImportError as exc:  # pragma: no cover - exercised with the extra uninstalled
    raise ImportError(
        "tasker_async.dashboard needs Starlette: install the extra, pip install 'tasker-async[dashboard]'"
    ) from exc

from ._app import create_app, stop_streams

__all__ = ("create_app", "stop_streams")
