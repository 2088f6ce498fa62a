"""Order (§11.3.8, §11.3.15): priority lane first, then the order jobs became ready, delayed ones included."""

from __future__ import annotations

from tasker_async.durable import Client, Store

from ._doubles import Lab, eventually, in_state, serving, state_of


async def test_priority_first_then_ready_order_with_a_delayed_job_joining_when_its_delay_ends(store: Store) -> None:
    lab = Lab()
    delay = 0.4
    async with Client(store) as client, serving(store, lab) as node:
        blocker = await client.submit(lab.hold, "blocker")
        await eventually(lambda: lab.starts("blocker") == 1, "the one worker busy")
        jobs = [await client.submit(lab.echo, "delayed", delay=delay)]
        for label in ("m1", "p1", "m2", "p2"):
            jobs.append(await client.submit(lab.echo, label, priority=label.startswith("p")))
        # Submitted before the delay ended: they are ahead of the delayed job.
        assert await state_of(jobs[0]) == "delayed", "the machine was too slow for this test's delay"
        await eventually(lambda: in_state(jobs[0], "queued"), "the delay over")
        jobs.append(await client.submit(lab.echo, "m3"))
        lab.open("blocker")
        assert await blocker.result(timeout=10) == "blocker"
        for job in jobs:
            await job.result(timeout=10)
        assert node.manager.stats().running_tasks == 0
    assert lab.order == ["blocker", "p1", "p2", "m1", "m2", "delayed", "m3"]


async def test_a_delayed_job_does_not_start_before_its_delay(store: Store) -> None:
    lab = Lab()
    delay = 0.3
    async with Client(store) as client, serving(store, lab):
        job = await client.submit(lab.echo, "later", delay=delay)
        assert await job.result(timeout=10) == "later"
        info = await job.info()
    assert info.started_at is not None
    assert info.started_at - info.created_at >= delay - 1e-3, info
