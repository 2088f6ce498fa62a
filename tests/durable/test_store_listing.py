"""The listing reads on every store: finished jobs by state and queue, recent runs by state, newest first."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from tasker_async.durable import Client, ErrorInfo, JobInfo, RunFailedError, Store, Workflow
from tasker_async.durable._stores.listing import MAX_LISTED
from tasker_async.durable._stores.records import Outcome

from ._doubles import Lab, serving
from .test_store_protocol import claim_one, new_job, succeeded

BOOM = ErrorInfo("mod.Boom", "boom", "Traceback (most recent call last):\n  ...\nmod.Boom: boom\n")


async def _finish(store: Store, state: str, *, queue: str = "default") -> str:
    """Enqueue one job of ``queue`` and end it in ``state``; its id."""
    await store.enqueue(job := new_job(queue=queue))
    if state == "cancelled":
        assert await store.cancel(job.id)
        return job.id
    claim = await claim_one(store, queues=(queue,))
    fail = Outcome(lease=claim.hold, state=state, error=BOOM)  # type: ignore[arg-type]
    outcome = succeeded(claim.hold) if state == "succeeded" else fail
    assert await store.complete([outcome]) == [True]
    return job.id


def _newest_first(jobs: list[JobInfo]) -> bool:
    keys = [(-(job.finished_at or 0.0), job.id) for job in jobs]
    return keys == sorted(keys)


async def test_finished_jobs_lists_the_asked_states_newest_first_with_their_errors(store: Store) -> None:
    ids = {state: [await _finish(store, state) for _ in range(2)] for state in ("succeeded", "failed", "dead")}
    ids["cancelled"] = [await _finish(store, "cancelled")]
    await store.enqueue(new_job())  # queued: never listed
    await store.enqueue(running := new_job())
    await claim_one(store)

    troubled = await store.finished_jobs(["failed", "dead"])
    assert {job.id for job in troubled} == {*ids["failed"], *ids["dead"]}
    assert _newest_first(troubled)
    assert all(job.error == BOOM and job.finished_at is not None for job in troubled)
    every = await store.finished_jobs(["succeeded", "failed", "cancelled", "dead"])
    assert {job.id for job in every} == {job_id for listed in ids.values() for job_id in listed}
    assert running.id not in {job.id for job in every}
    assert _newest_first(every)
    assert await store.finished_jobs(["succeeded", "failed", "cancelled", "dead"], limit=3) == every[:3]
    assert [job.state for job in await store.finished_jobs({"cancelled"})] == ["cancelled"]


async def test_finished_jobs_of_one_queue_leave_the_others_out(store: Store) -> None:
    mine = await _finish(store, "failed", queue="mail")
    await _finish(store, "failed", queue="images")
    listed = await store.finished_jobs(["failed"], queue="mail")
    assert [(job.id, job.queue) for job in listed] == [(mine, "mail")]
    assert await store.finished_jobs(["failed"], queue="nowhere") == []


async def test_a_requeued_dead_job_leaves_the_dead_list_and_a_purged_job_any_list(store: Store) -> None:
    dead = await _finish(store, "dead")
    assert [job.id for job in await store.finished_jobs(["dead"])] == [dead]
    assert await store.requeue_dead(dead)
    assert await store.finished_jobs(["dead"]) == []
    kept = await _finish(store, "succeeded", queue="kept")
    await store.enqueue(short := new_job(queue="short", result_ttl=0.0))
    assert await store.complete([succeeded((await claim_one(store, queues=("short",))).hold)]) == [True]
    assert {job.id for job in await store.finished_jobs(["succeeded"])} == {kept, short.id}
    await store.purge()
    assert [job.id for job in await store.finished_jobs(["succeeded"])] == [kept]


@pytest.mark.parametrize(
    ("states", "limit", "named"),
    [
        (["queued"], 10, "queued"),
        (["running", "dead"], 10, "running"),
        ("dead", 10, "string"),
        ([], 10, "none"),
        (["dead"], 0, "limit"),
        (["dead"], MAX_LISTED + 1, "limit"),
        (["dead"], True, "limit"),
    ],
)
async def test_finished_jobs_refuses_bad_input_naming_it(store: Store, states: Any, limit: Any, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        await store.finished_jobs(states, limit=limit)


def _flow(lab: Lab) -> Workflow:
    flow = Workflow("listing")

    @flow.step()
    async def numbers(resource: str, *, fail: bool) -> list[int]:
        if fail:
            raise RuntimeError("failed on purpose")
        return [1, 2]

    @flow.step(map_over=numbers)
    async def doubled(resource: str, *, numbers: int) -> int:
        return numbers * 2

    @flow.step(depends_on=[numbers, doubled])
    async def total(resource: str, *, doubled: list[int]) -> int:
        return sum(doubled)

    lab.registry.add_workflow(flow)
    return flow


async def test_recent_runs_lists_runs_by_state_newest_first_with_their_graph(store: Store) -> None:
    lab = Lab()
    flow = _flow(lab)
    async with Client(store) as client:
        waiting = await client.start(flow, fail=False)  # nobody serves it yet: it stays running
        cancelled = await client.start(flow, fail=False)
        assert await cancelled.cancel()
        async with serving(store, lab):
            done = await client.start(flow, fail=False)
            assert await done.result(timeout=10) == {"numbers": [1, 2], "doubled": [2, 4], "total": 6}
            failed = await client.start(flow, fail=True)
            with pytest.raises(RunFailedError):
                await failed.result(timeout=10)
            with anyio.fail_after(10):
                await waiting.result(timeout=10)

    every = await store.recent_runs()
    assert {run.id for run in every} == {waiting.id, cancelled.id, done.id, failed.id}
    keys = [(-run.created_at, run.id) for run in every]
    assert keys == sorted(keys)
    assert [run.id for run in await store.recent_runs(states=["failed"])] == [failed.id]
    assert {run.id for run in await store.recent_runs(states=["succeeded", "cancelled"])} == {
        waiting.id,
        done.id,
        cancelled.id,
    }
    assert await store.recent_runs(limit=2) == every[:2]
    shown = next(run for run in every if run.id == done.id)
    graph = {name: (step.parents, step.map_over, step.state) for name, step in shown.steps.items()}
    assert graph == {
        "numbers": ((), None, "succeeded"),
        "doubled": (("numbers",), "numbers", "succeeded"),
        "total": (("numbers", "doubled"), None, "succeeded"),
    }
    failed_steps = next(run for run in every if run.id == failed.id).steps
    assert failed_steps["numbers"].error is not None
    assert failed_steps["total"].state == "upstream_failed"


@pytest.mark.parametrize(("states", "limit"), [(["done"], 10), ("failed", 10), ([], 10), (None, 0)])
async def test_recent_runs_refuses_bad_input_naming_it(store: Store, states: Any, limit: Any) -> None:
    with pytest.raises(ValueError, match=r"states|limit"):
        await store.recent_runs(states=states, limit=limit)
