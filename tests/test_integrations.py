"""The FastAPI and aiohttp examples under real servers on 127.0.0.1: traffic, observability, shutdown.

Every server listens on an ephemeral port of 127.0.0.1 only; every wait is on
a condition, bounded by ``anyio.fail_after``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import anyio
import httpx
import pytest
import uvicorn
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 15  # seconds any single wait may take


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (not a package) as ``example_<name>``."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # FastAPI and dataclasses look annotations up through it
    spec.loader.exec_module(module)
    return module


fastapi_app = load_example("fastapi_app")
aiohttp_app = load_example("aiohttp_app")


async def until(predicate: Callable[[], bool]) -> None:
    """Wait until ``predicate()`` holds, polling: the server runs on this loop too."""
    with anyio.fail_after(LIMIT):
        while not predicate():  # noqa: ASYNC110 - the states watched here have no event to wait on
            await asyncio.sleep(0.002)


@asynccontextmanager
async def uvicorn_serving(app: Any) -> AsyncIterator[tuple[uvicorn.Server, str]]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", ws="none")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started or serving.done())
        assert server.started, "the server did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield server, f"http://127.0.0.1:{port}"
    except BaseException:
        server.force_exit = True  # the test failed: do not wait for its requests
        raise
    finally:
        server.should_exit = True
        with anyio.fail_after(LIMIT):
            await serving


@asynccontextmanager
async def aiohttp_serving(app: web.Application) -> AsyncIterator[tuple[web.AppRunner, str]]:
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield runner, f"http://127.0.0.1:{port}"
    finally:
        if runner.server is not None:  # the test did not clean up itself
            with anyio.fail_after(LIMIT):
                await runner.cleanup()


def user_ids(count: int) -> list[int]:
    """Known users 1 to 4, and now and then one that does not exist (404)."""
    return [99 if n % 10 == 9 else n % 4 + 1 for n in range(count)]


def check_user(user_id: int, status: int, body: dict[str, Any], db: Any) -> None:
    if user_id == 99:
        assert (status, body) == (404, {"detail": "no user 99"})
    else:
        assert status == 200
        assert body["id"] == user_id
        assert body["name"] == db.users[user_id]
        assert 1 <= body["connection"] <= db.opened


def check_observability(stats: dict[str, Any], metrics_text: str, tasks: int) -> None:
    assert stats["stats"]["state"] == "running"
    assert stats["stats"]["base_workers"] == 4
    assert stats["stats"]["running_tasks"] == stats["stats"]["queued_tasks"] == 0
    assert stats["metrics"]["total_tasks_completed"] == tasks
    assert stats["metrics"]["total_tasks_failed"] == 0
    assert stats["metrics"]["success_rate"] == 1.0
    lines = set(metrics_text.splitlines())
    assert f'tasker_tasks_finished_total{{outcome="succeeded"}} {float(tasks)}' in lines
    assert "tasker_base_workers 4.0" in lines
    assert 'tasker_state{state="running"} 1.0' in lines
    assert f"tasker_task_run_duration_seconds_count {float(tasks)}" in lines


def check_closed(db: Any, manager: Any) -> None:
    assert db.opened >= 5  # four workers and the run_task spare, and any burst workers
    assert db.closed == db.opened
    stats = manager.stats()
    assert (stats.state, stats.active_workers, stats.available_resources) == ("stopped", 0, 0)


# -- FastAPI under uvicorn ---------------------------------------------------------------


async def test_fastapi_app_serves_concurrent_requests_then_closes_every_connection() -> None:
    db = fastapi_app.FakeDatabase()
    app = fastapi_app.create_app(db, workers=4)
    ids = user_ids(50)
    async with uvicorn_serving(app) as (_, url), httpx.AsyncClient(base_url=url, timeout=LIMIT) as client:
        responses = await asyncio.gather(*(client.get(f"/users/{i}") for i in ids), client.post("/report"))
        for user_id, response in zip(ids, responses, strict=False):
            check_user(user_id, response.status_code, response.json(), db)
        assert responses[-1].status_code == 200
        assert responses[-1].json()["users"] == 4
        stats = (await client.get("/stats")).json()
        metrics = await client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        check_observability(stats, metrics.text, tasks=51)
        ping = await client.get("/ping")
        assert ping.status_code == 200
        assert ping.json()["ok"] is True
    check_closed(db, app.state.tasker)


async def test_fastapi_shutdown_waits_for_requests_in_flight() -> None:
    db = fastapi_app.FakeDatabase()
    app = fastapi_app.create_app(db, workers=4)
    db.answering.clear()  # every query stalls until the test lets it through
    async with uvicorn_serving(app) as (server, url), httpx.AsyncClient(base_url=url, timeout=LIMIT) as client:
        manager = app.state.tasker
        requests = [asyncio.create_task(client.get(f"/users/{n % 4 + 1}")) for n in range(8)]
        await until(lambda: manager.metrics().total_tasks_arrived == 8)
        server.should_exit = True
        await until(lambda: not server.servers[0].is_serving())
        with pytest.raises(httpx.ConnectError):  # no new connection is accepted...
            async with httpx.AsyncClient(base_url=url) as late:
                await late.get("/ping")
        assert manager.stats().state == "running"  # ...but the manager serves the requests in flight
        assert not any(request.done() for request in requests)
        db.answering.set()
        responses = await asyncio.gather(*requests)
    assert [r.status_code for r in responses] == [200] * 8
    assert [r.json()["id"] for r in responses] == [n % 4 + 1 for n in range(8)]
    check_closed(db, manager)


# -- aiohttp under AppRunner -------------------------------------------------------------


async def test_aiohttp_app_serves_concurrent_requests_then_closes_every_connection() -> None:
    db = aiohttp_app.FakeDatabase()
    app = aiohttp_app.make_app(db, workers=4)
    ids = user_ids(50)
    async with aiohttp_serving(app) as (_, url), aiohttp.ClientSession(url) as session:

        async def get(path: str, method: str = "GET") -> tuple[int, Any]:
            async with session.request(method, path) as response:
                return response.status, await response.json()

        answers = await asyncio.gather(*(get(f"/users/{i}") for i in ids), get("/report", "POST"))
        for user_id, (status, body) in zip(ids, answers, strict=False):
            check_user(user_id, status, body, db)
        assert answers[-1][0] == 200
        assert answers[-1][1]["users"] == 4
        _, stats = await get("/stats")
        async with session.get("/metrics") as response:
            assert response.content_type == "text/plain"
            metrics_text = await response.text()
        check_observability(stats, metrics_text, tasks=51)
        assert (await get("/ping"))[1]["ok"] is True
        assert await get("/users/x") == (422, {"detail": "user_id must be an integer"})
    check_closed(db, app[aiohttp_app.MANAGER])


async def test_aiohttp_cleanup_waits_for_requests_in_flight() -> None:
    db = aiohttp_app.FakeDatabase()
    app = aiohttp_app.make_app(db, workers=4)
    db.answering.clear()
    async with aiohttp_serving(app) as (runner, url), aiohttp.ClientSession(url) as session:
        manager = app[aiohttp_app.MANAGER]

        async def get(path: str) -> tuple[int, Any]:
            async with session.get(path) as response:
                return response.status, await response.json()

        requests = [asyncio.create_task(get(f"/users/{n % 4 + 1}")) for n in range(8)]
        await until(lambda: manager.metrics().total_tasks_arrived == 8)
        cleanup = asyncio.create_task(runner.cleanup())
        await until(lambda: not runner.sites)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession(url) as late, late.get("/ping"):
                pass
        assert manager.stats().state == "running"
        assert not any(request.done() for request in requests)
        db.answering.set()
        answers = await asyncio.gather(*requests)
        with anyio.fail_after(LIMIT):
            await cleanup
    assert [status for status, _ in answers] == [200] * 8
    assert [body["id"] for _, body in answers] == [n % 4 + 1 for n in range(8)]
    check_closed(db, manager)


# -- the scripts themselves ----------------------------------------------------------------


def free_port() -> str:
    """A port of 127.0.0.1 free a moment ago (aiohttp < 3.14 prints port 0 as 0, so it needs a real one)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return str(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("script", "listening"),
    [
        ("examples/fastapi_app.py", r"Uvicorn running on http://127\.0\.0\.1:(\d+)"),
        ("examples/aiohttp_app.py", r"Running on http://127\.0\.0\.1:(\d+)"),
    ],
)
async def test_example_script_serves_and_exits_cleanly_on_ctrl_c(script: str, listening: str) -> None:
    port = "0" if "fastapi" in script else free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-u", script, "--port", port, "--workers", "2",
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    seen: list[str] = []
    try:
        with anyio.fail_after(LIMIT):
            while not (found := re.search(listening, "".join(seen))):
                line = (await process.stdout.readline()).decode()
                assert line, "".join(seen)
                seen.append(line)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{found[1]}", timeout=LIMIT) as client:
            response = await client.get("/users/3")
        assert response.json() == {"id": 3, "name": "Grace Hopper", "connection": response.json()["connection"]}
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(LIMIT):
            rest, _ = await process.communicate()
        assert process.returncode == 0, "".join(seen) + rest.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_the_core_imports_no_web_framework() -> None:
    code = "import sys, tasker_async; print(sorted({'fastapi', 'starlette', 'aiohttp'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
