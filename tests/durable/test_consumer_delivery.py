"""At least once, one outcome (§11.3.2) and outcomes (§11.3.5): what a running consumer records, on every store."""

from __future__ import annotations

import pytest

from tasker_async import MaxRetriesExceededError, PermanentError, RetryableError, TaskTimeoutError
from tasker_async.durable import Client, JobFailedError, Store

from ._doubles import Lab, OutageStore, eventually, second_handle, serving, type_name
from .conftest import StoreKit


class Errors:
    """A namespace, so the recorded type shows the qualified name, not the bare class name."""

    class Boom(Exception):
        """A task's own error."""


class Broken(Exception):
    """The worker's resource is bad: ``check_health`` says so."""


async def test_a_result_is_recorded_once_with_who_ran_it(store: Store) -> None:
    lab = Lab()
    async with Client(store) as client, serving(store, lab) as node:
        job = await client.submit(lab.echo, {"n": [1, 2]})
        assert await job.result(timeout=10) == {"n": [1, 2]}
        info = await job.info()
    assert info.state == "succeeded"
    assert info.deliveries == 1
    assert info.consumer == node.consumer.id
    assert info.error is None
    assert info.started_at is not None
    assert info.finished_at is not None
    assert info.created_at <= info.started_at <= info.finished_at
    assert len(lab.runs) == 1


async def test_a_task_error_is_recorded_as_its_qualified_type_message_and_traceback(store: Store) -> None:
    lab = Lab()

    @lab.registry.task("delivery.boom")
    async def boom(resource: str, n: int) -> int:
        raise Errors.Boom(f"bad {n}")

    async with Client(store) as client, serving(store, lab):
        job = await client.submit(boom, 7)
        with pytest.raises(JobFailedError) as caught:
            await job.result(timeout=10)
        info = await job.info()
    assert type(caught.value) is JobFailedError
    error = caught.value.error
    assert error.type == f"{__name__}.Errors.Boom"
    assert error.message == "bad 7"
    assert "in boom" in error.traceback
    assert "Boom: bad 7" in error.traceback
    assert info.state == "failed"
    assert info.error == error
    assert info.deliveries == 1


async def test_a_holder_that_lost_its_lease_cannot_record_over_the_new_holder(kit: StoreKit, store: Store) -> None:
    lab = Lab()

    # On A's resources the run waits for the test; on B's it returns at once.
    @lab.registry.task("delivery.stuck_on_a", lease=0.5)
    async def stuck_on_a(resource: str) -> str:
        lab.record("x", resource)
        if resource.startswith("A"):
            await lab.gate("x").wait()
        lab.finished.append(resource)
        return resource

    cut = OutageStore(store)
    async with Client(store) as client, serving(cut, lab, name="A") as a:
        job = await client.submit(stuck_on_a)
        await eventually(lambda: lab.starts("x") == 1, "started on A")
        cut.down = True  # A can no longer renew: its lease runs out while its run goes on
        async with second_handle(kit, store) as other, serving(other, lab, name="B") as b:
            assert await job.result(timeout=10) == "B0"
            recorded = await job.info()
        lab.open("x")  # A's run ends; A holds its outcome, unable to record it yet
        await eventually(lambda: lab.finished == ["B0", "A0"], "A's run over")
        await eventually(lambda: cut.failed["complete"] >= 1, "A trying to record")
        # The engine answers A's recording before anything could tell A it lost the lease.
        cut.spared = frozenset({"complete"})
        await eventually(lambda: cut.served["complete"] >= 1, "A's recording reaching the engine")
        cut.down = False
        await a.consumer.stop()
        after = await job.info()
        assert await job.result(timeout=10) == "B0"
    assert recorded.consumer == b.consumer.id
    assert recorded.deliveries == 2
    assert after == recorded
    assert [run.resource for run in lab.runs] == ["A0", "B0"]


async def test_a_retryable_error_is_retried_within_one_delivery(store: Store) -> None:
    lab = Lab()
    calls: list[str] = []

    @lab.registry.task("delivery.flaky")
    async def flaky(resource: str, failures: int) -> int:
        calls.append(resource)
        if len(calls) <= failures:
            raise RetryableError("rate limited")
        return len(calls)

    async with Client(store) as client, serving(store, lab, max_retries=3):
        job = await client.submit(flaky, 2)
        assert await job.result(timeout=10) == 3
        info = await job.info()
    assert info.deliveries == 1
    assert calls == ["A0", "A0", "A0"]  # no replacement: the resource was healthy


async def test_an_unhealthy_resource_is_replaced_and_the_run_retried_within_one_delivery(store: Store) -> None:
    lab = Lab()
    calls: list[str] = []

    @lab.registry.task("delivery.breaks_first")
    async def breaks_first(resource: str) -> str:
        calls.append(resource)
        if len(calls) == 1:
            raise Broken("connection reset")
        return resource

    async with Client(store) as client, serving(store, lab, check_health=lambda exc: not isinstance(exc, Broken)):
        job = await client.submit(breaks_first)
        assert await job.result(timeout=10) == "A1"
        info = await job.info()
    assert calls == ["A0", "A1"]
    assert info.state == "succeeded"
    assert info.deliveries == 1


async def test_a_permanent_error_fails_the_job_without_a_retry(store: Store) -> None:
    lab = Lab()
    calls: list[str] = []

    @lab.registry.task("delivery.refused")
    async def refused(resource: str) -> None:
        calls.append(resource)
        raise PermanentError("no such account")

    # check_health would call every error unhealthy: a PermanentError never reaches it.
    async with Client(store) as client, serving(store, lab, check_health=lambda exc: False, max_retries=3):
        job = await client.submit(refused)
        with pytest.raises(JobFailedError) as caught:
            await job.result(timeout=10)
        info = await job.info()
    assert caught.value.error.type == type_name(PermanentError)
    assert caught.value.error.message == "no such account"
    assert calls == ["A0"]
    assert info.state == "failed"
    assert info.deliveries == 1


async def test_used_up_retries_fail_the_job_with_max_retries_exceeded(store: Store) -> None:
    lab = Lab()
    calls: list[str] = []

    @lab.registry.task("delivery.always_limited")
    async def always_limited(resource: str) -> None:
        calls.append(resource)
        raise RetryableError("rate limited")

    async with Client(store) as client, serving(store, lab, max_retries=1):
        job = await client.submit(always_limited)
        with pytest.raises(JobFailedError) as caught:
            await job.result(timeout=10)
        info = await job.info()
    assert caught.value.error.type == type_name(MaxRetriesExceededError)
    assert len(calls) == 2
    assert info.deliveries == 1


async def test_the_manager_task_timeout_fails_the_job(store: Store) -> None:
    lab = Lab()
    async with Client(store) as client, serving(store, lab, task_timeout=0.1):
        job = await client.submit(lab.hold, "slow")
        with pytest.raises(JobFailedError) as caught:
            await job.result(timeout=10)
        info = await job.info()
    assert caught.value.error.type == type_name(TaskTimeoutError)
    assert lab.cancelled == ["slow"]
    assert info.state == "failed"
    assert info.deliveries == 1
