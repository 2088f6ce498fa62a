"""``Job.result()``: each final state becomes a value or its error; timeouts leave the job alone."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest

from tasker_async.durable import (
    Client,
    DeadLetterError,
    ErrorInfo,
    JobCancelledError,
    JobFailedError,
    JobLostError,
    Registry,
    Store,
    UnknownTaskError,
)
from tasker_async.durable._model.records import qualified_name
from tasker_async.durable._stores.records import Claim, Outcome, OutcomeState

registry = Registry()


class Page:
    """The resource the tasks take first."""


@registry.task("results.count")
async def count(page: Page, n: int) -> dict[str, list[int]]:
    return {"n": list(range(n))}


@registry.task("results.brief", max_deliveries=1, lease=0.2)
async def brief(page: Page) -> None:
    return None


async def take(store: Store, queue: str = "default") -> Claim:
    """Take the one ready job of ``queue``, as a consumer would."""
    [claim] = await store.claim("consumer-1", [queue], 1)
    return claim


async def record(store: Store, claim: Claim, state: OutcomeState, **fields: Any) -> None:
    assert await store.complete([Outcome(lease=claim.hold, state=state, **fields)]) == [True]


async def reclaim_expired(store: Store) -> None:
    """Wait until the store takes back an expired lease."""
    with anyio.fail_after(5):
        while await store.reclaim() == 0:  # noqa: ASYNC110 - a lease expires on the store's clock
            await anyio.sleep(0.02)


def failure(kind: type[BaseException], message: str) -> ErrorInfo:
    try:
        raise kind(message)
    except BaseException as exc:
        return ErrorInfo.from_exception(exc)


async def test_a_success_gives_the_decoded_result(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(count, 3)
        await record(store, await take(store), "succeeded", result=store.serializer.dumps({"n": [0, 1, 2]}))
        assert await job.result() == {"n": [0, 1, 2]}
        assert await job.result(timeout=0) == {"n": [0, 1, 2]}  # finished: no wait needed
        info = await job.info()
        assert (info.state, info.deliveries, info.consumer) == ("succeeded", 1, "consumer-1")
        assert info.finished_at is not None


async def test_a_failure_raises_job_failed_error_carrying_the_error(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(count, 3)
        error = failure(ValueError, "no such report")
        await record(store, await take(store), "failed", error=error)
        with pytest.raises(JobFailedError, match=r"builtins\.ValueError: no such report") as caught:
            await job.result(timeout=5)
        assert type(caught.value) is JobFailedError
        assert caught.value.error == error
        assert job.id in str(caught.value)
        assert "results.count" in str(caught.value)
        # The task's own traceback is shown under the local one.
        assert any("raise kind(message)" in note for note in caught.value.__notes__)
        assert (await job.info()).error == error


@pytest.mark.parametrize("kind", [JobLostError, UnknownTaskError])
async def test_failures_of_the_durable_layer_raise_their_own_class(store: Store, kind: type[JobFailedError]) -> None:
    async with Client(store) as client:
        job = await client.submit("results.other")
        error = ErrorInfo(qualified_name(kind), "why")
        await record(store, await take(store), "failed", error=error)
        with pytest.raises(kind) as caught:
            await job.result(timeout=5)
        assert caught.value.error == error
        assert not getattr(caught.value, "__notes__", [])  # no traceback recorded, none shown


async def test_a_once_job_whose_run_was_cut_short_raises_job_lost_error(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(brief, once=True)
        await take(store)
        await reclaim_expired(store)
        with pytest.raises(JobLostError) as caught:
            await job.result(timeout=5)
        assert caught.value.error.type == qualified_name(JobLostError)
        assert await store.claim("consumer-2", ["default"], 5) == []


async def test_a_job_delivered_max_deliveries_times_is_dead_and_can_be_requeued(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(brief)
        await take(store)
        await reclaim_expired(store)
        with pytest.raises(DeadLetterError, match="requeue_dead") as caught:
            await job.result(timeout=5)
        assert job.id in str(caught.value)
        assert (await client.stats()).dead == 1
        assert await client.requeue_dead(job.id) is True
        assert await client.requeue_dead(job.id) is False  # not dead any more
        info = await job.info()
        assert (info.state, info.deliveries) == ("queued", 0)
        assert (await client.stats()).dead == 0
        await record(store, await take(store), "succeeded", result=store.serializer.dumps(None))
        assert await client.job(job.id).result(timeout=5) is None


async def test_a_job_recorded_dead_raises_dead_letter_error_with_its_reason(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(count, 1)
        error = ErrorInfo(qualified_name(DeadLetterError), "the payload cannot be decoded")
        await record(store, await take(store), "dead", error=error)
        # A requeue alone would only bring it back dead: the message asks for the cause to be fixed first.
        with pytest.raises(DeadLetterError, match="the payload cannot be decoded; once its cause is fixed, "):
            await job
        assert (await job.info()).error == error


async def test_a_cancelled_job_raises_job_cancelled_error(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(count, 1)
        await record(store, await take(store), "cancelled")
        with pytest.raises(JobCancelledError):
            await job.result(timeout=5)


async def test_a_result_timeout_raises_timeout_error_and_the_job_carries_on(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit(count, 2)
        with pytest.raises(TimeoutError, match=job.id):
            await job.result(timeout=0.05)
        with pytest.raises(TimeoutError):
            await job.result(timeout=0)
        assert (await job.info()).state == "queued"
        claim = await take(store)
        with pytest.raises(TimeoutError):
            await job.result(timeout=0.05)
        assert (await job.info()).state == "running"
        await record(store, claim, "succeeded", result=store.serializer.dumps({"n": [0, 1]}))
        assert await job.result(timeout=5) == {"n": [0, 1]}


async def test_a_result_waits_for_the_outcome(store: Store) -> None:
    async with Client(store) as client, anyio.create_task_group() as tg:
        job = await client.submit(count, 1)
        results: list[Any] = []

        async def wait() -> None:
            results.append(await job.result(timeout=10))

        tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        assert results == []
        await record(store, await take(store), "succeeded", result=store.serializer.dumps({"n": [0]}))
    assert results == [{"n": [0]}]


@pytest.mark.parametrize("timeout", [-1, math.nan, math.inf, "1", True])
async def test_a_bad_result_timeout_is_refused(store: Store, timeout: Any) -> None:
    async with Client(store) as client:
        job = await client.submit(count, 1)
        with pytest.raises(ValueError, match="timeout"):
            await job.result(timeout=timeout)


async def test_an_unknown_id_raises_lookup_error_naming_it(store: Store) -> None:
    async with Client(store) as client:
        job = client.job("no-such-job")
        with pytest.raises(LookupError, match="no-such-job"):
            await job.result(timeout=5)
        with pytest.raises(LookupError, match="no-such-job"):
            await job.info()
        assert await job.cancel() is False
        assert await client.requeue_dead("no-such-job") is False
