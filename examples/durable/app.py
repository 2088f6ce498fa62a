"""The producer of the durable example: a FastAPI app that submits jobs and reports on them.

It runs no task itself: it stores jobs, and worker processes (any number, on
this machine for SQLite) run them on their pages.

    POST   /pages       {"url": ..., "priority": false}  submit pages.render; answers 202 {"id": ...}
    POST   /snapshots   {"url": ...}                     submit pages.snapshot with key="snapshot:<url>":
                                                         asking again for the same URL returns the same job
    GET    /jobs/{id}   the job's state, deliveries, the worker that took it, and its result or error
    DELETE /jobs/{id}   cancel it: {"cancelled": true} unless it had finished

The store and the client open with the application and close with it.
``TASKER_STORE`` names the store (default ``sqlite:///tasker.db``).

Run, from the repository root, next to one or more workers:

    uvicorn examples.durable.app:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

from tasker_async.durable import Client, open_store

from .tasks import render, snapshot

__all__ = ("DEFAULT_STORE", "app", "create_app")

DEFAULT_STORE = "sqlite:///tasker.db"


class PageRequest(BaseModel):
    """What to render, and whether it jumps the queue."""

    url: str
    priority: bool = False


class SnapshotRequest(BaseModel):
    """What to save."""

    url: str


def get_client(request: Request) -> Client:
    """The application's client (opened by the lifespan)."""
    client: Client = request.app.state.client
    return client


ClientDep = Annotated[Client, Depends(get_client)]


def create_app(store_url: str | None = None) -> FastAPI:
    """The application, on ``store_url`` (default: ``$TASKER_STORE``, else ``sqlite:///tasker.db``)."""
    url = store_url or os.environ.get("TASKER_STORE", DEFAULT_STORE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_store(url) as store, Client(store) as client:
            app.state.client = client
            yield

    app = FastAPI(title="tasker_async durable example", lifespan=lifespan)

    @app.post("/pages", status_code=202)
    async def submit_render(body: PageRequest, client: ClientDep) -> dict[str, str]:
        job = await client.submit(render, body.url, priority=body.priority)
        return {"id": job.id}

    @app.post("/snapshots", status_code=202)
    async def submit_snapshot(body: SnapshotRequest, client: ClientDep) -> dict[str, str]:
        # The key makes the submission idempotent: while that job is unfinished, or finished
        # within its result_ttl, the same URL gets the same job back and nothing is added.
        job = await client.submit(snapshot, body.url, key=f"snapshot:{body.url}")
        return {"id": job.id}

    @app.get("/jobs/{job_id}")
    async def job_status(job_id: str, client: ClientDep) -> dict[str, Any]:
        job = client.job(job_id)
        try:
            info = await job.info()
        except LookupError:
            raise HTTPException(404, f"no job {job_id!r} (unknown, or purged after its result_ttl)") from None
        answer: dict[str, Any] = {
            "id": info.id,
            "task": info.name,
            "state": info.state,
            "deliveries": info.deliveries,
            "consumer": info.consumer,  # host:pid:tag of the worker that runs it, or ran it last
        }
        if info.state == "succeeded":
            answer["result"] = await job.result()
        elif info.error is not None:
            answer["error"] = {"type": info.error.type, "message": info.error.message}
        return answer

    @app.delete("/jobs/{job_id}")
    async def cancel_job(job_id: str, client: ClientDep) -> dict[str, bool]:
        return {"cancelled": await client.job(job_id).cancel()}

    return app


app = create_app()
