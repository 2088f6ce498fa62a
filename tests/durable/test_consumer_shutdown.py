"""Shutdown (§11.3.12): stop() drains and gives back what it did not start; kill() gives back at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio

from tasker_async.durable import Client, Job, JobLostError, Store

from ._doubles import Lab, eventually, in_state, serving, state_of, type_name


async def test_stop_gives_back_unstarted_jobs_uncounted_and_lets_the_running_one_finish(store: Store) -> None:
    lab = Lab()
    async with Client(store) as client:
        async with serving(store, lab, workers=1, prefetch=2) as node:
            running = await client.submit(lab.hold, "running")
            await eventually(lambda: lab.starts("running") == 1, "the one worker busy")
            spare = [await client.submit(lab.hold, f"spare{i}") for i in range(2)]

            async def holds_three() -> bool:
                return (await store.stats("default")).running == 3

            await eventually(holds_three, "the consumer holding its prefetch")
            async with anyio.create_task_group() as group:
                group.start_soon(node.consumer.stop)
                await eventually(lambda: all_queued(spare), "the unstarted jobs given back")
                assert [(await job.info()).deliveries for job in spare] == [0, 0]
                assert await state_of(running) == "running"
                late = await client.submit(lab.echo, "late")  # the consumer takes nothing new now
                lab.open("running")
            # stop() returned: the running job has finished and its outcome is recorded.
            info = await running.info()
            assert info.state == "succeeded"
            assert info.deliveries == 1
            assert await state_of(late) == "queued"
        assert lab.order == ["running"]
        lab.open("spare0", "spare1")
        async with serving(store, lab, name="B"):
            assert [await job.result(timeout=10) for job in spare] == ["spare0", "spare1"]
        assert [(await job.info()).deliveries for job in spare] == [1, 1]


async def all_queued(jobs: Sequence[Job[Any]]) -> bool:
    """Whether every job is back in the queue."""
    return all([await in_state(job, "queued") for job in jobs])


async def test_leaving_async_with_lets_the_running_job_finish(store: Store) -> None:
    lab = Lab()
    async with Client(store) as client:
        async with serving(store, lab):
            job = await client.submit(lab.hold, "x")
            await eventually(lambda: lab.starts("x") == 1, "started")
        # Leaving opened the gate, then stopped the consumer, which waited for the run and recorded it.
        info = await job.info()
    assert info.state == "succeeded"
    assert info.deliveries == 1
    assert lab.finished == ["x"]


async def test_kill_gives_running_jobs_back_at_once_and_once_jobs_end_lost(store: Store) -> None:
    lab = Lab()
    async with Client(store) as client:
        async with serving(store, lab, workers=2) as a:
            plain = await client.submit(lab.hold, "plain")
            once = await client.submit(lab.hold, "once", once=True)
            await eventually(lambda: len(lab.runs) == 2, "both started")
            await a.consumer.kill()
            plain_info, once_info = await plain.info(), await once.info()
            await eventually(lambda: sorted(lab.cancelled) == ["once", "plain"], "both runs cancelled")
        assert plain_info.state == "queued"
        assert plain_info.deliveries == 1
        assert once_info.state == "failed"
        assert once_info.error is not None
        assert once_info.error.type == type_name(JobLostError)
        async with serving(store, lab, name="B") as b:
            assert await plain.result(timeout=10) == "plain"
        info = await plain.info()
    assert info.deliveries == 2
    assert info.consumer == b.consumer.id
    assert sorted(lab.order) == ["once", "plain", "plain"]
    assert lab.order[-1] == "plain"
