"""Actions: off unless allowed (403), the token when set (401), no cross-site form (415), 404, 409, and done."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tasker_async.durable import Client, MemoryStore, Registry, RunFailedError, Store, Workflow

from . import _seed
from ._client import served

JSON = {"content-type": "application/json"}


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with MemoryStore() as memory:
        yield memory


async def test_actions_are_403_unless_allowed_whatever_the_request(store: Store) -> None:
    async with Client(store) as client:
        [dead] = await _seed.dead(store, client, 1)
        async with served(store, token="s3cret") as http:
            answers = [
                await http.post(f"/api/jobs/{dead}/requeue", headers=JSON),
                await http.post(f"/api/jobs/{dead}/requeue", headers={"authorization": "Bearer s3cret", **JSON}),
                await http.post(f"/api/jobs/{dead}/cancel", headers=JSON),
                await http.post("/api/runs/any/cancel", headers=JSON),
                await http.post("/api/runs/any/resume", headers=JSON),
            ]
        info = await store.info(dead)
    assert [answer.status_code for answer in answers] == [403] * 5
    assert "--allow-actions" in answers[0].json()["error"]
    assert info is not None
    assert info.state == "dead"


async def test_with_a_token_an_action_needs_it_in_the_authorization_header(store: Store) -> None:
    async with Client(store) as client:
        [dead] = await _seed.dead(store, client, 1)
        async with served(store, allow_actions=True, token="s3cret") as http:
            path = f"/api/jobs/{dead}/requeue"
            missing = await http.post(path, headers=JSON)
            wrong = await http.post(path, headers={"authorization": "Bearer guess", **JSON})
            bare = await http.post(path, headers={"authorization": "s3cret", **JSON})
            assert (await store.info(dead)).state == "dead"  # type: ignore[union-attr]
            right = await http.post(path, headers={"authorization": "Bearer s3cret"})  # no JSON needed then
    assert [missing.status_code, wrong.status_code, bare.status_code] == [401, 401, 401]
    assert "Authorization: Bearer" in missing.json()["error"]
    assert right.status_code == 200
    assert right.json()["job"]["state"] == "queued"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "multipart/form-data; boundary=x"},
        {"content-type": "text/plain"},
    ],
)
async def test_without_a_token_an_action_needs_a_json_content_type(store: Store, headers: dict[str, str]) -> None:
    async with Client(store) as client:
        [dead] = await _seed.dead(store, client, 1)
        async with served(store, allow_actions=True) as http:
            refused = await http.post(f"/api/jobs/{dead}/requeue", headers=headers, content=b"a=b")
            still = await store.info(dead)
            done = await http.post(
                f"/api/jobs/{dead}/requeue", headers={"content-type": "application/json; charset=utf-8"}
            )
    assert refused.status_code == 415
    assert "application/json" in refused.json()["error"]
    assert still is not None
    assert still.state == "dead"
    assert done.status_code == 200


async def test_requeue_gives_a_dead_job_another_round_and_is_409_for_any_other_job(store: Store) -> None:
    async with Client(store) as client:
        [dead] = await _seed.dead(store, client, 1)
        [waiting] = await _seed.queued(client, 1)
        async with served(store, allow_actions=True) as http:
            first = await http.post(f"/api/jobs/{dead}/requeue", headers=JSON)
            again = await http.post(f"/api/jobs/{dead}/requeue", headers=JSON)
            queued = await http.post(f"/api/jobs/{waiting}/requeue", headers=JSON)
            unknown = await http.post("/api/jobs/nope/requeue", headers=JSON)
            listed = (await http.get("/api/jobs", params={"states": "dead"})).json()["jobs"]
            as_get = await http.get(f"/api/jobs/{dead}/requeue")
    assert first.status_code == 200
    assert {"id": dead, "state": "queued", "deliveries": 0}.items() <= first.json()["job"].items()
    assert (again.status_code, queued.status_code, unknown.status_code) == (409, 409, 404)
    assert "not dead" in again.json()["error"]
    assert listed == []
    assert as_get.status_code == 405  # actions are POST only


async def test_cancel_ends_a_queued_job_and_is_409_for_a_finished_one(store: Store) -> None:
    async with Client(store) as client:
        [waiting] = await _seed.queued(client, 1)
        async with served(store, allow_actions=True) as http:
            first = await http.post(f"/api/jobs/{waiting}/cancel", headers=JSON)
            again = await http.post(f"/api/jobs/{waiting}/cancel", headers=JSON)
            unknown = await http.post("/api/jobs/nope/cancel", headers=JSON)
    assert first.status_code == 200
    assert first.json()["job"]["state"] == "cancelled"
    assert again.status_code == 409
    assert "cancelled" in again.json()["error"]
    assert unknown.status_code == 404


def failing_flow() -> Workflow:
    flow = Workflow("flaky", queue="flows")

    @flow.step()
    async def first(resource: object, *, fail: bool) -> int:
        if fail:
            raise RuntimeError("failed on purpose")
        return 1

    @flow.step(depends_on=[first])
    async def second(resource: object, *, first: int) -> int:
        return first + 1

    return flow


async def test_cancel_a_running_run_resume_a_failed_one_and_409_otherwise(store: Store) -> None:
    flow = failing_flow()
    registry = Registry()
    registry.add_workflow(flow)
    async with Client(store) as client:
        waiting = await client.start(flow, fail=False)
        async with served(store, allow_actions=True) as http:
            cancelled = await http.post(f"/api/runs/{waiting.id}/cancel", headers=JSON)
            again = await http.post(f"/api/runs/{waiting.id}/cancel", headers=JSON)
            not_failed = await http.post(f"/api/runs/{waiting.id}/resume", headers=JSON)
            failed = await client.start(flow, fail=True)
            async with _seed.consumer(store, ["flows"], reg=registry):
                with pytest.raises(RunFailedError):
                    await failed.result(timeout=_seed.DEADLINE)
            resumed = await http.post(f"/api/runs/{failed.id}/resume", headers=JSON)
            unknown = [
                await http.post("/api/runs/nope/cancel", headers=JSON),
                await http.post("/api/runs/nope/resume", headers=JSON),
            ]
    assert cancelled.status_code == 200
    assert cancelled.json()["run"]["state"] == "cancelled"
    assert (again.status_code, not_failed.status_code) == (409, 409)
    assert "cancelled" in again.json()["error"]
    assert resumed.status_code == 200
    assert resumed.json()["run"]["state"] == "running"
    assert [answer.status_code for answer in unknown] == [404, 404]
