"""Leases (§11.3.3): renewed while the holder lives; a silent holder's job goes to another consumer in time."""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio
import pytest

from tasker_async.durable import Client, ConsumerInfo, Store
from tasker_async.durable._stores.records import Claim, Lease, Outcome, Renewal

from ._doubles import Lab, OutageStore, eventually, second_handle, serving
from .conftest import StoreKit

LEASE = 0.3


async def test_a_job_running_ten_leases_is_delivered_once(kit: StoreKit, store: Store) -> None:
    lab = Lab(lease=LEASE)
    # A second, idle consumer would take the job the moment its lease lapsed.
    async with (
        Client(store) as client,
        serving(store, lab, name="A"),
        second_handle(kit, store) as other,
        serving(other, lab, name="B"),
    ):
        job = await client.submit(lab.hold, "long")
        await eventually(lambda: lab.starts("long") == 1, "started")
        first = await job.info()
        assert first.started_at is not None
        holder = first.consumer
        heartbeats: set[float] = set()
        # Hold the run until the engine's clock says it has run ten leases; at every look it is still
        # the first delivery, on the same consumer, and the holder's heartbeat (its renewals) moves on.
        while time.time() - first.started_at < 10 * LEASE:
            info = await job.info()
            assert (info.state, info.deliveries, info.consumer) == ("running", 1, holder), info
            stats = await store.stats("default")
            heartbeats.update(c.heartbeat_at for c in stats.consumers if c.id == holder)
            await anyio.sleep(LEASE / 6)
        lab.open("long")
        assert await job.result(timeout=10) == "long"
        info = await job.info()
    assert lab.starts("long") == 1
    assert info.deliveries == 1
    assert info.consumer == holder
    # At least one renewal per lease was needed; every renewal is a heartbeat.
    assert len(heartbeats) >= 5, heartbeats


async def test_a_silent_consumers_job_goes_to_another_within_one_and_a_half_leases(kit: StoreKit, store: Store) -> None:
    # Long enough that the engine's and the loop's latencies fit well within the half lease allowed.
    lease = 1.0
    lab = Lab()

    # On A's resources the run waits for the test; on B's it returns at once.
    @lab.registry.task("leases.stuck_on_a", lease=lease)
    async def stuck_on_a(resource: str) -> str:
        lab.record("x", resource)
        if resource.startswith("A"):
            await lab.gate("x").wait()
        return resource

    cut = OutageStore(store)
    async with Client(store) as client, serving(cut, lab, name="A"):
        job = await client.submit(stuck_on_a)
        await eventually(lambda: lab.starts("x") == 1, "started on A")
        async with second_handle(kit, store) as other, serving(other, lab, name="B"):
            # A stops reaching the engine (no renewal, no heartbeat) while its run goes on: as if it died.
            cut.down = True
            silent_at = time.monotonic()
            assert await job.result(timeout=10) == "B0"
        taken_at = next(run.at for run in lab.runs if run.resource.startswith("B"))
        cut.down = False
        info = await job.info()
    assert taken_at - silent_at <= 1.5 * lease, f"taken over {taken_at - silent_at:.3f} s after A went silent"
    assert info.deliveries == 2
    assert info.state == "succeeded"


class RacingStore(OutageStore):
    """A renewal that reaches the engine after an outcome sent before it: the engine no longer holds that
    job's lease, so the renewal reports it lost, while the outcome's own answer is still on its way."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.outcome_sent = anyio.Event()
        self.renewed_after = anyio.Event()
        self.in_flight: set[str] = set()

    async def complete_and_claim(
        self, outcomes: Sequence[Outcome], consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False
    ) -> tuple[list[bool], list[Claim]]:
        if not outcomes:
            return await super().complete_and_claim(outcomes, consumer, queues, limit, waits=waits)
        recorded = await self.inner.complete(outcomes)
        self.in_flight.update(outcome.lease.job_id for outcome in outcomes)
        self.outcome_sent.set()
        await self.renewed_after.wait()  # the answer comes back after the renewal's
        return recorded, await self.inner.claim(consumer, queues, limit, waits=waits)

    async def renew(self, consumer: ConsumerInfo, leases: Sequence[Lease]) -> Renewal:
        renewal = await self.inner.renew(consumer, leases)
        if self.in_flight:
            self.renewed_after.set()
        return renewal


async def test_a_lease_reported_lost_while_its_outcome_is_on_its_way_is_not_a_lost_run(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    lab = Lab(lease=LEASE)
    racing = RacingStore(store)
    async with Client(store) as client, serving(racing, lab) as node:
        job = await client.submit(lab.echo, 7)
        assert await job.result(timeout=10) == 7
    assert racing.renewed_after.is_set()
    assert node.consumer.stats().lost == 0
    assert "lost its lease" not in caplog.text
