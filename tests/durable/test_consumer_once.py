"""``once=True`` is at most once (§11.3.6): never run twice, lost runs end ``failed`` with ``JobLostError``."""

from __future__ import annotations

import pytest

from tasker_async import RetryableError
from tasker_async.durable import Client, JobFailedError, JobLostError, Store

from ._doubles import Lab, OutageStore, eventually, second_handle, serving, type_name
from .conftest import StoreKit


async def test_a_once_job_runs_and_records_its_result(store: Store) -> None:
    lab = Lab()
    async with Client(store) as client, serving(store, lab):
        job = await client.submit(lab.echo, "one", once=True)
        assert await job.result(timeout=10) == "one"
        info = await job.info()
    assert info.state == "succeeded"
    assert info.deliveries == 1
    assert lab.starts("one") == 1


async def test_a_once_job_killed_mid_run_is_lost_at_once_and_never_runs_again(store: Store) -> None:
    lab = Lab()
    async with Client(store) as client:
        async with serving(store, lab, name="A") as a:
            job = await client.submit(lab.hold, "once", once=True)
            await eventually(lambda: lab.starts("once") == 1, "started")
            await a.consumer.kill()
            info = await job.info()  # at once on kill, no lease to wait out
            await eventually(lambda: lab.cancelled == ["once"], "the run cancelled")
        assert info.state == "failed"
        assert info.deliveries == 1
        assert info.error is not None
        assert info.error.type == type_name(JobLostError)
        with pytest.raises(JobLostError) as caught:
            await job.result(timeout=10)
        assert caught.value.error == info.error
        # A fresh consumer runs what comes after it, and never the lost job.
        async with serving(store, lab, name="B"):
            probe = await client.submit(lab.echo, "probe")
            assert await probe.result(timeout=10) == "probe"
        assert (await job.info()).state == "failed"
    assert lab.order == ["once", "probe"]


async def test_a_once_job_whose_consumer_went_silent_is_lost_after_its_lease(kit: StoreKit, store: Store) -> None:
    lab = Lab()
    runs: list[str] = []

    @lab.registry.task("once.stuck", lease=0.5)
    async def stuck(resource: str) -> str:
        runs.append(resource)
        await lab.gate("x").wait()
        return resource

    cut = OutageStore(store)
    async with Client(store) as client, serving(cut, lab, name="A") as a:
        job = await client.submit(stuck, once=True)
        await eventually(lambda: runs == ["A0"], "started on A")
        cut.down = True  # as if A died: no renewal
        async with second_handle(kit, store) as other, serving(other, lab, name="B"):
            with pytest.raises(JobLostError):
                await job.result(timeout=10)
        # A comes back and its run ends: too late to record anything.
        cut.down = False
        lab.open("x")
        await a.consumer.stop()
        info = await job.info()
    assert runs == ["A0"]
    assert info.state == "failed"
    assert info.error is not None
    assert info.error.type == type_name(JobLostError)


async def test_a_once_job_is_not_retried_within_its_delivery(store: Store) -> None:
    lab = Lab()
    runs: list[str] = []

    @lab.registry.task("once.limited")
    async def limited(resource: str) -> None:
        runs.append(resource)
        raise RetryableError("rate limited")

    async with Client(store) as client, serving(store, lab, max_retries=3):
        job = await client.submit(limited, once=True)
        with pytest.raises(JobFailedError) as caught:
            await job.result(timeout=10)
    assert caught.value.error.type == type_name(RetryableError)
    assert runs == ["A0"]
