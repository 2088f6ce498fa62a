"""The client's side of the contract: what ``submit`` stores, keys, delays, cancelling, stats, handles."""

from __future__ import annotations

import math
import re
from typing import Any

import anyio
import pytest

from tasker_async import ConfigError
from tasker_async.durable import Client, ConsumerInfo, Job, JobCancelledError, MemoryStore, Registry, Store
from tasker_async.durable._stores.records import Outcome

from .conftest import StoreKit

registry = Registry()


class Page:
    """The resource the tasks take first."""


@registry.task("client.render")
async def render(page: Page, report_id: int, label: str = "report") -> str:
    return f"{label} {report_id}"


@registry.task("client.reports", queue="reports", max_deliveries=2, lease=1.5, result_ttl=60.0)
async def publish(page: Page, report_id: int) -> None:
    return None


async def finish(store: Store, value: Any, queue: str = "default") -> str:
    """Take the next ready job of ``queue`` and record ``value`` as its result, as a consumer would."""
    [claim] = await store.claim("consumer-1", [queue], 1)
    result = store.serializer.dumps(value)
    assert await store.complete([Outcome(lease=claim.hold, state="succeeded", result=result)]) == [True]
    return claim.id


async def test_submit_stores_a_queued_job_with_the_tasks_options(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(publish, 7, priority=True, once=True)
        info = await job.info()
        assert (info.id, info.name, info.queue, info.state) == (job.id, "client.reports", "reports", "queued")
        assert (info.priority, info.key, info.deliveries, info.error) == (True, None, 0, None)
        [claim] = await store.claim("consumer-1", ["reports"], 5)
        assert (claim.id, claim.name, claim.priority, claim.once) == (job.id, "client.reports", True, True)
        assert (claim.max_deliveries, claim.lease) == (2, 1.5)
        assert store.serializer.loads(claim.payload) == {"args": [7], "kwargs": {}}


async def test_a_name_alone_takes_the_default_queue_and_options(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit("elsewhere.known", "a", [1, 2])
        assert re.fullmatch("[0-9a-f]{32}", job.id)  # the shape of uuid4().hex
        [claim] = await store.claim("consumer-1", ["default"], 5)
        assert (claim.id, claim.name, claim.queue, claim.priority, claim.once) == (
            job.id,
            "elsewhere.known",
            "default",
            False,
            False,
        )
        assert (claim.max_deliveries, claim.lease) == (5, 30.0)
        assert store.serializer.loads(claim.payload) == {"args": ["a", [1, 2]], "kwargs": {}}


async def test_a_submitted_job_survives_its_store_closing(kit: StoreKit) -> None:
    async with kit.open() as store, Client(store) as client:
        job = await client.submit(render, 42, key="report-42")
        if not kit.durable:
            # Nothing outlives a store that keeps no data elsewhere: what applies is that another
            # client of the same store sees the job as soon as submit returns.
            assert kit.kind == "memory"
            async with Client(store) as other:
                assert (await other.job(job.id).info()).state == "queued"
            return
    async with kit.open() as reopened, Client(reopened) as client:
        info = await client.job(job.id).info()
        assert (info.name, info.state, info.key) == ("client.render", "queued", "report-42")
        assert (await client.stats()).ready_main == 1
        assert await finish(reopened, "done") == job.id
        assert await client.job(job.id).result(timeout=5) == "done"


async def test_every_submit_gets_a_fresh_id_of_32_hex_digits(store: Store) -> None:
    async with Client(store) as client:
        jobs = [await client.submit("elsewhere.known") for _ in range(200)]
    ids = [job.id for job in jobs]
    assert all(re.fullmatch("[0-9a-f]{32}", job_id) for job_id in ids)
    assert len(set(ids)) == len(ids)


async def test_a_key_in_use_returns_its_job_and_adds_nothing(store: Store) -> None:
    async with Client(store) as client:
        first = await client.submit(render, 1, key="report-1")
        again = await client.submit(render, 2, key="report-1", priority=True)
        assert again.id == first.id
        assert (await client.stats()).ready_main == 1
        other = await client.submit(render, 1, key="report-2")
        assert other.id != first.id
        assert (await client.stats()).ready_main == 2
        # Keyless submits are never merged.
        plain = [await client.submit(render, 1) for _ in range(2)]
        assert len({job.id for job in plain}) == 2
        assert (await client.stats()).ready_main == 4


async def test_concurrent_submits_keep_keys_and_order(store: Store) -> None:
    """Submits made at the same time (which an engine may store together) each get their own job, except where
    a key is shared, and all come after the jobs submitted before them."""
    async with Client(store) as client:
        before = [await client.submit(render, n) for n in range(3)]
        ids: dict[int, str] = {}

        async def submit(n: int) -> None:
            key = "shared" if n % 4 == 0 else None
            ids[n] = (await client.submit(render, n, key=key)).id

        async with anyio.create_task_group() as tg:
            for n in range(12):
                tg.start_soon(submit, n)
        shared = {ids[n] for n in range(0, 12, 4)}
        assert len(shared) == 1
        assert len(set(ids.values())) == 12 - 3 + 1
        assert (await client.stats()).ready_main == 3 + 10
        claimed = [claim.id for claim in await store.claim("consumer-1", ["default"], 20)]
        assert claimed[:3] == [job.id for job in before]
        assert sorted(claimed[3:]) == sorted(set(ids.values()))


async def test_a_key_of_a_finished_job_returns_it_within_its_result_ttl(store: Store) -> None:
    async with Client(store) as client:
        first = await client.submit(render, 3, key="report-3")
        await finish(store, "three")
        again = await client.submit(render, 3, key="report-3")
        assert again.id == first.id
        assert await again.result(timeout=5) == "three"
        assert (await client.stats()).ready_main == 0


async def test_a_delayed_job_is_held_back_then_queued(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(render, 1, delay=0.3)
        assert (await job.info()).state == "delayed"
        stats = await client.stats()
        assert (stats.delayed, stats.ready_main) == (1, 0)
        assert await store.claim("consumer-1", ["default"], 5) == []
        with anyio.fail_after(5):
            while (await job.info()).state != "queued":  # noqa: ASYNC110 - a store's clock: no event to wait on
                await anyio.sleep(0.01)
        stats = await client.stats()
        assert (stats.delayed, stats.ready_main) == (0, 1)
        assert [claim.id for claim in await store.claim("consumer-1", ["default"], 5)] == [job.id]


async def test_a_zero_delay_is_no_delay(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(render, 1, delay=0)
        assert (await job.info()).state == "queued"


@pytest.mark.parametrize("delay", [-1, -0.5, math.nan, math.inf, -math.inf, "1", True, 10**400])
async def test_a_bad_delay_is_refused_and_nothing_is_stored(store: Store, delay: Any) -> None:
    async with Client(store) as client:
        with pytest.raises(ValueError, match="delay"):
            await client.submit(render, 1, delay=delay)
        assert await store.queue_names() == []


@pytest.mark.parametrize(("key", "error"), [("", ValueError), (1, TypeError), (b"k", TypeError)])
async def test_a_bad_key_is_refused(store: Store, key: Any, error: type[Exception]) -> None:
    async with Client(store) as client:
        with pytest.raises(error, match="key"):
            await client.submit(render, 1, key=key)
        assert await store.queue_names() == []


@pytest.mark.parametrize("delay", [None, 60.0])
async def test_a_queued_or_delayed_job_cancelled_ends_cancelled_and_never_runs(store: Store, delay: Any) -> None:
    async with Client(store) as client:
        job = await client.submit(render, 1, delay=delay)
        kept = await client.submit(render, 2)
        assert await job.cancel() is True
        assert (await job.info()).state == "cancelled"
        with pytest.raises(JobCancelledError, match=job.id):
            await job.result(timeout=5)
        assert await job.cancel() is False  # finished already
        assert [claim.id for claim in await store.claim("consumer-1", ["default"], 5)] == [kept.id]
        stats = await client.stats()
        assert (stats.ready_main, stats.delayed) == (0, 0)


async def test_a_running_job_cancelled_is_asked_of_its_holder_and_ends_cancelled(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(render, 1)
        [claim] = await store.claim("consumer-1", ["default"], 1)
        assert await job.cancel() is True
        assert (await job.info()).state == "running"
        # The holder learns of it at its next renewal and records the cancellation.
        me = ConsumerInfo(id="consumer-1", host="here", pid=1, started_at=0.0, capacity=1, running=1, heartbeat_at=0.0)
        assert job.id in (await store.renew(me, [claim.hold])).cancelled
        assert await store.complete([Outcome(lease=claim.hold, state="cancelled")]) == [True]
        with pytest.raises(JobCancelledError):
            await job.result(timeout=5)


async def test_stats_count_each_lane_and_queue(store: Store) -> None:
    async with Client(store) as client:
        await client.submit(render, 1, priority=True)
        await client.submit(render, 2)
        await client.submit(render, 3)
        await client.submit(render, 4, delay=60)
        await client.submit(publish, 5)
        stats = await client.stats()
        assert (stats.ready_priority, stats.ready_main, stats.delayed, stats.running, stats.dead) == (1, 2, 1, 0, 0)
        await store.claim("consumer-1", ["default"], 1)
        stats = await client.stats("default")
        assert (stats.ready_priority, stats.ready_main, stats.running) == (0, 2, 1)
        reports = await client.stats("reports")
        assert (reports.ready_priority, reports.ready_main, reports.delayed, reports.running) == (0, 1, 0, 0)
        empty = await client.stats("nothing-here")
        assert (empty.ready_priority, empty.ready_main, empty.delayed, empty.running, empty.dead) == (0, 0, 0, 0, 0)


async def test_a_handle_by_id_is_the_same_job(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(render, 5)
        handle = client.job(job.id)
        assert handle.id == job.id
        assert (await handle.info()).name == "client.render"
        await finish(store, "five")
        assert await handle == "five"
        assert await job == "five"


def test_reprs_show_the_ids() -> None:
    store = MemoryStore()
    client = Client(store, submit_timeout=2.5)
    assert repr(client) == f"<Client store={store!r} submit_timeout=2.5>"
    job: Job[Any] = client.job("0123abcd")
    assert repr(job) == "<Job id='0123abcd'>"


async def test_a_closed_client_refuses_work_and_its_handles_keep_working(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(render, 1)
    assert repr(client).endswith(" closed>")
    for call in (lambda: client.submit(render, 2), client.stats, lambda: client.requeue_dead(job.id)):
        with pytest.raises(RuntimeError, match="closed"):
            await call()
    with pytest.raises(RuntimeError, match="closed"):
        client.job(job.id)
    with pytest.raises(RuntimeError, match="closed"):
        async with client:
            pass
    await finish(store, "one")
    assert await job.result(timeout=5) == "one"


@pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf, "10", True])
def test_a_bad_submit_timeout_is_refused(timeout: Any) -> None:
    with pytest.raises(ConfigError, match="submit_timeout"):
        Client(MemoryStore(), submit_timeout=timeout)


def test_a_client_needs_a_store() -> None:
    with pytest.raises(TypeError, match="Store"):
        Client(object())  # type: ignore[arg-type]


async def test_submit_needs_a_task_or_a_name(store: Store) -> None:
    async with Client(store) as client:
        with pytest.raises(TypeError, match="DurableTask"):
            await client.submit(render.fn, 1)  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="non-empty"):
            await client.submit("", 1)
        assert await store.queue_names() == []


@pytest.mark.parametrize(("job_id", "error"), [("", ValueError), (None, TypeError), (12, TypeError)])
async def test_a_bad_job_id_is_refused(store: Store, job_id: Any, error: type[Exception]) -> None:
    async with Client(store) as client:
        with pytest.raises(error, match="job_id"):
            client.job(job_id)
        with pytest.raises(error, match="job_id"):
            await client.requeue_dead(job_id)
