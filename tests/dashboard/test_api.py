"""The JSON API: status as the status command prints it, the overview, listings, single jobs and runs, health."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tasker_async.dashboard import create_app
from tasker_async.durable import Client, MemoryStore, SQLiteStore, Store, Workflow
from tasker_async.errors import ConfigError

from ..durable._doubles import OutageStore
from . import _seed
from ._client import served
from ._server import ROOT


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with MemoryStore() as memory:
        yield memory


async def status_command(url: str) -> dict[str, Any]:
    """``python -m tasker_async status --store URL --json``, parsed."""
    command = [sys.executable, "-m", "tasker_async", "status", "--store", url, "--json"]
    done = await anyio.run_process(command, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr.decode()
    document: dict[str, Any] = json.loads(done.stdout)
    return document


async def test_api_status_and_the_status_command_agree_on_the_same_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "tasker.db"
    async with SQLiteStore(db) as store, Client(store) as client:
        await _seed.queued(client, 3)
        await _seed.queued(client, 2, priority=True)
        await _seed.queued(client, 1, delay=3600)
        await _seed.dead(store, client, 2)
        await _seed.heartbeat(store, "worker-a", host="web-1", pid=4242, capacity=8, running=3)
        async with served(store) as http:
            response = await http.get("/api/status")
        command = await status_command(f"sqlite:///{db}")
    assert response.status_code == 200
    api = response.json()
    assert api["queues"] == command["queues"]
    assert api["queues"]["mail"] == {"ready_priority": 2, "ready_main": 3, "delayed": 1, "running": 0, "dead": 0}
    assert api["queues"]["images"]["dead"] == 2
    # Read a moment apart: the heartbeat ages differ by that moment, everything else is the same.
    pairs = zip(api["consumers"], command["consumers"], strict=True)
    ages = [(ours.pop("heartbeat_age"), theirs.pop("heartbeat_age")) for ours, theirs in pairs]
    assert api["consumers"] == command["consumers"]
    assert [consumer["id"] for consumer in api["consumers"]] == ["worker-a"]
    assert all(abs(ours - theirs) < 5.0 for ours, theirs in ages)


async def test_the_overview_holds_the_status_the_history_the_job_lists_the_runs_and_the_actions(store: Store) -> None:
    async with Client(store) as client:
        await _seed.queued(client, 2)
        dead = await _seed.dead(store, client, 1)
        failed = await _seed.reports(store, client, ["2026-11-30"])
        async with served(store, allow_actions=True, token="s3cret") as http:
            overview = (await http.get("/api/overview")).json()
    assert set(overview) == {"at", "status", "history", "jobs", "runs", "actions", "error"}
    assert overview["status"]["queues"]["mail"]["ready_main"] == 2
    assert overview["actions"] == {"allowed": True, "token": True}
    assert overview["error"] is None
    assert [job["id"] for job in overview["jobs"]["dead"]] == dead
    assert [job["id"] for job in overview["jobs"]["failed"]] == failed
    assert {job["id"] for job in overview["jobs"]["recent"]} == {*dead, *failed}
    error = overview["jobs"]["failed"][0]["error"]
    assert error["type"] == "tests.dashboard._seed.ReportError"
    assert error["message"] == "no sales ledger for 2026-11-30"
    assert "KeyError: '2026-11-30'" in error["traceback"]
    assert overview["runs"] == []
    # The application's startup read the store once.
    assert len(overview["history"]["at"]) >= 1
    assert overview["history"]["queues"]["mail"]["ready_main"][-1] == 2


async def test_jobs_are_listed_by_state_and_queue_newest_first(store: Store) -> None:
    async with Client(store) as client:
        dead = await _seed.dead(store, client, 2)
        failed = await _seed.reports(store, client, ["2026-11-30", "bad-day"])
        async with served(store) as http:
            both = (await http.get("/api/jobs", params={"states": "failed,dead"})).json()["jobs"]
            only_dead = (await http.get("/api/jobs", params={"states": "dead", "limit": "1"})).json()["jobs"]
            reports = (await http.get("/api/jobs", params={"queue": "reports"})).json()["jobs"]
            none = (await http.get("/api/jobs", params={"queue": "nowhere"})).json()["jobs"]
    assert {job["id"] for job in both} == {*dead, *failed}
    finished = [job["finished_at"] for job in both]
    assert finished == sorted(finished, reverse=True)
    assert len(only_dead) == 1
    assert only_dead[0]["id"] in dead
    assert {job["id"] for job in reports} == set(failed)
    assert none == []


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"states": "queued"}, "states"),
        ({"states": ","}, "states"),
        ({"limit": "many"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"queue": ""}, "queue"),
        ({"state": "dead"}, "'state'"),
    ],
)
async def test_a_bad_job_query_parameter_is_a_400_naming_it(store: Store, query: dict[str, str], named: str) -> None:
    async with served(store) as http:
        response = await http.get("/api/jobs", params=query)
    assert response.status_code == 400
    assert named in response.json()["error"]


@pytest.mark.parametrize(("query", "named"), [({"states": "done"}, "states"), ({"limit": "-1"}, "limit")])
async def test_a_bad_run_query_parameter_is_a_400_naming_it(store: Store, query: dict[str, str], named: str) -> None:
    async with served(store) as http:
        response = await http.get("/api/runs", params=query)
    assert response.status_code == 400
    assert named in response.json()["error"]


def flow() -> Workflow:
    flow = Workflow("pipeline")

    @flow.step()
    async def fetch(resource: object) -> list[int]:
        return [1, 2, 3]

    @flow.step(map_over=fetch)
    async def square(resource: object, *, fetch: int) -> int:
        return fetch * fetch

    @flow.step(depends_on=[square])
    async def total(resource: object, *, square: list[int]) -> int:
        return sum(square)

    return flow


async def test_a_job_and_a_run_by_id_and_the_runs_with_their_graph(store: Store) -> None:
    pipeline = flow()
    async with Client(store) as client:
        [job_id] = await _seed.queued(client, 1)
        run = await client.start(pipeline)
        async with served(store) as http:
            job = await http.get(f"/api/jobs/{job_id}")
            one = await http.get(f"/api/runs/{run.id}")
            runs = await http.get("/api/runs", params={"states": "running"})
            finished = await http.get("/api/runs", params={"states": "succeeded,failed"})
            unknown_job = await http.get("/api/jobs/nope")
            unknown_run = await http.get("/api/runs/nope")
    assert job.status_code == 200
    assert {"id": job_id, "state": "queued", "queue": "mail", "name": "mail.send"}.items() <= job.json().items()
    document = one.json()
    assert {"id": run.id, "workflow": "pipeline", "state": "running"}.items() <= document.items()
    steps = {step["name"]: step for step in document["steps"]}
    assert [step["name"] for step in document["steps"]] == ["fetch", "square", "total"]
    assert steps["fetch"]["state"] == "ready"
    assert steps["square"] == {**steps["square"], "state": "pending", "parents": ["fetch"], "map_over": "fetch"}
    assert [(node["name"], node["layer"]) for node in document["graph"]["nodes"]] == [
        ("fetch", 0),
        ("square", 1),
        ("total", 2),
    ]
    assert [(edge["from"], edge["to"]) for edge in document["graph"]["edges"]] == [
        ("fetch", "square"),
        ("square", "total"),
    ]
    assert [listed["id"] for listed in runs.json()["runs"]] == [run.id]
    assert finished.json() == {"runs": []}
    assert (unknown_job.status_code, unknown_run.status_code) == (404, 404)
    assert "nope" in unknown_job.json()["error"]


async def test_health_is_200_while_the_store_answers_and_503_when_it_does_not(store: Store) -> None:
    outage = OutageStore(store)
    async with served(outage, interval=0.05) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        outage.down = True
        down = await http.get("/health")
        overview = await http.get("/api/overview")
        outage.down = False
        again = await http.get("/health")
    assert down.status_code == 503
    assert down.json()["status"] == "store unreachable"
    assert "StoreUnavailableError" in down.json()["error"]
    assert overview.status_code == 503  # an endpoint that reads the store says it cannot
    assert overview.json()["error"].startswith("the store is unavailable: the engine is down")
    assert again.json() == {"status": "ok"}


async def test_the_sampler_publishes_the_store_s_outage_and_carries_on(store: Store) -> None:
    outage = OutageStore(store)
    app = create_app(outage, interval=0.02)
    dashboard = app.state.dashboard
    async with app.router.lifespan_context(app):
        await _seed.wait_for(lambda: _published(dashboard, error=False))
        outage.down = True
        await _seed.wait_for(lambda: _published(dashboard, error=True))
        failed = dashboard.latest.document
        outage.down = False
        await _seed.wait_for(lambda: _published(dashboard, error=False))
    assert "the engine is down" in failed["error"]
    assert failed["status"] == {"queues": {}, "consumers": []}


async def _published(dashboard: Any, *, error: bool) -> bool:
    latest = dashboard.latest
    return latest is not None and (latest.document["error"] is not None) == error


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"interval": 0}, "interval"),
        ({"interval": float("nan")}, "interval"),
        ({"interval": True}, "interval"),
        ({"token": ""}, "token"),
    ],
)
def test_create_app_refuses_bad_options(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        create_app(MemoryStore(), **options)


async def test_the_page_and_its_assets_are_served_with_a_strict_content_policy(store: Store) -> None:
    async with served(store) as http:
        page = await http.get("/")
        script = await http.get("/static/dashboard.js")
        sheet = await http.get("/static/dashboard.css")
    assert page.status_code == script.status_code == sheet.status_code == 200
    assert 'src="static/dashboard.js"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert script.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    # Nothing fetched from elsewhere: no absolute URL in the page's files.
    for text in (page.text, script.text, sheet.text):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text
