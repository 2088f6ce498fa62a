"""The Starlette application: its routes, its lifespan (the sampler task) and the page's security headers."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..durable import Store, StoreUnavailableError
from ..errors import ConfigError
from . import _actions, _api
from ._history import History
from ._live import Dashboard
from ._stream import EventStream

__all__ = ("HISTORY_WINDOW", "SECURITY_HEADERS", "create_app", "stop_streams")

STATIC = Path(__file__).resolve().parent / "static"
HISTORY_WINDOW = 600.0  # seconds of depth the sparklines show

# The page loads nothing from elsewhere and runs no inline script; nobody may frame it (its buttons act).
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class _SecurityHeaders:
    """ASGI middleware: ``SECURITY_HEADERS`` on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


async def _unavailable(request: Request, exc: Exception) -> Response:
    # The store's outage is no bug of the dashboard: a 503 that says so, not a 500 with a traceback.
    return JSONResponse({"error": f"the store is unavailable: {exc}"}, status_code=503)


async def _index(request: Request) -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})


def _check(interval: float, token: str | None) -> float:
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not math.isfinite(interval):
        raise ConfigError(f"interval must be a finite number of seconds > 0, got {interval!r}")
    if interval <= 0:
        raise ConfigError(f"interval must be a finite number of seconds > 0, got {interval!r}")
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise ConfigError("token must be a non-empty string (or None for no token)")
    return float(interval)


def create_app(
    store: Store, *, allow_actions: bool = False, token: str | None = None, interval: float = 1.0
) -> Starlette:
    """Build the dashboard's application on ``store``, which the caller has entered and keeps open.

    Its lifespan runs the sampler: every ``interval`` seconds it reads the store, keeps the queues' counts
    for the sparklines (the last ten minutes) and sends the overview to each open page. Serve it with any
    ASGI server; when the server's shutdown begins, call ``stop_streams(app)`` so the open event streams
    end (servers wait for open responses before they end the lifespan).

    Args:
        store: an entered store (``async with open_store(url) as store``).
        allow_actions: offer requeue, cancel and resume (the page shows their buttons; the endpoints
            answer 403 otherwise).
        token: when set, actions need the header ``Authorization: Bearer TOKEN``.
        interval: seconds between two reads of the store.

    Raises:
        ConfigError: ``interval`` is not a finite number > 0, or ``token`` is empty.
    """
    seconds = _check(interval, token)
    history = History(window=HISTORY_WINDOW, capacity=300)
    dashboard = Dashboard(store, allow_actions=allow_actions, token=token, interval=seconds, history=history)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        dashboard.reset()
        await dashboard.sample()  # the first page opened has something to show, and the history its first point
        async with anyio.create_task_group() as group:
            group.start_soon(dashboard.sample_forever)
            try:
                yield
            finally:
                dashboard.stop()
                group.cancel_scope.cancel()

    routes = [
        Route("/", _index, methods=["GET"]),
        Route("/health", _api.health, methods=["GET"]),
        Route("/api/status", _api.status, methods=["GET"]),
        Route("/api/overview", _api.overview, methods=["GET"]),
        Route("/api/events", EventStream(dashboard), methods=["GET"]),
        Route("/api/jobs", _api.jobs, methods=["GET"]),
        Route("/api/jobs/{job_id}", _api.job, methods=["GET"]),
        Route("/api/jobs/{job_id}/requeue", _actions.requeue_job, methods=["POST"]),
        Route("/api/jobs/{job_id}/cancel", _actions.cancel_job, methods=["POST"]),
        Route("/api/runs", _api.runs, methods=["GET"]),
        Route("/api/runs/{run_id}", _api.run, methods=["GET"]),
        Route("/api/runs/{run_id}/cancel", _actions.cancel_run, methods=["POST"]),
        Route("/api/runs/{run_id}/resume", _actions.resume_run, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={StoreUnavailableError: _unavailable})
    app.add_middleware(_SecurityHeaders)
    app.state.dashboard = dashboard
    return app


def stop_streams(app: Starlette) -> None:
    """End the open event streams of an application ``create_app`` built (and any opened later).

    Call it when the server's shutdown begins: a server waits for its open responses to finish, and an
    event stream only finishes when its page goes or this is called.
    """
    dashboard: Dashboard = app.state.dashboard
    dashboard.stop()
