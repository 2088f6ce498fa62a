"""The store protocol on every store: enqueue and info, key dedup, claim order, limits and queues, release unstarted.

The helpers here (``new_job``, ``info_of``, ``until``, ``taken_back``, ``claim_one``) serve the other
``test_store_*`` files.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from tasker_async.durable import ConsumerInfo, JobInfo, Store
from tasker_async.durable._stores.records import Claim, Lease, NewJob, Outcome


def new_job(**fields: Any) -> NewJob:
    """A job for queue ``default`` with a fresh id; ``fields`` override any field."""
    values: dict[str, Any] = {"id": uuid.uuid4().hex, "name": "tasks.echo", "queue": "default", "payload": b"[]"}
    values.update(fields)
    return NewJob(**values)


def consumer_info(consumer_id: str = "host:1:a", **fields: Any) -> ConsumerInfo:
    """A heartbeat of ``consumer_id``."""
    values: dict[str, Any] = {
        "id": consumer_id,
        "host": "host",
        "pid": 1,
        "started_at": time.time(),
        "capacity": 4,
        "running": 0,
        "heartbeat_at": time.time(),
        "queues": ("default",),
    }
    values.update(fields)
    return ConsumerInfo(**values)


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not await condition():  # noqa: ASYNC110 - a store's state has no event to wait on
            await anyio.sleep(0.01)


async def info_of(store: Store, job_id: str) -> JobInfo:
    """The job's snapshot; the job must be known."""
    info = await store.info(job_id)
    assert info is not None, f"job {job_id} is unknown"
    return info


async def taken_back(store: Store, job_id: str) -> None:
    """Run ``reclaim`` until the job's lease has expired and it is no longer running."""

    async def reclaimed() -> bool:
        await store.reclaim()
        info = await store.info(job_id)
        return info is not None and info.state != "running"

    await until(reclaimed)


async def claim_one(store: Store, consumer: str = "c1", queues: tuple[str, ...] = ("default",)) -> Claim:
    """Claim exactly one job."""
    claims = await store.claim(consumer, queues, 1)
    assert len(claims) == 1
    return claims[0]


def succeeded(lease: Lease, result: bytes = b"null") -> Outcome:
    return Outcome(lease=lease, state="succeeded", result=result)


# -- enqueue and info


async def test_enqueue_returns_the_id_and_info_shows_the_job(store: Store) -> None:
    before = time.time()
    job = new_job(name="reports.render", queue="reports", priority=True, key="r-1")
    assert await store.enqueue(job) == job.id
    info = await info_of(store, job.id)
    assert (info.id, info.name, info.queue, info.state) == (job.id, "reports.render", "reports", "queued")
    assert (info.deliveries, info.priority, info.key) == (0, True, "r-1")
    assert before - 1 <= info.created_at <= time.time() + 1
    assert (info.started_at, info.finished_at, info.error, info.consumer) == (None, None, None, None)


async def test_a_delayed_job_shows_delayed_then_queued(store: Store) -> None:
    job = new_job(delay=0.1)
    await store.enqueue(job)
    info = await info_of(store, job.id)
    assert info.state == "delayed"

    async def queued() -> bool:
        info = await store.info(job.id)
        return info is not None and info.state == "queued"

    await until(queued)


async def test_info_of_an_unknown_job_is_none(store: Store) -> None:
    assert await store.info(uuid.uuid4().hex) is None


async def test_enqueue_of_a_stored_id_stores_nothing_more(store: Store) -> None:
    job = new_job()
    assert await store.enqueue(job) == job.id
    assert await store.enqueue(job) == job.id
    assert await store.backlog(["default"]) == 1


# -- key dedup


async def test_a_key_of_an_unfinished_job_returns_that_job(store: Store) -> None:
    first = new_job(key="k")
    assert await store.enqueue(first) == first.id
    assert await store.enqueue(new_job(key="k")) == first.id
    await claim_one(store)
    assert await store.enqueue(new_job(key="k")) == first.id
    assert await store.backlog(["default"]) == 0
    assert (await store.stats("default")).running == 1


async def test_a_key_of_a_dead_job_returns_that_job(store: Store) -> None:
    first = new_job(key="k", max_deliveries=1, lease=0.2)
    await store.enqueue(first)
    await claim_one(store)
    await taken_back(store, first.id)
    info = await info_of(store, first.id)
    assert info.state == "dead"
    assert await store.enqueue(new_job(key="k")) == first.id


async def test_a_key_of_a_job_finished_within_its_ttl_returns_that_job(store: Store) -> None:
    first = new_job(key="k", result_ttl=60.0)
    await store.enqueue(first)
    claim = await claim_one(store)
    assert await store.complete([succeeded(claim.hold)]) == [True]
    assert await store.enqueue(new_job(key="k")) == first.id
    assert await store.backlog(["default"]) == 0


async def test_a_key_frees_once_its_job_finished_longer_than_its_ttl_ago(store: Store) -> None:
    first = new_job(key="k", result_ttl=0.05)
    await store.enqueue(first)
    claim = await claim_one(store)
    await store.complete([succeeded(claim.hold)])

    async def purged() -> bool:
        await store.purge()
        return await store.info(first.id) is None

    await until(purged)
    second = new_job(key="k")
    assert await store.enqueue(second) == second.id != first.id
    assert await store.backlog(["default"]) == 1
    # The key now belongs to the new job.
    assert await store.enqueue(new_job(key="k")) == second.id


async def test_a_key_past_its_ttl_but_not_yet_purged_is_free(store: Store) -> None:
    first = new_job(key="k", result_ttl=0.05)
    await store.enqueue(first)
    claim = await claim_one(store)
    await store.complete([succeeded(claim.hold)])
    second = new_job(key="k")

    async def accepted() -> bool:
        return await store.enqueue(second) == second.id

    await until(accepted)
    assert await store.backlog(["default"]) == 1


async def test_different_keys_do_not_dedup(store: Store) -> None:
    a, b = new_job(key="a"), new_job(key="b")
    assert [await store.enqueue(a), await store.enqueue(b)] == [a.id, b.id]


# -- claim


async def test_claim_hands_out_what_a_consumer_needs(store: Store) -> None:
    job = new_job(name="t.x", payload=b'{"a":1}', priority=True, once=True, max_deliveries=3, lease=7.0)
    await store.enqueue(job)
    claim = await claim_one(store, "c1")
    assert (claim.id, claim.name, claim.queue, claim.payload) == (job.id, "t.x", "default", b'{"a":1}')
    assert (claim.priority, claim.once, claim.deliveries, claim.max_deliveries, claim.lease) == (True, True, 1, 3, 7.0)
    assert claim.token
    assert claim.hold == Lease(job.id, claim.token)
    info = await info_of(store, job.id)
    assert (info.state, info.deliveries, info.consumer) == ("running", 1, "c1")
    assert info.started_at is not None


async def test_claim_takes_the_priority_lane_first_then_fifo(store: Store) -> None:
    main = [new_job() for _ in range(3)]
    urgent = [new_job(priority=True) for _ in range(2)]
    for job in (main[0], urgent[0], main[1], urgent[1], main[2]):
        await store.enqueue(job)
    claims = await store.claim("c1", ["default"], 10)
    assert [c.id for c in claims] == [j.id for j in (*urgent, *main)]


async def test_claim_one_at_a_time_keeps_the_order(store: Store) -> None:
    jobs = [new_job() for _ in range(5)]
    for job in jobs:
        await store.enqueue(job)
    assert [(await claim_one(store)).id for _ in jobs] == [j.id for j in jobs]
    assert await store.claim("c1", ["default"], 1) == []


async def test_a_delayed_job_joins_the_order_when_its_delay_ends(store: Store) -> None:
    early = new_job()
    delayed = new_job(delay=0.1)
    await store.enqueue(early)
    await store.enqueue(delayed)
    assert [c.id for c in await store.claim("c1", ["default"], 10)] == [early.id]

    async def ready() -> bool:
        info = await store.info(delayed.id)
        return info is not None and info.state == "queued"

    await until(ready)
    # Submitted after the delay ended: behind the delayed job, although nobody looked in between.
    late = new_job()
    await store.enqueue(late)
    assert [c.id for c in await store.claim("c1", ["default"], 10)] == [delayed.id, late.id]


async def test_a_delayed_job_is_not_claimed_before_its_time(store: Store) -> None:
    delayed = new_job(delay=0.15)
    await store.enqueue(delayed)
    assert await store.claim("c1", ["default"], 10) == []
    await store.enqueue(ready := new_job())
    assert [c.id for c in await store.claim("c1", ["default"], 10)] == [ready.id]

    async def claimed() -> bool:
        return [c.id for c in await store.claim("c1", ["default"], 10)] == [delayed.id]

    await until(claimed)


async def test_a_delayed_priority_job_goes_before_ready_main_jobs(store: Store) -> None:
    urgent = new_job(priority=True, delay=0.1)
    await store.enqueue(urgent)
    main = new_job()
    await store.enqueue(main)

    async def urgent_ready() -> bool:
        return (await store.stats("default")).ready_priority == 1

    await until(urgent_ready)
    assert [c.id for c in await store.claim("c1", ["default"], 10)] == [urgent.id, main.id]


async def test_claim_takes_at_most_limit(store: Store) -> None:
    jobs = [new_job() for _ in range(3)]
    for job in jobs:
        await store.enqueue(job)
    assert await store.claim("c1", ["default"], 0) == []
    assert [c.id for c in await store.claim("c1", ["default"], 2)] == [jobs[0].id, jobs[1].id]
    assert await store.backlog(["default"]) == 1


async def test_claim_takes_only_the_queues_asked_for(store: Store) -> None:
    a1, b1, a2 = new_job(queue="a"), new_job(queue="b"), new_job(queue="a")
    for job in (a1, b1, a2):
        await store.enqueue(job)
    assert [c.id for c in await store.claim("c1", ["a"], 10)] == [a1.id, a2.id]
    assert await store.claim("c1", ["c"], 10) == []
    assert [c.id for c in await store.claim("c1", ["b"], 10)] == [b1.id]


async def test_claim_over_several_queues_keeps_one_order(store: Store) -> None:
    a1, b1, a2, b2 = new_job(queue="a"), new_job(queue="b"), new_job(queue="a"), new_job(queue="b", priority=True)
    for job in (a1, b1, a2, b2):
        await store.enqueue(job)
    assert [c.id for c in await store.claim("c1", ["a", "b"], 10)] == [b2.id, a1.id, b1.id, a2.id]


async def test_every_claim_gets_a_fresh_token(store: Store) -> None:
    await store.enqueue(job := new_job())
    first = await claim_one(store)
    await store.release([first.hold], started=False)
    second = await claim_one(store)
    assert second.id == job.id
    assert second.token != first.token


# -- release(started=False)


async def test_release_unstarted_takes_the_delivery_back_and_keeps_the_place(store: Store) -> None:
    first, second = new_job(), new_job()
    await store.enqueue(first)
    await store.enqueue(second)
    claim = await claim_one(store)
    assert claim.id == first.id
    await store.release([claim.hold], started=False)
    info = await info_of(store, first.id)
    assert (info.state, info.deliveries) == ("queued", 0)
    again = await claim_one(store)
    assert (again.id, again.deliveries) == (first.id, 1)


async def test_release_unstarted_after_a_real_delivery_keeps_that_delivery(store: Store) -> None:
    await store.enqueue(job := new_job(lease=0.2))
    await claim_one(store)
    await taken_back(store, job.id)
    claim = await claim_one(store)
    assert claim.deliveries == 2
    await store.release([claim.hold], started=False)
    info = await info_of(store, job.id)
    assert (info.state, info.deliveries) == ("queued", 1)


async def test_release_with_a_stale_token_changes_nothing(store: Store) -> None:
    await store.enqueue(job := new_job())
    claim = await claim_one(store)
    await store.release([Lease(job.id, "not-the-token")], started=False)
    await store.release([Lease(uuid.uuid4().hex, "x")], started=False)
    info = await info_of(store, job.id)
    assert info.state == "running"
    assert await store.complete([succeeded(claim.hold)]) == [True]
