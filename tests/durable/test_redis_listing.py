"""The listing on RedisStore: every way a job finishes joins its index, leaving a state or purge leaves it.

The indexes are sorted sets (``<prefix>:ended:<state>:<queue>``, ``<prefix>:runs:in:<state>``) written by the
scripts that change jobs and runs; these tests look at them on the server too, where the conformance suite
(``test_store_listing.py``) sees the reads only.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

import pytest
from redis.asyncio import Redis

from tasker_async.durable import JobInfo, JobState, RedisStore
from tasker_async.durable._stores.records import NewRun, Outcome, StepPlan

from .servers.redis_server import RedisServer
from .test_store_protocol import claim_one, info_of, new_job, succeeded, taken_back

ALL: tuple[JobState, ...] = ("succeeded", "failed", "cancelled", "dead")


@dataclass
class Setup:
    store: RedisStore
    raw: Redis
    prefix: str

    async def indexed(self, state: str, queue: str = "default") -> list[str]:
        """The ids in the index of ``state`` and ``queue``, as the server holds it."""
        return await self._members(f"{self.prefix}:ended:{state}:{queue}")

    async def runs_indexed(self, state: str) -> list[str]:
        return await self._members(f"{self.prefix}:runs:in:{state}")

    async def _members(self, key: str) -> list[str]:
        found = cast(list[bytes], await self.raw.zrange(key, 0, -1))
        return sorted(member.decode() for member in found)

    async def listed(self, *states: JobState, queue: str | None = None) -> list[tuple[str, str]]:
        """(id, state) of the finished jobs in ``states`` (all, when none), newest first."""
        jobs = await self.store.finished_jobs(states or ALL, queue=queue, limit=1000)
        return [(job.id, job.state) for job in jobs]


@pytest.fixture
async def setup(redis_server: RedisServer) -> AsyncIterator[Setup]:
    prefix = f"listing-{uuid.uuid4().hex[:12]}"
    raw = Redis.from_url(redis_server.url)
    try:
        async with RedisStore(redis_server.url, prefix=prefix) as store:
            yield Setup(store, raw, prefix)
    finally:
        await raw.aclose()


def expected_order(jobs: list[JobInfo]) -> list[str]:
    return [job.id for job in sorted(jobs, key=lambda job: (-(job.finished_at or 0.0), job.id))]


async def test_a_cancelled_queued_or_delayed_job_is_listed_cancelled(setup: Setup) -> None:
    store = setup.store
    await store.enqueue(queued := new_job())
    await store.enqueue(delayed := new_job(delay=60.0))
    assert await store.cancel(queued.id)
    assert await store.cancel(delayed.id)
    assert await setup.indexed("cancelled") == sorted([queued.id, delayed.id])
    assert sorted(await setup.listed("cancelled")) == sorted([(queued.id, "cancelled"), (delayed.id, "cancelled")])


async def test_an_expired_lease_lists_the_job_dead_failed_or_cancelled_by_its_fate(setup: Setup) -> None:
    store = setup.store
    await store.enqueue(exhausted := new_job(lease=0.2, max_deliveries=1))
    await store.enqueue(once := new_job(lease=0.2, once=True))
    await store.enqueue(flagged := new_job(lease=0.2))
    await store.enqueue(again := new_job(lease=0.2))
    assert len(await store.claim("c1", ["default"], 4)) == 4
    assert await store.cancel(flagged.id)  # running: only flagged, its fate comes with the reclaim
    assert await setup.listed() == []
    for job in (exhausted, once, flagged, again):
        await taken_back(store, job.id)
    assert await setup.indexed("dead") == [exhausted.id]
    assert await setup.indexed("failed") == [once.id]
    assert await setup.indexed("cancelled") == [flagged.id]
    assert sorted(await setup.listed()) == sorted(
        [(exhausted.id, "dead"), (once.id, "failed"), (flagged.id, "cancelled")]
    )
    (lost,) = await store.finished_jobs(["failed"])
    assert lost.error is not None
    assert lost.error.type.endswith("JobLostError")
    assert (await info_of(store, again.id)).state == "queued"  # deliveries left: requeued, not listed


async def test_a_started_job_given_back_is_listed_by_its_fate_and_an_unstarted_one_only_when_cancelled(
    setup: Setup,
) -> None:
    store = setup.store
    await store.enqueue(exhausted := new_job(max_deliveries=1))
    await store.enqueue(once := new_job(once=True))
    await store.enqueue(flagged := new_job())
    await store.enqueue(back := new_job())
    claims = {claim.id: claim for claim in await store.claim("c1", ["default"], 4)}
    await store.release([claims[exhausted.id].hold, claims[once.id].hold], started=True)
    assert await store.cancel(flagged.id)
    await store.release([claims[flagged.id].hold, claims[back.id].hold], started=False)
    assert sorted(await setup.listed()) == sorted(
        [(exhausted.id, "dead"), (once.id, "failed"), (flagged.id, "cancelled")]
    )
    assert (await info_of(store, back.id)).state == "queued"


async def test_complete_and_claim_lists_what_it_records(setup: Setup) -> None:
    store = setup.store
    await store.enqueue(first := new_job())
    await store.enqueue(second := new_job())
    claim = await claim_one(store)
    recorded, taken = await store.complete_and_claim([succeeded(claim.hold)], "c1", ["default"], 1)
    assert recorded == [True]
    assert [job.id for job in taken] == [second.id]
    assert await setup.listed() == [(first.id, "succeeded")]
    assert await setup.indexed("succeeded") == [first.id]


async def test_a_requeued_dead_job_leaves_the_index_and_joins_it_again_when_it_dies_again(setup: Setup) -> None:
    store = setup.store
    await store.enqueue(job := new_job(max_deliveries=1))
    await store.release([(await claim_one(store)).hold], started=True)
    before = (await info_of(store, job.id)).finished_at
    assert await store.requeue_dead(job.id)
    assert await setup.indexed("dead") == []
    await store.release([(await claim_one(store)).hold], started=True)
    (dead,) = await store.finished_jobs(["dead"])
    assert dead.id == job.id
    assert before is not None
    assert dead.finished_at is not None
    assert dead.finished_at > before
    assert await setup.indexed("dead") == [job.id]


async def test_a_purge_takes_the_expired_jobs_out_of_the_index_and_keeps_dead_ones(setup: Setup) -> None:
    store = setup.store
    for job in (short := new_job(result_ttl=0.0), kept := new_job(), dead := new_job(max_deliveries=1)):
        await store.enqueue(job)
    claims = {claim.id: claim for claim in await store.claim("c1", ["default"], 3)}
    assert await store.complete([succeeded(claims[short.id].hold), succeeded(claims[kept.id].hold)]) == [True] * 2
    await store.release([claims[dead.id].hold], started=True)
    assert await store.purge() == 1
    assert await setup.indexed("succeeded") == [kept.id]
    assert await setup.indexed("dead") == [dead.id]


async def test_an_index_entry_whose_job_is_gone_is_dropped_and_the_page_still_fills(setup: Setup) -> None:
    store = setup.store
    jobs = [new_job() for _ in range(5)]
    for job in jobs:
        await store.enqueue(job)
        await store.complete([succeeded((await claim_one(store)).hold)])
    newest = [job.id for job in await store.finished_jobs(["succeeded"], limit=5)]
    assert newest == [job.id for job in reversed(jobs)]
    # As an eviction (or a hand) would: the job's hash goes, its index entry stays until a read meets it.
    await setup.raw.delete(f"{setup.prefix}:job:{newest[0]}", f"{setup.prefix}:job:{newest[2]}")
    assert [job.id for job in await store.finished_jobs(["succeeded"], limit=2)] == [newest[1], newest[3]]
    assert await setup.indexed("succeeded") == sorted(set(newest) - {newest[0], newest[2]})


async def _finish_batches(setup: Setup, queue: str, state: str, batches: int, size: int) -> None:
    """``batches`` completes of ``size`` jobs each: the jobs of one complete share their ``finished_at``."""
    store = setup.store
    for _ in range(batches):
        for _ in range(size):
            await store.enqueue(new_job(queue=queue, id=uuid.uuid4().hex))
        claims = await store.claim("c1", [queue], size)
        outcomes = [Outcome(lease=claim.hold, state=state, result=b"1") for claim in claims]  # type: ignore[arg-type]
        assert await store.complete(outcomes) == [True] * size


async def test_large_sets_page_newest_first_then_by_id_across_ties_and_queues(setup: Setup) -> None:
    store = setup.store
    await _finish_batches(setup, "a", "succeeded", 5, 50)
    await _finish_batches(setup, "b", "succeeded", 2, 40)
    await _finish_batches(setup, "b", "failed", 1, 30)
    every = await store.finished_jobs(["succeeded", "failed"], limit=1000)
    assert len(every) == 360
    assert [job.id for job in every] == expected_order(every)
    assert len({job.finished_at for job in every}) == 8  # one time per complete: ties of 30 to 50 jobs
    for limit in (1, 29, 30, 31, 75, 100, 359):
        page = await store.finished_jobs(["succeeded", "failed"], limit=limit)
        assert [job.id for job in page] == [job.id for job in every[:limit]], limit
    only_a = [job for job in every if job.queue == "a"]
    assert [job.id for job in await store.finished_jobs(["succeeded"], queue="a", limit=70)] == [
        job.id for job in only_a[:70]
    ]
    failed_b = [job.id for job in every if job.state == "failed"]
    assert [job.id for job in await store.finished_jobs(["failed"], queue="b", limit=10)] == failed_b[:10]
    # One entry per finished job: the hot path adds one ZADD member, and nothing else.
    assert await setup.raw.zcard(f"{setup.prefix}:ended:succeeded:a") == 250


def _chain(*, result_ttl: float = 86400.0, max_deliveries: int = 2) -> NewRun:
    first = StepPlan(name="first", task="flow.first", queue="q", max_deliveries=max_deliveries)
    second = StepPlan(name="second", parents=("first",), task="flow.second", queue="q")
    return NewRun(id=uuid.uuid4().hex, workflow="flow", inputs=b"{}", steps=(first, second), result_ttl=result_ttl)


async def test_a_cancelled_run_lists_its_stopped_step_job_cancelled_and_itself_cancelled(setup: Setup) -> None:
    store = setup.store
    await store.start_run(run := _chain())
    assert await setup.runs_indexed("running") == [run.id]
    (first,) = await store.claim("c1", ["q"], 10)
    assert await store.complete([succeeded(first.hold)]) == [True]
    assert await setup.listed(queue="q") == [(first.id, "succeeded")]
    assert await store.cancel_run(run.id)
    ((second_id, state), listed_first) = await setup.listed(queue="q")
    assert (state, listed_first) == ("cancelled", (first.id, "succeeded"))
    assert second_id.startswith(f"{run.id}.")
    assert await setup.runs_indexed("running") == []
    assert [found.id for found in await store.recent_runs(states=["cancelled"])] == [run.id]


async def test_a_run_moves_between_state_indexes_as_it_fails_resumes_and_is_purged(setup: Setup) -> None:
    store = setup.store
    await store.start_run(failing := _chain(max_deliveries=1))
    (lost,) = await store.claim("c1", ["q"], 10)
    await store.start_run(short := _chain(result_ttl=0.0))
    (first,) = await store.claim("c1", ["q"], 10)
    await store.release([lost.hold], started=True)  # its one delivery: dead, the run fails
    assert await setup.runs_indexed("failed") == [failing.id]
    assert [job.id for job in await store.finished_jobs(["dead"], queue="q")] == [lost.id]
    assert await store.resume_run(failing.id)
    assert await setup.runs_indexed("failed") == []
    assert await setup.runs_indexed("running") == sorted([failing.id, short.id])
    assert await store.complete([succeeded(first.hold)]) == [True]
    (second,) = [claim for claim in await store.claim("c1", ["q"], 10) if claim.id.startswith(f"{short.id}.")]
    assert await store.complete([succeeded(second.hold)]) == [True]
    assert [run.id for run in await store.recent_runs(states=["succeeded"])] == [short.id]
    await store.purge()
    assert await setup.runs_indexed("succeeded") == []
    assert await store.recent_runs(states=["succeeded"]) == []
    assert [run.id for run in await store.recent_runs()] == [failing.id]


async def test_a_run_whose_hash_is_gone_is_dropped_from_the_listing(setup: Setup) -> None:
    store = setup.store
    runs = [_chain() for _ in range(3)]
    for run in runs:
        await store.start_run(run)
    assert [run.id for run in await store.recent_runs()] == [run.id for run in reversed(runs)]
    await setup.raw.delete(f"{setup.prefix}:run:{runs[2].id}")
    assert [run.id for run in await store.recent_runs(limit=2)] == [runs[1].id, runs[0].id]
    assert await setup.runs_indexed("running") == sorted([runs[0].id, runs[1].id])
