"""Taking jobs back on every store: reclaim of expired leases, release after a kill, cancel, dead letters, purge."""

from __future__ import annotations

import uuid

import pytest

from tasker_async.durable import DeadLetterError, JobLostError, Store
from tasker_async.durable._model.records import qualified_name
from tasker_async.durable._stores.protocol import LOST_MESSAGE
from tasker_async.durable._stores.records import Outcome

from .test_store_protocol import claim_one, consumer_info, info_of, new_job, succeeded, taken_back, until

# -- reclaim


async def test_reclaim_leaves_live_leases_alone(store: Store) -> None:
    await store.enqueue(job := new_job(lease=30.0))
    await claim_one(store)
    assert await store.reclaim() == 0
    info = await info_of(store, job.id)
    assert info.state == "running"


async def test_an_expired_lease_makes_the_job_ready_again(store: Store) -> None:
    await store.enqueue(job := new_job(lease=0.2))
    await claim_one(store, "c1")

    async def reclaimed() -> bool:
        return await store.reclaim() == 1

    await until(reclaimed)
    info = await info_of(store, job.id)
    assert (info.state, info.deliveries, info.error) == ("queued", 1, None)
    assert await store.backlog(["default"]) == 1
    again = await claim_one(store, "c2")
    assert (again.id, again.deliveries) == (job.id, 2)


async def test_a_job_whose_lease_expired_goes_back_ahead_of_the_jobs_queued_behind_it(store: Store) -> None:
    # Its old place: a dead consumer's job reaches another within 1.5 x lease, even with a backlog before it.
    await store.enqueue(lost := new_job(lease=0.2))
    claim = await claim_one(store, "c1")
    assert claim.id == lost.id
    backlog = [new_job() for _ in range(3)]
    for job in backlog:
        await store.enqueue(job)
    await taken_back(store, lost.id)
    order = [(await claim_one(store, "c2")).id for _ in range(4)]
    assert order == [lost.id, *(job.id for job in backlog)]


async def test_an_expired_lease_at_max_deliveries_goes_dead(store: Store) -> None:
    await store.enqueue(job := new_job(lease=0.2, max_deliveries=2))
    for delivery in (1, 2):
        claim = await claim_one(store)
        assert claim.deliveries == delivery
        await taken_back(store, job.id)
    info = await info_of(store, job.id)
    assert (info.state, info.deliveries) == ("dead", 2)
    assert info.error is not None
    assert info.error.type == qualified_name(DeadLetterError)
    assert info.error.message == "delivered 2 times without an outcome"
    assert info.finished_at is not None
    stats = await store.stats("default")
    assert (stats.dead, stats.running, stats.ready_main) == (1, 0, 0)
    assert await store.claim("c1", ["default"], 10) == []


async def test_an_expired_once_job_fails_as_lost(store: Store) -> None:
    await store.enqueue(job := new_job(lease=0.2, once=True, max_deliveries=5))
    await claim_one(store)
    await taken_back(store, job.id)
    finished = await store.wait(job.id, 1.0)
    assert (finished.info.state, finished.info.deliveries, finished.result) == ("failed", 1, None)
    assert finished.info.error is not None
    assert (finished.info.error.type, finished.info.error.message) == (qualified_name(JobLostError), LOST_MESSAGE)
    assert await store.claim("c1", ["default"], 10) == []


async def test_an_expired_job_asked_to_be_cancelled_ends_cancelled(store: Store) -> None:
    await store.enqueue(job := new_job(lease=0.2))
    await claim_one(store)
    assert await store.cancel(job.id) is True
    await taken_back(store, job.id)
    finished = await store.wait(job.id, 1.0)
    assert (finished.info.state, finished.info.error) == ("cancelled", None)
    assert await store.claim("c1", ["default"], 10) == []


# -- release(started=True): a kill


async def test_release_started_makes_the_job_ready_at_once_with_its_delivery(store: Store) -> None:
    await store.enqueue(job := new_job(lease=30.0))
    claim = await claim_one(store)
    await store.release([claim.hold], started=True)
    info = await info_of(store, job.id)
    assert (info.state, info.deliveries) == ("queued", 1)
    assert (await claim_one(store)).deliveries == 2
    assert await store.complete([succeeded(claim.hold)]) == [False]


async def test_a_job_given_back_after_a_kill_goes_back_ahead_of_the_jobs_queued_behind_it(store: Store) -> None:
    await store.enqueue(killed := new_job(lease=30.0))
    claim = await claim_one(store)
    backlog = [new_job() for _ in range(3)]
    for job in backlog:
        await store.enqueue(job)
    await store.release([claim.hold], started=True)
    order = [(await claim_one(store)).id for _ in range(4)]
    assert order == [killed.id, *(job.id for job in backlog)]


async def test_release_started_of_a_once_job_fails_it_as_lost_at_once(store: Store) -> None:
    await store.enqueue(job := new_job(lease=30.0, once=True))
    claim = await claim_one(store)
    await store.release([claim.hold], started=True)
    finished = await store.wait(job.id, 1.0)
    assert finished.info.state == "failed"
    assert finished.info.error is not None
    assert finished.info.error.type == qualified_name(JobLostError)


async def test_release_started_at_max_deliveries_goes_dead(store: Store) -> None:
    await store.enqueue(job := new_job(lease=30.0, max_deliveries=1))
    claim = await claim_one(store)
    await store.release([claim.hold], started=True)
    info = await info_of(store, job.id)
    assert info.state == "dead"
    assert info.error is not None
    assert info.error.type == qualified_name(DeadLetterError)


async def test_release_unstarted_of_a_job_asked_to_be_cancelled_ends_it_cancelled(store: Store) -> None:
    await store.enqueue(job := new_job())
    claim = await claim_one(store)
    await store.cancel(job.id)
    await store.release([claim.hold], started=False)
    finished = await store.wait(job.id, 1.0)
    assert (finished.info.state, finished.info.deliveries) == ("cancelled", 0)


# -- cancel


async def test_cancel_a_queued_job(store: Store) -> None:
    await store.enqueue(job := new_job())
    assert await store.cancel(job.id) is True
    finished = await store.wait(job.id, 1.0)
    assert (finished.info.state, finished.info.deliveries) == ("cancelled", 0)
    assert finished.info.finished_at is not None
    assert await store.claim("c1", ["default"], 10) == []
    assert await store.backlog(["default"]) == 0


async def test_cancel_a_delayed_job_before_its_time(store: Store) -> None:
    await store.enqueue(job := new_job(delay=0.1))
    assert await store.cancel(job.id) is True
    info = await info_of(store, job.id)
    assert info.state == "cancelled"
    assert (await store.stats("default")).delayed == 0
    await store.enqueue(marker := new_job(delay=0.15))

    async def marker_ready() -> bool:
        return await store.backlog(["default"]) > 0

    # Once a job delayed longer is ready, the cancelled one's time has passed too: only the marker is there.
    await until(marker_ready)
    assert [c.id for c in await store.claim("c1", ["default"], 10)] == [marker.id]


async def test_cancel_a_running_job_asks_its_holder(store: Store) -> None:
    await store.enqueue(job := new_job())
    claim = await claim_one(store)
    assert await store.cancel(job.id) is True
    assert await store.cancel(job.id) is True  # still not finished
    info = await info_of(store, job.id)
    assert info.state == "running"
    assert (await store.renew(consumer_info(), [claim.hold])).cancelled == {job.id}
    assert await store.complete([Outcome(lease=claim.hold, state="cancelled")]) == [True]
    assert (await store.wait(job.id, 1.0)).info.state == "cancelled"


@pytest.mark.parametrize("state", ["succeeded", "cancelled", "dead"])
async def test_cancel_a_finished_job_is_refused(store: Store, state: str) -> None:
    await store.enqueue(job := new_job(max_deliveries=1))
    claim = await claim_one(store)
    if state == "succeeded":
        await store.complete([succeeded(claim.hold)])
    elif state == "cancelled":
        await store.complete([Outcome(lease=claim.hold, state="cancelled")])
    else:
        await store.release([claim.hold], started=True)
    assert await store.cancel(job.id) is False
    info = await info_of(store, job.id)
    assert info.state == state


async def test_cancel_an_unknown_job_is_refused(store: Store) -> None:
    assert await store.cancel(uuid.uuid4().hex) is False


# -- requeue_dead


async def test_requeue_dead_gives_another_round(store: Store) -> None:
    await store.enqueue(job := new_job(max_deliveries=1))
    await store.release([(await claim_one(store)).hold], started=True)
    assert await store.requeue_dead(job.id) is True
    info = await info_of(store, job.id)
    assert (info.state, info.deliveries, info.error, info.finished_at) == ("queued", 0, None, None)
    stats = await store.stats("default")
    assert (stats.dead, stats.ready_main) == (0, 1)
    claim = await claim_one(store)
    assert claim.deliveries == 1
    assert await store.complete([succeeded(claim.hold, b"7")]) == [True]
    assert (await store.wait(job.id, 1.0)).result == b"7"


async def test_requeue_dead_refuses_jobs_that_are_not_dead(store: Store) -> None:
    await store.enqueue(queued := new_job())
    assert await store.requeue_dead(queued.id) is False
    await claim_one(store)
    assert await store.requeue_dead(queued.id) is False  # running
    assert await store.requeue_dead(uuid.uuid4().hex) is False
    info = await info_of(store, queued.id)
    assert info.state == "running"


# -- purge


async def test_purge_deletes_jobs_finished_longer_than_their_ttl_ago(store: Store) -> None:
    short, long = new_job(result_ttl=0.05), new_job(result_ttl=60.0)
    dead, waiting = new_job(result_ttl=0.0, max_deliveries=1), new_job(result_ttl=0.0)
    for job in (short, long, dead, waiting):
        await store.enqueue(job)
    claims = await store.claim("c1", ["default"], 3)
    await store.complete([succeeded(claims[0].hold), succeeded(claims[1].hold)])
    await store.release([claims[2].hold], started=True)
    purged: list[int] = []

    async def short_gone() -> bool:
        purged.append(await store.purge())
        return await store.info(short.id) is None

    await until(short_gone)
    assert sum(purged) == 1
    assert await store.purge() == 0
    for kept in (long, dead, waiting):
        assert await store.info(kept.id) is not None
    with pytest.raises(LookupError):
        await store.wait(short.id, 1.0)


async def test_purge_goes_through_a_backlog_larger_than_one_batch(store: Store) -> None:
    # Engines purge in batches (one script or transaction each, so none holds the engine long); every
    # expired job goes, however many there are.
    jobs = [new_job(result_ttl=0.0) for _ in range(1_100)]
    for job in jobs:
        await store.enqueue(job)
    claims = await store.claim("c1", ["default"], len(jobs))
    assert await store.complete([succeeded(claim.hold) for claim in claims]) == [True] * len(jobs)
    assert await store.purge() == len(jobs)
    assert await store.queue_names() == []
    assert await store.info(jobs[-1].id) is None
