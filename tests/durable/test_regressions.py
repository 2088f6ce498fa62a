"""Faults found in review of the durable layer, each pinned by a test that failed before its fix."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest

from tasker_async import AsyncManager, Config, ResourceCreationError, ResourceCreationFailed
from tasker_async.__main__ import main
from tasker_async.durable import (
    Client,
    Consumer,
    ConsumerInfo,
    Registry,
    SQLiteStore,
    Store,
    StoreUnavailableError,
    open_store,
)
from tasker_async.durable._stores.records import Claim, Finished, Lease, Outcome, Renewal

from ._doubles import JobEvents, Lab, OutageStore, serving


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` (a counter of a test double, a clock) until it holds, for 5 s at most."""
    with anyio.fail_after(5):
        while not condition():  # noqa: ASYNC110 - counters of a test double: no event to wait on
            await anyio.sleep(0.005)
    assert condition(), what


# -- status on a store that is not there


def _files(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


def test_status_of_a_missing_sqlite_file_says_so_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nothing-here.db"
    code = main(["status", "--store", f"sqlite:///{path}"])
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert str(path) in err
    assert "does not exist" in err
    assert _files(path) == []


def test_status_of_an_existing_store_still_reads_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "tasker.db"

    async def make() -> None:
        async with open_store(f"sqlite:///{path}") as store, Client(store) as client:
            await client.submit("reports.render", 1)

    anyio.run(make)
    assert main(["status", "--store", f"sqlite:///{path}", "--json"]) == 0
    assert '"ready_main": 1' in capsys.readouterr().out


async def test_a_store_opened_without_create_refuses_a_missing_or_empty_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(StoreUnavailableError, match=f"{missing}.*does not exist"):
        async with SQLiteStore(missing, create=False):
            pass  # pragma: no cover
    assert _files(missing) == []
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StoreUnavailableError, match=f"{empty}.*no tasker_async store"):
        async with open_store(f"sqlite:///{empty}", create=False):
            pass  # pragma: no cover
    assert empty.stat().st_size == 0  # not made a store, not even switched to write-ahead logging
    assert _files(empty) == ["empty.db"]


# -- a result waited on through two outages


class DroppingStore(OutageStore):
    """An engine whose connections drop: :meth:`drop` makes every ``wait`` in progress fail."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.waits: set[anyio.CancelScope] = set()

    def drop(self) -> None:
        for scope in self.waits:
            scope.cancel()

    async def wait(self, job_id: str, timeout: float | None) -> Finished:
        self._reach("wait")
        with anyio.CancelScope() as scope:
            self.waits.add(scope)
            try:
                return await self.inner.wait(job_id, timeout)
            finally:
                self.waits.discard(scope)
        self.failed["wait"] += 1
        raise StoreUnavailableError("the connection dropped mid-wait")


async def test_a_result_rides_out_a_second_outage_as_it_did_the_first(store: Store) -> None:
    flaky = DroppingStore(store)
    results: list[str] = []
    async with Client(flaky, submit_timeout=0.2) as client, anyio.create_task_group() as tg:
        job = await client.submit("reports.render", 1)

        async def wait() -> None:
            results.append(await job.result())

        flaky.down = True
        tg.start_soon(wait)
        await until(lambda: flaky.failed["wait"] >= 1, "the first outage is seen")
        flaky.down = False
        await until(lambda: bool(flaky.waits), "the wait goes on once the engine is back")
        await anyio.sleep(0.3)  # the time itself: well past submit_timeout since the first outage
        flaky.down = True
        flaky.drop()
        await until(lambda: flaky.failed["wait"] >= 3, "the second outage is seen")
        flaky.down = False
        await until(lambda: bool(flaky.waits), "the wait goes on once the engine is back again")
        [claim] = await store.claim("consumer-1", ["default"], 1)
        result = store.serializer.dumps("rendered")
        assert await store.complete([Outcome(lease=claim.hold, state="succeeded", result=result)]) == [True]
    assert results == ["rendered"]


# -- a consumer whose store is closed under it


async def test_a_consumer_whose_store_is_closed_under_it_stops_with_that_error(tmp_path: Path) -> None:
    registry = Registry()
    async with AsyncManager(Config(on_create=lambda: 1, worker_count=1)) as manager, AsyncExitStack() as stack:
        store = await stack.enter_async_context(SQLiteStore(tmp_path / "tasker.db"))
        async with Consumer(store, registry, manager) as consumer:
            await stack.aclose()
            with anyio.fail_after(5), pytest.raises(RuntimeError, match="not open"):
                await consumer.serve_forever()
            assert "stopped" in repr(consumer)


# -- a consumer whose manager cannot make resources for a while


class Broken(Exception):
    """What spoils a resource in these tests."""


async def test_a_consumer_serves_on_through_its_managers_creation_breaker(store: Store) -> None:
    failing = False
    made = itertools.count(1)
    created_failures: list[ResourceCreationFailed] = []

    async def connect() -> int:
        if failing:
            raise OSError("the backend is down")
        return next(made)

    def hear(event: object) -> None:
        if isinstance(event, ResourceCreationFailed):
            created_failures.append(event)

    registry = Registry()

    @registry.task("breaker.spoil", lease=0.6, max_deliveries=1)
    async def spoil(resource: int) -> None:
        raise Broken("the resource went bad")

    @registry.task("breaker.echo", lease=0.6)
    async def echo(resource: int, value: str) -> str:
        return value

    config = Config(
        on_create=connect,
        worker_count=1,
        max_worker_count=1,
        check_health=lambda exc: not isinstance(exc, Broken),
        max_retries=0,
        creation_breaker_threshold=1,
        creation_backoff_base=0.01,
        creation_backoff_max=0.05,
        hooks=[hear],
    )
    async with AsyncManager(config) as manager, Consumer(store, registry, manager) as consumer, Client(store) as client:
        failing = True
        await client.submit(spoil)
        # The only worker's resource goes bad and no other can be made: the breaker opens.
        await until(lambda: bool(created_failures), "a creation failed")
        with pytest.raises(ResourceCreationError, match="failing fast"):
            manager.submit_nowait(echo.fn, "probe")
        opened = time.time()
        beats: list[float] = []

        async def heartbeats() -> list[float]:
            return [c.heartbeat_at for c in (await store.stats("default")).consumers]

        # Two lease ticks of the consumer while the breaker is open (or its leaving the store).
        while len(beats) < 2:
            now = await heartbeats()
            if not now:
                break
            if now[0] > opened and (not beats or now[0] > beats[-1]):
                beats.append(now[0])
            await anyio.sleep(0.01)
        job = await client.submit(echo, "served")
        failing = False  # the backend is back: a creation succeeds, the breaker closes
        assert await job.result(timeout=5) == "served"
        assert "running" in repr(consumer)


# -- a result the client cannot decode


async def test_a_result_that_cannot_be_decoded_names_its_job(store: Store) -> None:
    async with Client(store) as client:
        job = await client.submit("reports.render", 1)
        [claim] = await store.claim("consumer-1", ["default"], 1)
        # Written by a worker whose store had another serializer than this client's.
        assert await store.complete([Outcome(lease=claim.hold, state="succeeded", result=b"\x80not json")]) == [True]
        with pytest.raises(ValueError, match=f"result of job '{job.id}' \\(reports.render\\) cannot be decoded"):
            await job.result(timeout=5)
        assert (await job.info()).state == "succeeded"


# -- a worker given a queue name it cannot serve


def test_a_worker_given_an_empty_queue_name_says_so_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'tasker.db'}"
    code = main(["worker", "tasker_async._cli.demo_tasks", "--store", url, "--queue", ""])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: queues must hold non-empty strings")
    assert "Traceback" not in err


# -- a consumer whose loops break down while a store call is on its way back


class StallingStore(OutageStore):
    """Wraps a store: a call named in ``stall`` is made, then its answer waits for ``answer`` (once, and only
    when it did something: an engine's reply on its way back); a call named in ``broken`` raises
    ``RuntimeError``, as a store with a bug would."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.stall: set[str] = set()
        self.broken: set[str] = set()
        self.stalled: Counter[str] = Counter()
        self.answer = anyio.Event()

    async def _answer(self, name: str, did_something: bool) -> None:
        if name in self.stall and did_something:
            self.stall.discard(name)
            self.stalled[name] += 1
            await self.answer.wait()

    async def claim(self, consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False) -> list[Claim]:
        claims = await super().claim(consumer, queues, limit, waits=waits)
        await self._answer("claim", bool(claims))
        return claims

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        recorded = await super().complete(outcomes)
        await self._answer("complete", any(recorded))
        return recorded

    async def renew(self, consumer: ConsumerInfo, leases: Sequence[Lease]) -> Renewal:
        if "renew" in self.broken:
            self.failed["renew"] += 1
            raise RuntimeError("the store broke (renew)")
        return await super().renew(consumer, leases)


async def test_jobs_claimed_as_the_consumer_breaks_down_are_given_back_not_left_running(store: Store) -> None:
    stalling = StallingStore(store)
    lab = Lab()
    async with Client(store) as client:
        job = await client.submit(lab.hold, "claimed", delay=0.2)  # ready once the consumer waits for it

    async def break_down() -> None:
        async with serving(stalling, lab) as node:
            stalling.stall.add("claim")
            await until(lambda: stalling.stalled["claim"] == 1, "the claim made, its answer on its way")
            stalling.broken.add("renew")  # the next lease tick breaks the consumer down
            await until(lambda: stalling.failed["renew"] >= 1, "the lease tick broke")
            stalling.answer.set()
            with anyio.fail_after(5):
                await node.consumer.serve_forever()

    with pytest.raises(RuntimeError, match="the store broke"):
        await break_down()
    info = await store.info(job.id)
    assert info is not None
    assert info.state == "queued"  # given back at once, not left running until its lease expires


async def test_an_outcome_recorded_as_the_consumer_breaks_down_counts_as_acked(store: Store) -> None:
    stalling = StallingStore(store)
    lab = Lab()
    hook = JobEvents()
    consumers: list[Consumer] = []
    async with Client(store) as client:
        job = await client.submit(lab.hold, "held")

        async def break_down() -> None:
            async with serving(stalling, lab, hooks=[hook]) as node:
                consumers.append(node.consumer)
                await until(lambda: lab.starts("held") == 1, "the job started")
                stopping = asyncio.ensure_future(node.consumer.stop())
                await until(lambda: "stopping" in repr(node.consumer), "the claim loop closed: the outbox records")
                stalling.stall.add("complete")
                lab.open("held")
                await until(lambda: stalling.stalled["complete"] == 1, "the outcome recorded, its answer on its way")
                stalling.broken.add("renew")  # the next lease tick breaks the consumer down
                await until(lambda: stalling.failed["renew"] >= 1, "the lease tick broke")
                stalling.answer.set()
                with anyio.fail_after(5):
                    await stopping

        with pytest.raises(RuntimeError, match="the store broke"):
            await break_down()
        assert await job.result(timeout=5) == "held"
    stats = consumers[0].stats()
    assert (stats.acked, stats.lost) == (1, 0)
    assert hook.of(job.id) == [("delivered", 1), ("acked", 1)]


async def test_a_run_ending_while_a_claim_is_on_its_way_has_its_outcome_recorded_at_once(store: Store) -> None:
    # The claim loop carried every outcome: one recorded while a claim alone was on its way waited for that
    # claim's answer (a round trip, more under load) before it was even sent.
    stalling = StallingStore(store)
    lab = Lab()
    async with serving(stalling, lab, workers=2), Client(store) as client:
        first = await client.submit(lab.hold, "first")
        await until(lambda: lab.starts("first") == 1, "the first job running")
        stalling.stall.add("claim")
        second = await client.submit(lab.hold, "second")
        await until(lambda: stalling.stalled["claim"] == 1, "the second job claimed, the answer held up")
        lab.open("first")
        with anyio.fail_after(5):
            assert await first.result() == "first"
        assert not stalling.answer.is_set()  # recorded while the claim's answer was still held up
        stalling.answer.set()
        lab.open("second")
        with anyio.fail_after(5):
            assert await second.result() == "second"
