"""Cancel (§11.3.9): a running job's run is cancelled where it runs within 1 s; a queued one never runs."""

from __future__ import annotations

import time

import pytest

from tasker_async.durable import Client, JobCancelledError, Store

from ._doubles import Lab, eventually, serving, state_of


async def test_cancelling_a_running_job_cancels_its_run_within_a_second(store: Store) -> None:
    # The default lease (30 s): the cancel must not wait for a lease renewal to come round.
    lab = Lab()
    async with Client(store) as client, serving(store, lab):
        job = await client.submit(lab.hold, "c")
        await eventually(lambda: lab.starts("c") == 1, "started")
        asked = time.monotonic()
        assert await job.cancel() is True
        await eventually(lambda: lab.cancelled == ["c"], "the run cancelled", timeout=5)
        took = time.monotonic() - asked
        with pytest.raises(JobCancelledError):
            await job.result(timeout=10)
        info = await job.info()
        assert await job.cancel() is False  # finished already
        # The worker and its resource carry on.
        after = await client.submit(lab.echo, 1)
        assert await after.result(timeout=10) == 1
    assert took <= 1.0, f"the run was cancelled {took:.3f} s after the request"
    assert info.state == "cancelled"
    assert info.deliveries == 1
    assert lab.finished == ["1"]
    assert [run.resource for run in lab.runs] == ["A0", "A0"]


async def test_a_cancelled_queued_job_never_runs(store: Store) -> None:
    lab = Lab()
    async with Client(store) as client, serving(store, lab):
        blocker = await client.submit(lab.hold, "blocker")
        await eventually(lambda: lab.starts("blocker") == 1, "the one worker busy")
        queued = await client.submit(lab.hold, "queued")
        after = await client.submit(lab.echo, "after")
        assert await queued.cancel() is True
        assert await state_of(queued) == "cancelled"
        lab.open("blocker", "queued")
        assert await after.result(timeout=10) == "after"
        assert await blocker.result(timeout=10) == "blocker"
        with pytest.raises(JobCancelledError):
            await queued.result(timeout=10)
        info = await queued.info()
    assert lab.order == ["blocker", "after"]
    assert info.deliveries == 0
