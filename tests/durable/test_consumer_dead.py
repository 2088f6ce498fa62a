"""Dead letters and bad input at the consumer (§11.3.4, §11.3.10): the consumer dead-letters or fails, and goes on."""

from __future__ import annotations

import uuid

import pytest

from tasker_async.durable import Client, DeadLetterError, Store, UnknownTaskError
from tasker_async.durable._stores.records import NewJob

from ._doubles import Lab, eventually, serving, type_name


async def test_a_job_delivered_max_deliveries_times_without_an_outcome_goes_dead(store: Store) -> None:
    lab = Lab()

    # Each run waits at a gate of its own: x1, x2, x3.
    @lab.registry.task("dead.cut_short", max_deliveries=2)
    async def cut_short(resource: str) -> str:
        lab.record("x", resource)
        await lab.gate(f"x{lab.starts('x')}").wait()
        return resource

    async with Client(store) as client:
        job = await client.submit(cut_short)
        for delivery in (1, 2):
            # Each round a consumer starts the job and is killed mid-run: a delivery without an outcome.
            async with serving(store, lab, name=f"N{delivery}-") as node:
                await eventually(lambda: len(lab.runs) == delivery, f"delivery {delivery} started")  # noqa: B023
                await node.consumer.kill()
        with pytest.raises(DeadLetterError):
            await job.result(timeout=10)
        info = await job.info()
        assert info.state == "dead"
        assert info.deliveries == 2
        assert info.error is not None
        assert info.error.type == type_name(DeadLetterError)
        assert "delivered 2 times" in info.error.message
        assert (await client.stats()).dead == 1

        assert await client.requeue_dead(job.id) is True
        assert (await client.stats()).dead == 0
        lab.open("x3")
        async with serving(store, lab, name="N3-"):
            assert await job.result(timeout=10) == "N3-0"
        info = await job.info()
        assert info.state == "succeeded"
        assert info.deliveries == 1
        assert await client.requeue_dead(job.id) is False
    assert [run.resource for run in lab.runs] == ["N1-0", "N2-0", "N3-0"]


@pytest.mark.parametrize("payload", [b"\xff\xfe not a payload", b'{"args": "not a list"}'])
async def test_an_undecodable_payload_goes_dead_and_the_consumer_carries_on(store: Store, payload: bytes) -> None:
    lab = Lab()
    bad_id = uuid.uuid4().hex
    # Written past the client, as a producer with another serializer (or a bug) would.
    await store.enqueue(NewJob(id=bad_id, name=lab.echo.name, queue="default", payload=payload))
    async with Client(store) as client, serving(store, lab):
        good = await client.submit(lab.echo, 5)
        assert await good.result(timeout=10) == 5
        bad = client.job(bad_id)
        with pytest.raises(DeadLetterError):
            await bad.result(timeout=10)
        info = await bad.info()
        stats = await client.stats()
    assert info.state == "dead"
    assert info.error is not None
    assert "payload" in info.error.message
    assert stats.dead == 1
    assert lab.order == ["5"]  # the bad job never reached its task


async def test_an_unknown_task_name_fails_once_and_is_not_redelivered(store: Store) -> None:
    lab = Lab()
    async with Client(store) as client, serving(store, lab):
        job = await client.submit("nowhere.registered", 1)
        with pytest.raises(UnknownTaskError) as caught:
            await job.result(timeout=10)
        after = await client.submit(lab.echo, 2)
        assert await after.result(timeout=10) == 2
        info = await job.info()
        stats = await client.stats()
    assert caught.value.error.type == type_name(UnknownTaskError)
    assert "nowhere.registered" in caught.value.error.message
    assert info.state == "failed"
    assert info.deliveries == 1
    assert (stats.ready_main, stats.running, stats.dead) == (0, 0, 0)
