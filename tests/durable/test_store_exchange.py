"""``complete_and_claim``: a busy consumer records outcomes and takes its next jobs in one store call."""

from __future__ import annotations

from collections.abc import Sequence

from tasker_async.durable import Client, Store
from tasker_async.durable._stores.records import Claim, Outcome

from ._doubles import Lab, OutageStore, eventually, serving
from .test_store_protocol import claim_one, info_of, new_job, succeeded


async def test_outcomes_are_recorded_and_jobs_claimed_in_one_step(store: Store) -> None:
    first = await store.enqueue(new_job())
    held = await claim_one(store)
    assert held.id == first
    later = [await store.enqueue(new_job()) for _ in range(3)]
    recorded, claims = await store.complete_and_claim([succeeded(held.hold, b"7")], "c1", ["default"], 2)
    assert recorded == [True]
    assert [claim.id for claim in claims] == later[:2]  # in ready order, up to the limit
    assert (await info_of(store, first)).state == "succeeded"
    assert all(claim.deliveries == 1 for claim in claims)
    # The same lease again is refused: its outcome is recorded already.
    recorded, claims = await store.complete_and_claim([succeeded(held.hold, b"8")], "c1", ["default"], 0)
    assert (recorded, claims) == ([False], [])
    assert (await store.wait(first, 1.0)).result == b"7"


async def test_a_refused_outcome_does_not_stop_the_claim(store: Store) -> None:
    await store.enqueue(new_job())
    held = await claim_one(store)
    await store.release([held.hold], started=False)
    retaken = await claim_one(store)  # a fresh token: the first hold is stale
    waiting = await store.enqueue(new_job())
    recorded, claims = await store.complete_and_claim([succeeded(held.hold)], "c2", ["default"], 5)
    assert recorded == [False]
    assert [claim.id for claim in claims] == [waiting]
    assert (await info_of(store, retaken.id)).state == "running"


class CountingStore(OutageStore):
    """Counts every store method by its own name (``OutageStore`` files the combined call under what it does first)."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.calls: dict[str, int] = {}

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        self.calls["complete"] = self.calls.get("complete", 0) + 1
        return await super().complete(outcomes)

    async def complete_and_claim(
        self, outcomes: Sequence[Outcome], consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False
    ) -> tuple[list[bool], list[Claim]]:
        self.calls["complete_and_claim"] = self.calls.get("complete_and_claim", 0) + 1
        return await super().complete_and_claim(outcomes, consumer, queues, limit, waits=waits)


async def test_a_running_consumer_carries_its_outcomes_with_its_claims(store: Store) -> None:
    counting = CountingStore(store)
    lab = Lab()
    async with Client(store) as client:
        jobs = [await client.submit(lab.echo, index) for index in range(20)]
        async with serving(counting, lab, workers=2) as node:
            await eventually(lambda: node.consumer.stats().acked == 20, "every outcome recorded")
            assert [await job.result(timeout=5) for job in jobs] == list(range(20))
            # While the claim loop runs, no outcome goes to the store on its own.
            assert counting.calls.get("complete", 0) == 0
            assert counting.calls["complete_and_claim"] >= 1
