"""The durable example: its FastAPI producer against a consumer of its worker module, in process and by the CLI.

The app is driven through httpx's ASGI transport with its lifespan entered by
hand (the transport does not run it); every wait polls the status endpoint
with a deadline.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from examples.durable import app as producer
from examples.durable import tasks
from tasker_async import AsyncManager
from tasker_async.durable import Consumer, SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
FINISHED = ("succeeded", "failed", "cancelled", "dead")


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan entered (store and client open), and an HTTP client on it."""
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        yield http


async def submit(http: httpx.AsyncClient, path: str, url: str) -> str:
    response = await http.post(path, json={"url": url})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


async def status(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await http.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def finished(http: httpx.AsyncClient, job_id: str, limit: float = 10.0) -> dict[str, Any]:
    """Poll the status endpoint until the job has finished."""
    with anyio.fail_after(limit):
        while (body := await status(http, job_id))["state"] not in FINISHED:  # noqa: ASYNC110 - over HTTP
            await anyio.sleep(0.01)
    return body


@pytest.fixture
def snapshots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "snapshots"
    monkeypatch.setenv("TASKER_SNAPSHOTS", str(folder))
    return folder


async def test_jobs_submitted_through_the_app_run_on_a_consumer_of_the_worker_module(
    tmp_path: Path, snapshots: Path
) -> None:
    db = tmp_path / "tasker.db"
    async with serving(producer.create_app(f"sqlite:///{db}")) as http:
        rendered = await submit(http, "/pages", "https://example.com/docs")
        saved = await submit(http, "/snapshots", "https://example.com/pricing")
        assert await submit(http, "/snapshots", "https://example.com/pricing") == saved  # key=: the same job
        dropped = await submit(http, "/pages", "https://example.com/never")
        assert (await http.delete(f"/jobs/{dropped}")).json() == {"cancelled": True}
        assert (await status(http, rendered))["state"] == "queued"  # no worker yet

        async with (
            SQLiteStore(db) as store,
            AsyncManager(tasks.config) as manager,
            Consumer(store, tasks.registry, manager) as consumer,
        ):
            render_done = await finished(http, rendered)
            snapshot_done = await finished(http, saved)

        assert render_done["state"] == "succeeded", render_done
        assert render_done["task"] == "pages.render"
        assert render_done["deliveries"] == 1
        assert render_done["consumer"] == consumer.id
        assert render_done["result"]["title"] == "docs"
        assert render_done["result"]["url"] == "https://example.com/docs"

        assert snapshot_done["state"] == "succeeded", snapshot_done
        written = Path(snapshot_done["result"])
        assert written == tasks.snapshot_path("https://example.com/pricing")
        assert written.parent == snapshots
        assert "the text of https://example.com/pricing" in await anyio.Path(written).read_text()
        left = [path.name async for path in anyio.Path(snapshots).iterdir()]
        assert left == [written.name]  # no partial file left behind

        assert (await status(http, dropped))["state"] == "cancelled"
        assert (await http.delete(f"/jobs/{rendered}")).json() == {"cancelled": False}  # it had finished
        missing = await http.get("/jobs/0123456789abcdef")
        assert missing.status_code == 404
        assert "0123456789abcdef" in missing.json()["detail"]


async def test_the_worker_command_runs_the_example_module_and_drains_on_sigterm(
    tmp_path: Path, snapshots: Path
) -> None:
    db = tmp_path / "tasker.db"
    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "tasker_async", "worker", "examples.durable.tasks", "--store", f"sqlite:///{db}"]
    async with serving(producer.create_app(f"sqlite:///{db}")) as http:
        with log.open("wb") as out:
            worker = await anyio.open_process(command, cwd=ROOT, env=dict(os.environ), stdout=out, stderr=out)
        try:
            job_id = await submit(http, "/snapshots", "https://example.com/about")
            done = await finished(http, job_id, limit=20.0)
            assert done["state"] == "succeeded", done
            assert f":{worker.pid}:" in done["consumer"]  # run by the worker process
            text = await anyio.Path(done["result"]).read_text()
            assert text.endswith("the text of https://example.com/about")
        finally:
            with anyio.CancelScope(shield=True):
                worker.send_signal(signal.SIGTERM)
                with anyio.move_on_after(15):
                    await worker.wait()
                if worker.returncode is None:
                    worker.kill()
                    await worker.wait()
                await worker.aclose()
    output = await anyio.Path(log).read_text()
    assert worker.returncode == 0, output
