"""Waiting and counting on every store: wait, wait_ready, stats, consumers, backlog, queue_names."""

from __future__ import annotations

import time
import uuid

import anyio
import pytest

from tasker_async.durable import ErrorInfo, Store
from tasker_async.durable._stores.protocol import CONSUMER_STALE_AFTER
from tasker_async.durable._stores.records import Finished, Outcome

from .test_store_protocol import claim_one, consumer_info, info_of, new_job, succeeded, until

# -- wait


async def test_wait_returns_the_result_once_the_job_succeeds(store: Store) -> None:
    await store.enqueue(job := new_job())
    finished: list[Finished] = []

    async def waiter() -> None:
        finished.append(await store.wait(job.id, 5.0))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            claim = await claim_one(store)
            await store.complete([succeeded(claim.hold, b'"done"')])
    assert finished[0].result == b'"done"'
    assert (finished[0].info.id, finished[0].info.state) == (job.id, "succeeded")


async def test_wait_returns_at_once_for_a_finished_job(store: Store) -> None:
    await store.enqueue(job := new_job())
    error = ErrorInfo("mod.Boom", "boom")
    await store.complete([Outcome(lease=(await claim_one(store)).hold, state="failed", error=error)])
    finished = await store.wait(job.id, 0.5)
    assert (finished.info.state, finished.info.error, finished.result) == ("failed", error, None)


async def test_wait_on_a_job_finished_before_its_waiter_came_returns_at_once(store: Store) -> None:
    # The same store object stored it, and heard of its end before anyone waited: the waiter must look.
    await store.enqueue(job := new_job())
    await store.complete([succeeded((await claim_one(store)).hold, b"7")])
    with anyio.fail_after(2):  # well under the engines' safety polls
        assert (await store.wait(job.id, None)).result == b"7"


async def test_wait_on_a_job_its_enqueue_did_not_store_raises_lookup_error_at_once(store: Store) -> None:
    # A key in use stores nothing: the id enqueued was never stored, and a waiter must not wait for its end.
    await store.enqueue(first := new_job(key="k"))
    second = new_job(key="k")
    assert await store.enqueue(second) == first.id
    with anyio.fail_after(2), pytest.raises(LookupError):
        await store.wait(second.id, None)


async def test_a_wait_begun_right_after_the_enqueue_wakes_on_the_end(store: Store) -> None:
    async def finish_later() -> None:
        await store.complete([succeeded((await claim_one(store)).hold, b"8")])

    with anyio.fail_after(2):
        for _ in range(5):
            await store.enqueue(job := new_job())
            async with anyio.create_task_group() as tg:
                tg.start_soon(finish_later)
                assert (await store.wait(job.id, None)).result == b"8"


async def test_wait_wakes_when_a_queued_job_is_cancelled(store: Store) -> None:
    await store.enqueue(job := new_job())
    finished: list[Finished] = []

    async def waiter() -> None:
        finished.append(await store.wait(job.id, None))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.02)
            await store.cancel(job.id)
    assert finished[0].info.state == "cancelled"


async def test_wait_times_out_and_the_job_carries_on(store: Store) -> None:
    await store.enqueue(job := new_job())
    with pytest.raises(TimeoutError):
        await store.wait(job.id, 0.05)
    info = await info_of(store, job.id)
    assert info.state == "queued"


async def test_wait_for_an_unknown_job_raises_lookup_error(store: Store) -> None:
    missing = uuid.uuid4().hex
    with pytest.raises(LookupError):
        await store.wait(missing, 1.0)


# -- wait_ready


async def test_wait_ready_returns_at_once_when_jobs_are_ready(store: Store) -> None:
    await store.enqueue(new_job())
    with anyio.fail_after(2):
        await store.wait_ready(["default"], 10.0)


async def test_wait_ready_returns_after_its_timeout_without_jobs(store: Store) -> None:
    await store.enqueue(new_job(queue="other"))
    started = time.monotonic()
    with anyio.fail_after(5):
        await store.wait_ready(["default"], 0.1)
    assert time.monotonic() - started >= 0.05


async def test_wait_ready_wakes_on_an_enqueue(store: Store) -> None:
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.wait_ready, ["default"], 20.0)
            await anyio.sleep(0.02)
            await store.enqueue(new_job())
    assert await store.backlog(["default"]) == 1


async def test_wait_ready_wakes_when_a_delay_ends(store: Store) -> None:
    await store.enqueue(new_job(delay=0.1))
    with anyio.fail_after(5):
        await store.wait_ready(["default"], 20.0)
    assert await store.backlog(["default"]) == 1


async def test_wait_ready_wakes_for_a_delayed_job_enqueued_while_waiting(store: Store) -> None:
    await store.enqueue(new_job(delay=30.0))
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.wait_ready, ["default"], 20.0)
            await anyio.sleep(0.02)
            await store.enqueue(new_job(delay=0.1))
    assert await store.backlog(["default"]) == 1


# -- stats, consumers, backlog, queue names


async def test_stats_count_each_lane_delayed_running_and_dead(store: Store) -> None:
    for job in (new_job(max_deliveries=1), new_job(), new_job(priority=True), new_job(priority=True)):
        await store.enqueue(job)
    await store.enqueue(new_job(delay=30.0))
    await store.enqueue(new_job(delay=30.0, priority=True))
    await store.enqueue(new_job(queue="other"))
    claims = await store.claim("c1", ["default"], 3)  # both urgent ones, then the first main one
    await store.release([claims[2].hold], started=True)  # max_deliveries=1: dead
    await store.enqueue(new_job())
    stats = await store.stats("default")
    assert (stats.ready_priority, stats.ready_main, stats.delayed, stats.running, stats.dead) == (0, 2, 2, 2, 1)
    other = await store.stats("other")
    assert (other.ready_priority, other.ready_main, other.delayed, other.running, other.dead) == (0, 1, 0, 0, 0)
    empty = await store.stats("nothing")
    assert (empty.ready_priority, empty.ready_main, empty.delayed, empty.running, empty.dead) == (0, 0, 0, 0, 0)


async def test_finished_jobs_leave_the_counts(store: Store) -> None:
    await store.enqueue(new_job())
    await store.complete([succeeded((await claim_one(store)).hold)])
    stats = await store.stats("default")
    assert (stats.ready_priority, stats.ready_main, stats.delayed, stats.running, stats.dead) == (0, 0, 0, 0, 0)


async def test_stats_list_the_consumers_heard_from(store: Store) -> None:
    assert (await store.stats("default")).consumers == ()
    before = time.time()
    await store.renew(consumer_info("h:1:a", capacity=8, running=3, queues=("default", "b")), [])
    await store.renew(consumer_info("h:2:b", pid=2), [])
    consumers = {c.id: c for c in (await store.stats("default")).consumers}
    assert set(consumers) == {"h:1:a", "h:2:b"}
    first = consumers["h:1:a"]
    assert (first.host, first.pid, first.capacity, first.running, first.queues) == ("host", 1, 8, 3, ("default", "b"))
    assert first.heartbeat_at >= before - 1
    assert first.heartbeat_age(time.time()) < CONSUMER_STALE_AFTER


async def test_a_later_heartbeat_replaces_the_earlier(store: Store) -> None:
    await store.renew(consumer_info("h:1:a", running=1), [])
    await store.renew(consumer_info("h:1:a", running=2), [])
    consumers = (await store.stats("default")).consumers
    assert [(c.id, c.running) for c in consumers] == [("h:1:a", 2)]


async def test_leave_forgets_a_consumer(store: Store) -> None:
    await store.renew(consumer_info("h:1:a"), [])
    await store.renew(consumer_info("h:2:b"), [])
    await store.leave("h:1:a")
    await store.leave("never-seen")
    assert [c.id for c in (await store.stats("default")).consumers] == ["h:2:b"]


async def test_backlog_counts_ready_jobs_of_both_lanes_in_the_queues(store: Store) -> None:
    assert await store.backlog(["default"]) == 0
    for job in (new_job(), new_job(priority=True), new_job(queue="b"), new_job(queue="c"), new_job(delay=30.0)):
        await store.enqueue(job)
    await store.enqueue(new_job())
    await claim_one(store)
    assert await store.backlog(["default"]) == 2
    assert await store.backlog(["default", "b"]) == 3
    assert await store.backlog(["b", "c"]) == 2
    assert await store.backlog([]) == 0


async def test_queue_names_lists_queues_holding_jobs(store: Store) -> None:
    assert await store.queue_names() == []
    for queue in ("reports", "default", "emails", "reports"):
        await store.enqueue(new_job(queue=queue))
    await store.enqueue(new_job(queue="later", delay=30.0))
    assert await store.queue_names() == ["default", "emails", "later", "reports"]


async def test_a_queue_emptied_by_purge_is_no_longer_named(store: Store) -> None:
    await store.enqueue(job := new_job(queue="brief", result_ttl=0.05))
    await store.enqueue(new_job())
    await store.complete([succeeded((await claim_one(store, queues=("brief",))).hold)])

    async def purged() -> bool:
        await store.purge()
        return await store.info(job.id) is None

    await until(purged)
    assert await store.queue_names() == ["default"]
