"""The consumer's own pieces: its pure decisions, how a finished run becomes an outcome, the batched outbox,
the book's counts and events, the engine port it reads, and its arguments and lifecycle rules."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import anyio
import pytest

from tasker_async import AsyncManager, Config, ConfigError, ManagerNotRunningError, TaskAbortedError
from tasker_async._api.port import engine_port
from tasker_async._observe.exporter import counted
from tasker_async.durable import (
    Client,
    Consumer,
    ConsumerStats,
    JobEvent,
    JSONSerializer,
    MemoryStore,
    Registry,
    Store,
    StoreUnavailableError,
    UnknownTaskError,
)
from tasker_async.durable._consumer.backoff import Backoff
from tasker_async.durable._consumer.book import Book
from tasker_async.durable._consumer.outbox import Outbox
from tasker_async.durable._consumer.outcomes import GIVE_BACK, settle, undecodable, unknown_task
from tasker_async.durable._consumer.plan import BUSY_POLL, FULL_WAIT, MAX_TICK, claim_limit, full_wait, lease_tick
from tasker_async.durable._model.records import qualified_name
from tasker_async.durable._stores.records import Claim, Lease, Outcome

from ._doubles import JobEvents, eventually


def make_claim(job_id: str = "j1", *, deliveries: int = 1, lease: float = 30.0) -> Claim:
    return Claim(
        id=job_id,
        name="unit.task",
        queue="default",
        payload=b'{"args":[],"kwargs":{}}',
        priority=False,
        once=False,
        deliveries=deliveries,
        max_deliveries=5,
        lease=lease,
        token=f"token-{job_id}",
    )


def idle_manager() -> AsyncManager[int]:
    """A manager that is never started: enough for the book's port (hooks) and for argument checks."""
    return AsyncManager(Config(on_create=lambda: 1, worker_count=1))


# -- plan ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free", "prefetch", "unstarted", "expected"),
    [
        (0, 0, 0, 0),  # no worker free: claim nothing, however long the queue
        (3, 0, 0, 3),
        (3, 2, 0, 5),
        (3, 2, 2, 3),  # the prefetched jobs already held count against the limit
        (0, 2, 2, 0),
        (0, 2, 5, 0),  # never negative
        (1, 0, 1, 0),
    ],
)
def test_claim_limit_is_free_workers_plus_prefetch_less_held_unstarted(
    free: int, prefetch: int, unstarted: int, expected: int
) -> None:
    assert claim_limit(free, prefetch, unstarted) == expected


def test_lease_tick_is_a_third_of_the_shortest_lease_at_most_half_a_second() -> None:
    assert lease_tick([]) == MAX_TICK == 0.5
    assert lease_tick([30.0, 60.0]) == MAX_TICK
    assert lease_tick([30.0, 0.3, 0.6]) == pytest.approx(0.1)


def test_a_full_manager_is_polled_briskly_only_while_the_store_has_a_backlog_or_a_run_just_ended() -> None:
    assert full_wait(backlog=4, woken=False) == BUSY_POLL
    assert full_wait(backlog=0, woken=True) == BUSY_POLL
    assert full_wait(backlog=0, woken=False) == FULL_WAIT
    assert BUSY_POLL <= 0.05 < FULL_WAIT


def test_backoff_doubles_with_jitter_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(base=0.1, cap=0.8, rng=random.Random(7))
    delays = [backoff.next() for _ in range(6)]
    for delay, ceiling in zip(delays, [0.1, 0.2, 0.4, 0.8, 0.8, 0.8], strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered: no two alike
    backoff.reset()
    assert 0.05 <= backoff.next() <= 0.1


# -- outcomes --------------------------------------------------------------------------------------


async def finished(
    *, result: Any = None, error: BaseException | None = None, cancel: bool = False
) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    if cancel:
        future.cancel()
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
    return future


async def test_a_result_is_encoded_with_the_stores_serializer() -> None:
    claim = make_claim()
    outcome = settle(claim, await finished(result={"a": [1, 2]}), None, JSONSerializer())
    assert outcome == Outcome(lease=claim.hold, state="succeeded", result=b'{"a":[1,2]}')


async def test_a_result_the_serializer_refuses_fails_the_job_with_a_type_error_naming_the_task() -> None:
    outcome = settle(make_claim(), await finished(result=object()), None, JSONSerializer())
    assert isinstance(outcome, Outcome)
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert outcome.error.type == "builtins.TypeError"
    assert "'unit.task'" in outcome.error.message
    assert "cannot be encoded by JSONSerializer()" in outcome.error.message


async def test_the_tasks_exception_fails_the_job_with_its_type_message_and_traceback() -> None:
    try:
        raise ValueError("bad page")
    except ValueError as exc:
        error = exc
    outcome = settle(make_claim(), await finished(error=error), None, JSONSerializer())
    assert isinstance(outcome, Outcome)
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert (outcome.error.type, outcome.error.message) == ("builtins.ValueError", "bad page")
    assert "raise ValueError" in outcome.error.traceback


async def test_a_run_the_manager_aborted_is_given_back_not_failed() -> None:
    outcome = settle(make_claim(), await finished(error=TaskAbortedError("killed")), None, JSONSerializer())
    assert outcome == GIVE_BACK


async def test_a_cancelled_run_ends_cancelled_only_when_the_store_asked() -> None:
    claim = make_claim()
    serializer = JSONSerializer()
    assert settle(claim, await finished(cancel=True), "cancel", serializer) == Outcome(
        lease=claim.hold, state="cancelled"
    )
    # Cancelled by nobody the job knows of: it may run again rather than be lost.
    assert settle(claim, await finished(cancel=True), None, serializer) == GIVE_BACK
    # A lost lease records nothing (the new holder will); a kill has given the job back already.
    assert settle(claim, await finished(cancel=True), "lost", serializer) is None
    assert settle(claim, await finished(cancel=True), "kill", serializer) is None


async def test_a_run_that_finished_before_its_cancellation_landed_keeps_its_result() -> None:
    claim = make_claim()
    outcome = settle(claim, await finished(result=3), "cancel", JSONSerializer())
    assert outcome == Outcome(lease=claim.hold, state="succeeded", result=b"3")


def test_an_unknown_task_fails_with_unknown_task_error_naming_it_and_the_registered_ones() -> None:
    outcome = unknown_task(make_claim(), ["reports.render", "mail.send"])
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert outcome.error.type == qualified_name(UnknownTaskError)
    assert "'unit.task'" in outcome.error.message
    assert "'mail.send', 'reports.render'" in outcome.error.message


def test_an_undecodable_payload_goes_dead_with_the_decoders_complaint() -> None:
    try:
        raise ValueError("the payload cannot be decoded") from UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")
    except ValueError as exc:
        outcome = undecodable(make_claim("j9"), exc, JSONSerializer())
    assert outcome.state == "dead"
    assert outcome.error is not None
    assert "job j9" in outcome.error.message
    assert "cannot be decoded by JSONSerializer()" in outcome.error.message
    assert "UnicodeDecodeError" in outcome.error.message


# -- the outbox and the book ---------------------------------------------------------------------------


class RecordingStore:
    """Takes ``complete`` and ``release`` calls (the outbox uses nothing else); fails the first ``failures``."""

    def __init__(self, failures: int = 0, refuse: frozenset[str] = frozenset()) -> None:
        self.failures = failures
        self.refuse = refuse
        self.calls: list[tuple[str, Any]] = []
        self.failed = 0

    def _reach(self) -> None:
        if self.failures:
            self.failures -= 1
            self.failed += 1
            raise StoreUnavailableError("the engine is down")

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        self._reach()
        self.calls.append(("complete", [o.lease.job_id for o in outcomes]))
        return [o.lease.job_id not in self.refuse for o in outcomes]

    def take_run_events(self) -> list[object]:
        return []

    async def release(self, leases: Sequence[Lease], *, started: bool) -> None:
        self._reach()
        self.calls.append((f"release started={started}", [lease.job_id for lease in leases]))


def book_of(manager: AsyncManager[Any], *claims: Claim) -> Book:
    book = Book(engine_port(manager))
    for claim in claims:
        book.hold(claim)
    return book


async def test_the_outbox_sends_everything_pending_in_one_call_per_kind() -> None:
    manager = idle_manager()
    hook = JobEvents()
    manager.add_hook(hook)
    claims = [make_claim(f"j{i}", deliveries=2 if i == 4 else 1) for i in range(6)]
    book = book_of(manager, *claims)
    store = RecordingStore()
    outbox = Outbox(cast(Store, store), book, "unit")
    outbox.record(Outcome(lease=claims[0].hold, state="succeeded", result=b"1"))
    outbox.record(Outcome(lease=claims[1].hold, state="failed"))
    outbox.record(Outcome(lease=claims[2].hold, state="dead"))
    outbox.give_back(claims[3].hold, started=True)
    outbox.give_back(claims[4].hold, started=True)
    outbox.give_back(claims[5].hold, started=False)
    assert len(outbox) == 6
    await outbox.flush()
    assert store.calls == [
        ("complete", ["j0", "j1", "j2"]),
        ("release started=True", ["j3", "j4"]),
        ("release started=False", ["j5"]),
    ]
    assert len(outbox) == 0
    assert len(book) == 0
    stats = book.stats(len(outbox))
    assert (stats.acked, stats.dead, stats.released, stats.lost) == (2, 1, 3, 0)
    # An unstarted job given back has its delivery taken back.
    assert [(e.kind, e.job_id, e.deliveries) for e in hook.events] == [
        ("acked", "j0", 1),
        ("acked", "j1", 1),
        ("dead", "j2", 1),
        ("released", "j3", 1),
        ("released", "j4", 2),
        ("released", "j5", 0),
    ]


async def test_an_outcome_the_store_refuses_counts_as_a_lost_lease_not_an_ack() -> None:
    manager = idle_manager()
    claims = [make_claim("kept"), make_claim("late")]
    book = book_of(manager, *claims)
    outbox = Outbox(cast(Store, RecordingStore(refuse=frozenset({"late"}))), book, "unit")
    for claim in claims:
        outbox.record(Outcome(lease=claim.hold, state="succeeded", result=b"0"))
    await outbox.flush()
    stats = book.stats(0)
    assert (stats.acked, stats.lost) == (1, 1)
    assert len(book) == 0


async def test_the_outbox_keeps_its_outcomes_through_an_outage_and_sends_them_together_after() -> None:
    manager = idle_manager()
    claims = [make_claim(f"j{i}") for i in range(3)]
    book = book_of(manager, *claims)
    store = RecordingStore(failures=3)
    outbox = Outbox(cast(Store, store), book, "unit")
    outbox.backoff = Backoff(base=0.01, cap=0.02)
    async with anyio.create_task_group() as tg:
        tg.start_soon(outbox.run)
        outbox.record(Outcome(lease=claims[0].hold, state="succeeded", result=b"0"))
        await eventually(lambda: store.failed >= 1, "a first try failed")
        # Outcomes that come during the outage wait with the first one.
        outbox.record(Outcome(lease=claims[1].hold, state="succeeded", result=b"1"))
        outbox.give_back(claims[2].hold, started=True)
        await eventually(lambda: len(book) == 0, "everything recorded once the engine is back")
        tg.cancel_scope.cancel()
    assert store.failed == 3
    assert store.calls == [("complete", ["j0", "j1"]), ("release started=True", ["j2"])]


async def test_the_book_renews_a_job_until_its_outcome_is_recorded_and_matches_leases_by_token() -> None:
    manager = idle_manager()
    claim = make_claim("j1")
    book = book_of(manager, claim)
    assert book.leases() == [claim.hold]
    # A stale lease of the same job (an earlier claim) touches nothing.
    assert book.entry(Lease("j1", "an older token")) is None
    assert book.lose(Lease("j1", "an older token")) is None
    assert book.leases() == [claim.hold]
    assert book.lose(claim.hold) is not None
    assert book.leases() == []
    assert book.stats(0).lost == 1


# -- the engine port --------------------------------------------------------------------------------


async def test_free_workers_counts_a_task_queued_for_a_woken_worker_once() -> None:
    gate = anyio.Event()

    async def hold(resource: int) -> None:
        await gate.wait()

    async with AsyncManager(Config(on_create=lambda: 1, worker_count=4, max_worker_count=6)) as manager:
        port = engine_port(manager)
        assert port.capacity == 6
        await eventually(lambda: port.free_workers() == 4, "four workers parked")
        handles = [manager.submit_nowait(hold)]
        assert port.free_workers() == 3  # before the woken worker has even taken it
        await eventually(lambda: manager.stats().running_tasks == 1, "the task started")
        assert port.free_workers() == 3
        handles += [manager.submit_nowait(hold) for _ in range(4)]
        assert port.free_workers() == 0  # one more task than free workers: none free, never negative
        gate.set()
        await asyncio.gather(*handles)
        await eventually(lambda: port.free_workers() == 4, "all four free again")


# -- the consumer ----------------------------------------------------------------------------------


async def test_the_consumer_checks_its_arguments() -> None:
    store = MemoryStore()
    registry = Registry()
    manager = idle_manager()
    with pytest.raises(ConfigError, match="queues"):
        Consumer(store, registry, manager, queues="default")
    with pytest.raises(ConfigError, match="queues"):
        Consumer(store, registry, manager, queues=[])
    with pytest.raises(ConfigError, match="queues"):
        Consumer(store, registry, manager, queues=["default", ""])
    with pytest.raises(ConfigError, match="prefetch"):
        Consumer(store, registry, manager, prefetch=-1)
    with pytest.raises(ConfigError, match="prefetch"):
        Consumer(store, registry, manager, prefetch=True)
    with pytest.raises(TypeError, match="Registry"):
        Consumer(store, cast(Registry, {}), manager)
    with pytest.raises(TypeError, match="AsyncManager"):
        Consumer(store, registry, cast(AsyncManager[Any], object()))
    with pytest.raises(TypeError, match="store"):
        Consumer(cast(Store, object()), registry, manager)


async def test_a_consumer_needs_a_running_manager_and_is_single_use() -> None:
    registry = Registry()
    async with MemoryStore() as store:
        with pytest.raises(ManagerNotRunningError, match="inside the manager's block"):
            async with Consumer(store, registry, idle_manager()):
                pass  # pragma: no cover
        async with AsyncManager(Config(on_create=lambda: 1, worker_count=1)) as manager:
            consumer = Consumer(store, registry, manager)
            async with consumer:
                with pytest.raises(RuntimeError, match="single-use"):
                    await consumer.__aenter__()
            assert "stopped" in repr(consumer)
            await consumer.stop()  # idempotent, after the fact too
            await consumer.kill()
            with pytest.raises(RuntimeError, match="single-use"):
                await consumer.__aenter__()


@pytest.fixture
async def memory_store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore() as store:
        yield store


async def test_stats_and_repr_show_what_the_consumer_holds_and_has_done(memory_store: MemoryStore) -> None:
    registry = Registry()
    gate = anyio.Event()

    @registry.task("unit.wait")
    async def wait(resource: int, value: int) -> int:
        await gate.wait()
        return value

    config = Config(on_create=lambda: 1, worker_count=2, max_worker_count=2)
    async with (
        AsyncManager(config) as manager,
        Consumer(memory_store, registry, manager, prefetch=1) as consumer,
        Client(memory_store) as client,
    ):
        assert consumer.stats() == ConsumerStats(
            claimed=0,
            prefetched=0,
            running=0,
            unrecorded=0,
            delivered=0,
            redelivered=0,
            acked=0,
            dead=0,
            released=0,
            lost=0,
        )
        jobs = [await client.submit(wait, i) for i in range(4)]
        await eventually(lambda: consumer.stats().prefetched == 1, "two running and one prefetched")
        stats = consumer.stats()
        assert (stats.claimed, stats.running, stats.prefetched, stats.delivered) == (3, 2, 1, 2)
        assert f"<Consumer {consumer.id} running queues=default running=2 prefetched=1 " in repr(consumer)
        gate.set()
        assert [await job.result(timeout=10) for job in jobs] == [0, 1, 2, 3]
        await eventually(lambda: consumer.stats().acked == 4, "all four recorded")
        stats = consumer.stats()
        assert (stats.claimed, stats.running, stats.prefetched, stats.delivered, stats.unrecorded) == (4, 0, 0, 4, 0)
        assert "acked=4" in repr(consumer)


async def test_stopping_gives_prefetched_jobs_back_unstarted_and_tells_the_hooks(memory_store: MemoryStore) -> None:
    registry = Registry()
    gate = anyio.Event()

    @registry.task("unit.wait")
    async def wait(resource: int, value: int) -> int:
        await gate.wait()
        return value

    hook = JobEvents()
    config = Config(on_create=lambda: 1, worker_count=1, max_worker_count=1, hooks=[hook])
    async with AsyncManager(config) as manager, Client(memory_store) as client:
        async with Consumer(memory_store, registry, manager, prefetch=1) as consumer:
            first, second = await client.submit(wait, 1), await client.submit(wait, 2)
            await eventually(lambda: consumer.stats().prefetched == 1, "one running, one prefetched")
            stopping = asyncio.ensure_future(consumer.stop())
            await eventually(lambda: consumer.stats().released == 1, "the prefetched job given back at once")
            assert (await second.info()).state == "queued"
            assert (await second.info()).deliveries == 0
            assert not stopping.done()  # the running job is let finish
            gate.set()
            await stopping
        assert await first.result(timeout=10) == 1
    assert hook.of(first.id) == [("delivered", 1), ("acked", 1)]
    assert hook.of(second.id) == [("released", 0)]
    assert all(isinstance(event, JobEvent) for event in hook.events)


async def test_the_consumer_stops_by_itself_when_its_manager_stops(memory_store: MemoryStore) -> None:
    registry = Registry()
    async with AsyncManager(Config(on_create=lambda: 1, worker_count=1)) as manager:
        consumer = Consumer(memory_store, registry, manager)
        async with consumer:
            await manager.stop()
            with anyio.fail_after(5):
                await consumer.serve_forever()
            assert "stopped" in repr(consumer)
    stats = await memory_store.stats("default")
    assert stats.consumers == ()  # it left the store


async def test_stop_from_inside_one_of_its_jobs_is_refused_instead_of_waiting_for_itself(
    memory_store: MemoryStore,
) -> None:
    registry = Registry()
    consumers: list[Consumer] = []

    @registry.task("unit.stop_self")
    async def stop_self(resource: int) -> str:
        try:
            await consumers[0].stop()
        except RuntimeError as exc:
            return str(exc)
        return "stopped"  # pragma: no cover

    async with (
        AsyncManager(Config(on_create=lambda: 1, worker_count=1)) as manager,
        Consumer(memory_store, registry, manager) as consumer,
        Client(memory_store) as client,
    ):
        consumers.append(consumer)
        job = await client.submit(stop_self)
        assert "asyncio.create_task(consumer.stop())" in await job.result(timeout=10)
        assert "running" in repr(consumer)


def test_the_managers_exporters_count_nothing_for_a_job_event() -> None:
    event = JobEvent(kind="acked", job_id="j1", name="unit.task", queue="default", deliveries=1)
    assert counted(cast(Any, event)) is None
