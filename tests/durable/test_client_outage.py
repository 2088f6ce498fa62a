"""An engine that is down or does not answer: the client tries again with backoff, then gives up in time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import anyio
import pytest

from tasker_async.durable import (
    Client,
    ConsumerInfo,
    JobInfo,
    JobState,
    QueueStats,
    Registry,
    RunEvent,
    RunInfo,
    RunState,
    Store,
    StoreUnavailableError,
)
from tasker_async.durable._client.retry import FIRST_DELAY, LONGEST_DELAY, backoff_delay
from tasker_async.durable._stores.records import Claim, Finished, Lease, NewJob, NewRun, Outcome, Renewal, RunOutput

registry = Registry()


class Page:
    """The resource the tasks take first."""


@registry.task("outage.render")
async def render(page: Page, report_id: int) -> str:
    return str(report_id)


Mode = Literal["up", "down", "hang"]


class GatedStore:
    """Wraps a store: ``down`` makes each call raise ``StoreUnavailableError``, ``hang`` makes it never answer.

    ``lose_answers`` enqueues that get through but whose answer is lost (the error comes back
    all the same). Counts every call by method name. Entering and leaving it does nothing: the
    wrapped store is its owner's.
    """

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.serializer = inner.serializer
        self.mode: Mode = "up"
        self.lose_answers = 0
        self.calls: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    async def _gate(self, name: str) -> None:
        self.calls[name] += 1
        if self.mode == "hang":
            await anyio.sleep_forever()
        if self.mode == "down":
            self.failed[name] += 1
            raise StoreUnavailableError(f"the engine is down ({name})")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def enqueue(self, job: NewJob) -> str:
        await self._gate("enqueue")
        job_id = await self.inner.enqueue(job)
        if self.lose_answers:
            self.lose_answers -= 1
            raise StoreUnavailableError("the answer was lost on the way back")
        return job_id

    async def claim(self, consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False) -> list[Claim]:
        await self._gate("claim")
        return await self.inner.claim(consumer, queues, limit, waits=waits)

    async def renew(self, consumer: ConsumerInfo, leases: Sequence[Lease]) -> Renewal:
        await self._gate("renew")
        return await self.inner.renew(consumer, leases)

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        await self._gate("complete")
        return await self.inner.complete(outcomes)

    async def complete_and_claim(
        self, outcomes: Sequence[Outcome], consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False
    ) -> tuple[list[bool], list[Claim]]:
        await self._gate("complete_and_claim")
        return await self.inner.complete_and_claim(outcomes, consumer, queues, limit, waits=waits)

    async def release(self, leases: Sequence[Lease], *, started: bool) -> None:
        await self._gate("release")
        await self.inner.release(leases, started=started)

    async def cancel(self, job_id: str) -> bool:
        await self._gate("cancel")
        return await self.inner.cancel(job_id)

    async def reclaim(self) -> int:
        await self._gate("reclaim")
        return await self.inner.reclaim()

    async def requeue_dead(self, job_id: str) -> bool:
        await self._gate("requeue_dead")
        return await self.inner.requeue_dead(job_id)

    async def purge(self) -> int:
        await self._gate("purge")
        return await self.inner.purge()

    async def info(self, job_id: str) -> JobInfo | None:
        await self._gate("info")
        return await self.inner.info(job_id)

    async def wait(self, job_id: str, timeout: float | None) -> Finished:
        await self._gate("wait")
        return await self.inner.wait(job_id, timeout)

    async def wait_ready(self, queues: Sequence[str], timeout: float) -> None:
        await self._gate("wait_ready")
        await self.inner.wait_ready(queues, timeout)

    async def wait_cancel_request(self, consumer: str, timeout: float) -> bool:
        # A wait on the store object's own listener: no call reaches the engine, so no outage stops it.
        return await self.inner.wait_cancel_request(consumer, timeout)

    async def stats(self, queue: str) -> QueueStats:
        await self._gate("stats")
        return await self.inner.stats(queue)

    async def backlog(self, queues: Sequence[str]) -> int:
        await self._gate("backlog")
        return await self.inner.backlog(queues)

    async def queue_names(self) -> list[str]:
        await self._gate("queue_names")
        return await self.inner.queue_names()

    async def leave(self, consumer: str) -> None:
        await self._gate("leave")
        await self.inner.leave(consumer)

    async def start_run(self, run: NewRun) -> str:
        await self._gate("start_run")
        return await self.inner.start_run(run)

    async def run_info(self, run_id: str) -> RunInfo | None:
        await self._gate("run_info")
        return await self.inner.run_info(run_id)

    async def run_output(self, run_id: str, timeout: float | None) -> RunOutput:
        await self._gate("run_output")
        return await self.inner.run_output(run_id, timeout)

    async def cancel_run(self, run_id: str) -> bool:
        await self._gate("cancel_run")
        return await self.inner.cancel_run(run_id)

    def take_run_events(self) -> list[RunEvent]:
        return self.inner.take_run_events()

    async def resume_run(self, run_id: str) -> bool:
        await self._gate("resume_run")
        return await self.inner.resume_run(run_id)

    async def finished_jobs(
        self, states: Collection[JobState], *, queue: str | None = None, limit: int = 50
    ) -> list[JobInfo]:
        await self._gate("finished_jobs")
        return await self.inner.finished_jobs(states, queue=queue, limit=limit)

    async def recent_runs(self, *, states: Collection[RunState] | None = None, limit: int = 50) -> list[RunInfo]:
        await self._gate("recent_runs")
        return await self.inner.recent_runs(states=states, limit=limit)


@pytest.fixture
def gated(store: Store) -> GatedStore:
    return GatedStore(store)


async def wait_until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not condition():  # noqa: ASYNC110 - counters of a test double: no event to wait on
            await anyio.sleep(0.005)


async def finish(store: Store, value: Any) -> None:
    [claim] = await store.claim("consumer-1", ["default"], 1)
    result = store.serializer.dumps(value)
    assert await store.complete([Outcome(lease=claim.hold, state="succeeded", result=result)]) == [True]


@pytest.mark.parametrize("mode", ["down", "hang"])
async def test_submit_gives_up_after_submit_timeout(store: Store, gated: GatedStore, mode: Mode) -> None:
    gated.mode = mode
    async with Client(gated, submit_timeout=0.3) as client:
        started = anyio.current_time()
        with pytest.raises(StoreUnavailableError, match=r"'outage\.render'.*0\.3 s"):
            await client.submit(render, 1)
        elapsed = anyio.current_time() - started
    assert 0.3 <= elapsed < 1.5
    if mode == "down":
        assert gated.failed["enqueue"] >= 3  # tried again, with backoff
    assert await store.queue_names() == []


async def test_submit_rides_out_a_short_outage(store: Store, gated: GatedStore) -> None:
    gated.mode = "down"
    async with Client(gated, submit_timeout=5) as client, anyio.create_task_group() as tg:
        jobs = []

        async def submit() -> None:
            jobs.append(await client.submit(render, 1))

        tg.start_soon(submit)
        await wait_until(lambda: gated.failed["enqueue"] >= 3)
        gated.mode = "up"
    [job] = jobs
    assert (await store.info(job.id)) is not None
    assert (await store.stats("default")).ready_main == 1


async def test_a_submit_whose_answer_was_lost_stores_the_job_once(store: Store, gated: GatedStore) -> None:
    gated.lose_answers = 2
    async with Client(gated, submit_timeout=5) as client:
        job = await client.submit(render, 1)
    assert gated.calls["enqueue"] == 3
    assert [claim.id for claim in await store.claim("consumer-1", ["default"], 5)] == [job.id]


async def test_a_result_rides_out_an_outage(store: Store, gated: GatedStore) -> None:
    async with Client(gated, submit_timeout=5) as client, anyio.create_task_group() as tg:
        job = await client.submit(render, 1)
        gated.mode = "down"
        results: list[str] = []

        async def wait() -> None:
            results.append(await job.result(timeout=10))

        tg.start_soon(wait)
        await wait_until(lambda: gated.failed["wait"] >= 3)
        await finish(store, "1")
        gated.mode = "up"
    assert results == ["1"]


async def test_a_result_gives_up_when_the_outage_outlasts_submit_timeout(store: Store, gated: GatedStore) -> None:
    async with Client(gated, submit_timeout=0.2) as client:
        job = await client.submit(render, 1)
        gated.mode = "down"
        with pytest.raises(StoreUnavailableError, match=job.id):
            await job.result()
        # Its own timeout, when shorter, is what ends the wait.
        with pytest.raises(TimeoutError):
            await job.result(timeout=0.05)


async def test_a_result_gives_up_on_a_store_that_stops_answering(store: Store, gated: GatedStore) -> None:
    async with Client(gated, submit_timeout=0.2) as client:
        job = await client.submit(render, 1)
        gated.mode = "hang"
        started = anyio.current_time()
        with anyio.fail_after(2), pytest.raises(StoreUnavailableError, match=job.id):
            await job.result(timeout=0.1)
        assert 0.3 <= anyio.current_time() - started < 2  # its timeout, then submit_timeout for an answer


CALLS: dict[str, Callable[[Client, str], Awaitable[object]]] = {
    "info": lambda client, job_id: client.job(job_id).info(),
    "cancel": lambda client, job_id: client.job(job_id).cancel(),
    "stats": lambda client, job_id: client.stats(),
    "requeue_dead": lambda client, job_id: client.requeue_dead(job_id),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("mode", ["down", "hang"])
async def test_every_store_call_gives_up_after_submit_timeout(
    store: Store, gated: GatedStore, call: str, mode: Mode
) -> None:
    async with Client(gated, submit_timeout=0.2) as client:
        job = await client.submit(render, 1)
        gated.mode = mode
        with anyio.fail_after(2), pytest.raises(StoreUnavailableError, match=r"0\.2 s"):
            await CALLS[call](client, job.id)
        gated.mode = "up"
        assert (await CALLS[call](client, job.id)) is not None


async def test_a_handle_by_id_does_no_io(store: Store, gated: GatedStore) -> None:
    async with Client(gated) as client:
        client.job("some-id")
        await anyio.lowlevel.checkpoint()
    assert sum(gated.calls.values()) == 0


def test_the_backoff_doubles_up_to_its_cap() -> None:
    full = [backoff_delay(failures, remaining=100.0, draw=0.999999) for failures in range(1, 10)]
    assert full[0] == pytest.approx(FIRST_DELAY, rel=1e-5)
    assert full[1] == pytest.approx(2 * FIRST_DELAY, rel=1e-5)
    assert max(d for d in full if d is not None) == pytest.approx(LONGEST_DELAY, rel=1e-5)
    assert backoff_delay(10_000, remaining=100.0, draw=0.5) == pytest.approx(0.75 * LONGEST_DELAY)


def test_the_backoff_is_jittered_between_half_and_all_of_it() -> None:
    assert backoff_delay(3, remaining=100.0, draw=0.0) == pytest.approx(2 * FIRST_DELAY)
    assert backoff_delay(3, remaining=100.0, draw=0.5) == pytest.approx(3 * FIRST_DELAY)


def test_the_backoff_never_waits_past_the_deadline() -> None:
    assert backoff_delay(20, remaining=0.01, draw=0.9) == pytest.approx(0.01)
    assert backoff_delay(1, remaining=0.0, draw=0.5) is None
    assert backoff_delay(1, remaining=-1.0, draw=0.5) is None
