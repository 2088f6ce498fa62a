"""Holding a job on every store: renewing a lease, and recording an outcome only while holding it."""

from __future__ import annotations

import time
import uuid

import anyio

from tasker_async.durable import ErrorInfo, Store
from tasker_async.durable._stores.records import Lease, Outcome

from .test_store_protocol import claim_one, consumer_info, info_of, new_job, succeeded, taken_back, until

# -- renew


async def test_renew_keeps_a_lease_alive_past_its_length(store: Store) -> None:
    await store.enqueue(job := new_job(lease=0.3))
    claim = await claim_one(store)
    renewed_until = time.time() + 0.9  # three lease lengths
    while time.time() < renewed_until:
        renewal = await store.renew(consumer_info("c1"), [claim.hold])
        assert renewal.lost == frozenset()
        assert renewal.cancelled == frozenset()
        assert await store.reclaim() == 0
        await anyio.sleep(0.05)
    info = await info_of(store, job.id)
    assert (info.state, info.deliveries) == ("running", 1)


async def test_renew_reports_a_lease_another_consumer_took(store: Store) -> None:
    await store.enqueue(job := new_job(lease=0.2))
    old = await claim_one(store, "c1")
    await taken_back(store, job.id)
    new = await claim_one(store, "c2")
    assert (await store.renew(consumer_info("c1"), [old.hold])).lost == {job.id}
    assert (await store.renew(consumer_info("c2"), [new.hold])).lost == frozenset()


async def test_renew_reports_unknown_and_finished_jobs_as_lost(store: Store) -> None:
    await store.enqueue(job := new_job())
    claim = await claim_one(store)
    await store.complete([succeeded(claim.hold)])
    unknown = Lease(uuid.uuid4().hex, "t")
    renewal = await store.renew(consumer_info(), [claim.hold, unknown])
    assert renewal.lost == {job.id, unknown.job_id}


async def test_renew_reports_a_cancel_request(store: Store) -> None:
    await store.enqueue(job := new_job())
    await store.enqueue(other := new_job())
    claims = await store.claim("c1", ["default"], 2)
    assert await store.cancel(job.id) is True
    renewal = await store.renew(consumer_info("c1"), [c.hold for c in claims])
    assert renewal.cancelled == {job.id}
    assert renewal.lost == frozenset()
    info = await info_of(store, job.id)
    assert info.state == "running"
    assert other.id not in renewal.cancelled


# -- complete


async def test_complete_records_each_kind_of_outcome(store: Store) -> None:
    jobs = [new_job() for _ in range(4)]
    for job in jobs:
        await store.enqueue(job)
    claims = await store.claim("c1", ["default"], 4)
    error = ErrorInfo("mod.Boom", "boom", "Traceback ...")
    outcomes = [
        Outcome(lease=claims[0].hold, state="succeeded", result=b"42"),
        Outcome(lease=claims[1].hold, state="failed", error=error),
        Outcome(lease=claims[2].hold, state="cancelled"),
        Outcome(lease=claims[3].hold, state="dead", error=ErrorInfo("mod.Bad", "cannot decode")),
    ]
    assert await store.complete(outcomes) == [True] * 4
    finished = [await store.wait(job.id, 1.0) for job in jobs]
    assert [f.info.state for f in finished] == ["succeeded", "failed", "cancelled", "dead"]
    assert [f.result for f in finished] == [b"42", None, None, None]
    assert [f.info.error for f in finished] == [None, error, None, ErrorInfo("mod.Bad", "cannot decode")]
    assert all(f.info.finished_at is not None for f in finished)
    assert (await store.stats("default")).dead == 1


async def test_complete_refuses_a_stale_token(store: Store) -> None:
    await store.enqueue(job := new_job(lease=0.2))
    old = await claim_one(store, "c1")
    await taken_back(store, job.id)
    new = await claim_one(store, "c2")
    assert await store.complete([succeeded(old.hold, b"1")]) == [False]
    assert await store.complete([succeeded(new.hold, b"2")]) == [True]
    finished = await store.wait(job.id, 1.0)
    assert (finished.result, finished.info.consumer) == (b"2", "c2")


async def test_complete_refuses_a_lease_taken_back(store: Store) -> None:
    await store.enqueue(job := new_job(lease=0.2))
    claim = await claim_one(store)
    await taken_back(store, job.id)
    assert await store.complete([succeeded(claim.hold)]) == [False]
    info = await info_of(store, job.id)
    assert info.state == "queued"


async def test_complete_after_expiry_but_before_reclaim_is_recorded(store: Store) -> None:
    await store.enqueue(job := new_job(lease=0.05))
    claim = await claim_one(store)
    expired_at = time.time() + 0.1

    async def expired() -> bool:
        return time.time() > expired_at

    await until(expired)
    # Nobody took it back: the token still matches and the job is still running.
    assert await store.complete([succeeded(claim.hold)]) == [True]
    assert (await store.wait(job.id, 1.0)).info.state == "succeeded"


async def test_only_one_of_two_outcomes_is_recorded(store: Store) -> None:
    await store.enqueue(job := new_job())
    claim = await claim_one(store)
    first, second = succeeded(claim.hold, b"1"), Outcome(lease=claim.hold, state="failed", error=ErrorInfo("E", "e"))
    assert await store.complete([first, second]) == [True, False]
    assert await store.complete([first]) == [False]
    assert (await store.wait(job.id, 1.0)).result == b"1"


async def test_concurrent_completions_record_exactly_one(store: Store) -> None:
    await store.enqueue(job := new_job())
    claim = await claim_one(store)
    results: list[bool] = []

    async def record(value: bytes) -> None:
        results.extend(await store.complete([succeeded(claim.hold, value)]))

    async with anyio.create_task_group() as tg:
        for value in (b"1", b"2", b"3"):
            tg.start_soon(record, value)
    assert sorted(results) == [False, False, True]
    finished = await store.wait(job.id, 1.0)
    assert finished.info.state == "succeeded"
    assert finished.result in (b"1", b"2", b"3")
