"""Back-pressure (§11.3.11): a consumer holds only what its manager can start, and bursts for the shared backlog."""

from __future__ import annotations

import pytest

from tasker_async import BacklogPolicy
from tasker_async.durable import Client, Store

from ._doubles import Lab, eventually, second_handle, serving, state_of
from .conftest import StoreKit


@pytest.mark.parametrize("prefetch", [0, 2])
async def test_a_busy_consumer_holds_at_most_prefetch_unstarted_jobs(store: Store, prefetch: int) -> None:
    # Short leases: the consumer must renew (and so heartbeat) several times a second while it holds jobs.
    lab = Lab(lease=0.3)
    async with Client(store) as client, serving(store, lab, workers=2, prefetch=prefetch) as node:
        busy = [await client.submit(lab.hold, f"busy{i}") for i in range(2)]
        await eventually(lambda: len(lab.runs) == 2, "both workers busy")
        waiting = [await client.submit(lab.hold, f"wait{i}") for i in range(10)]
        heartbeats: set[float] = set()

        async def held_for_a_while() -> bool:
            # Checked at every look: never more than the busy workers' jobs plus the prefetch.
            stats = await store.stats("default")
            assert stats.running <= 2 + prefetch, stats
            assert stats.ready_main >= 10 - prefetch, stats
            held = node.consumer.stats()
            assert held.prefetched <= prefetch, held
            assert held.running <= 2, held
            heartbeats.update(c.heartbeat_at for c in stats.consumers if c.id == node.consumer.id)
            return len(heartbeats) >= 4 and stats.running == 2 + prefetch

        await eventually(held_for_a_while, f"holding the 2 running and {prefetch} prefetched through 4 heartbeats")
        assert len(lab.runs) == 2
        lab.open_all()
        results = [await job.result(timeout=10) for job in busy + waiting]
        infos = [await job.info() for job in busy + waiting]
    assert results == [f"busy{i}" for i in range(2)] + [f"wait{i}" for i in range(10)]
    assert all(info.deliveries == 1 for info in infos)


async def test_idle_consumers_share_the_work(kit: StoreKit, store: Store) -> None:
    lab = Lab()
    async with (
        Client(store) as client,
        serving(store, lab, name="A") as a,
        second_handle(kit, store) as other,
        serving(other, lab, name="B") as b,
    ):
        jobs = [await client.submit(lab.hold, f"j{i}") for i in range(2)]
        # One free worker each and no prefetch: neither may take both.
        await eventually(lambda: len(lab.runs) == 2, "both jobs started")
        holders = {(await job.info()).consumer for job in jobs}
        assert holders == {a.consumer.id, b.consumer.id}
        assert sorted(run.resource for run in lab.runs) == ["A0", "B0"]
        lab.open_all()
        assert [await job.result(timeout=10) for job in jobs] == ["j0", "j1"]


async def test_burst_workers_join_for_the_shared_backlog_and_retire_after(store: Store) -> None:
    lab = Lab()
    policy = BacklogPolicy(threshold=1, step=1, cooldown=0.0, idle_grace=0.0)
    async with (
        Client(store) as client,
        serving(store, lab, workers=1, max_worker_count=3, scaling_policy=policy, burst_interval=0.02) as node,
    ):
        jobs = [await client.submit(lab.hold, f"j{i}") for i in range(6)]
        # The backlog stays in the store; the manager hears of it and adds workers, which then take jobs.
        await eventually(lambda: len(lab.runs) == 3, "two burst workers joined and took a job each")
        assert node.manager.stats().burst_workers == 2
        stats = await store.stats("default")
        assert (stats.running, stats.ready_main) == (3, 3)
        lab.open_all()
        assert [await job.result(timeout=10) for job in jobs] == [f"j{i}" for i in range(6)]
        await eventually(lambda: node.manager.stats().burst_workers == 0, "the burst workers retired")


async def test_a_consumer_takes_only_the_queues_it_serves(store: Store) -> None:
    lab = Lab()

    @lab.registry.task("backpressure.elsewhere", queue="other")
    async def elsewhere(resource: str, value: int) -> int:
        lab.record(str(value), resource)
        return value

    async with Client(store) as client, serving(store, lab, queues=("other",)):
        skipped = await client.submit(lab.echo, 1)
        served = await client.submit(elsewhere, 2)
        assert await served.result(timeout=10) == 2
        assert await state_of(skipped) == "queued"
    assert lab.order == ["2"]
