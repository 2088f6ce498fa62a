"""Durable events (§11.4): ``JobEvent``s reach the manager's hooks as jobs are delivered, recorded, given back."""

from __future__ import annotations

import uuid

import anyio

from tasker_async.durable import Client, Store
from tasker_async.durable._stores.records import NewJob

from ._doubles import JobEvents, Lab, eventually, in_state, serving


async def test_a_run_tells_delivered_then_acked_to_a_hook_added_later(store: Store) -> None:
    lab = Lab()
    events = JobEvents()
    async with Client(store) as client, serving(store, lab) as node:
        node.manager.add_hook(events)
        job = await client.submit(lab.echo, 1)
        assert await job.result(timeout=10) == 1
        await eventually(lambda: ("acked", 1) in events.of(job.id), "acked told")
    assert events.of(job.id) == [("delivered", 1), ("acked", 1)]
    delivered = events.events[0]
    assert (delivered.name, delivered.queue) == (lab.echo.name, "default")


async def test_a_kill_tells_released_and_the_next_start_tells_redelivered(store: Store) -> None:
    lab = Lab()
    first, second = JobEvents(), JobEvents()
    async with Client(store) as client:
        async with serving(store, lab, name="A") as a:
            a.manager.add_hook(first)
            job = await client.submit(lab.hold, "x")
            await eventually(lambda: lab.starts("x") == 1, "started")
            await a.consumer.kill()
            await eventually(lambda: "released" in [kind for kind, _ in first.of(job.id)], "released told")
        assert first.of(job.id) == [("delivered", 1), ("released", 1)]
        # The job is in the store before this manager starts: its hook is in the config.
        async with serving(store, lab, name="B", hooks=[second]):
            assert await job.result(timeout=10) == "x"
            await eventually(lambda: ("acked", 2) in second.of(job.id), "acked told")
    assert second.of(job.id) == [("redelivered", 2), ("acked", 2)]


async def test_a_dead_letter_tells_dead(store: Store) -> None:
    lab = Lab()
    events = JobEvents()
    bad_id = uuid.uuid4().hex
    await store.enqueue(NewJob(id=bad_id, name=lab.echo.name, queue="default", payload=b"\x00 not a payload"))
    async with serving(store, lab, hooks=[events]):
        await eventually(lambda: "dead" in [kind for kind, _ in events.of(bad_id)], "dead told")
    told = [event for event in events.events if event.job_id == bad_id]
    assert (told[-1].kind, told[-1].name, told[-1].queue) == ("dead", lab.echo.name, "default")
    assert "acked" not in [event.kind for event in told]


async def test_a_job_given_back_unstarted_tells_released_only(store: Store) -> None:
    lab = Lab()
    events = JobEvents()
    async with Client(store) as client, serving(store, lab, prefetch=1, hooks=[events]) as node:
        running = await client.submit(lab.hold, "running")
        await eventually(lambda: lab.starts("running") == 1, "the one worker busy")
        spare = await client.submit(lab.hold, "spare")

        async def prefetched() -> bool:
            return (await spare.info()).state == "running"

        await eventually(prefetched, "the spare job held unstarted")
        async with anyio.create_task_group() as group:
            group.start_soon(node.consumer.stop)
            await eventually(lambda: in_state(spare, "queued"), "the spare job given back")
            lab.open("running")
    # Never started, so never delivered: given back, and nothing else.
    assert [kind for kind, _ in events.of(spare.id)] == ["released"]
    assert [kind for kind, _ in events.of(running.id)] == ["delivered", "acked"]
