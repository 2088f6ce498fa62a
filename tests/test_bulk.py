"""``manager.map`` and ``manager.as_completed`` (SPEC §10): bounded in-flight work, order, errors, cleanup.

Completion order is forced with events (task ``k`` of a chain waits for the
one before it); "never ran" is checked by recording every start and letting
the manager drain with ``stop()`` afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tasker_async import AsyncManager, ManagerNotRunningError, TaskTimeoutError

from .conftest import Resource, manager_tasks, wait_for

Factory = Callable[..., AsyncManager[Resource]]


class Boom(Exception):
    pass


async def times_ten(resource: Resource, item: int) -> int:
    return item * 10


@pytest.fixture(autouse=True)
async def _no_task_left_behind() -> AsyncIterator[None]:
    yield
    assert not manager_tasks()


def chain(order: list[int]) -> tuple[Callable[[Resource, int], Any], list[int]]:
    """A task function whose items finish in ``order``, whatever order they start in."""
    done = {item: asyncio.Event() for item in order}
    finished: list[int] = []

    async def fn(resource: Resource, item: int) -> int:
        position = order.index(item)
        if position:
            await done[order[position - 1]].wait()
        finished.append(item)
        done[item].set()
        return item * 10

    return fn, finished


async def collect(results: AsyncGenerator[int, None], into: list[int]) -> None:
    async with contextlib.aclosing(results) as closing:
        async for result in closing:
            into.append(result)


class Probe:
    """An input that counts what it handed out, and tasks that count starts, runs and cancellations."""

    def __init__(self, manager: AsyncManager[Resource], hold_from: int) -> None:
        self.manager = manager
        self.hold_from = hold_from  # items from here on block until ``release``
        self.release = asyncio.Event()
        self.pulled = 0
        self.consumed = 0
        self.max_ahead = 0  # most items pulled and not yet consumed
        self.max_unfinished = 0  # most tasks queued or running
        self.started: list[int] = []
        self.cancelled: list[int] = []

    def _observe(self) -> None:
        stats = self.manager.stats()
        self.max_unfinished = max(self.max_unfinished, stats.queued_tasks + stats.running_tasks)
        self.max_ahead = max(self.max_ahead, self.pulled - self.consumed)

    async def items(self) -> AsyncIterator[int]:
        for item in itertools.count():
            self.pulled += 1
            self._observe()
            yield item

    async def task(self, resource: Resource, item: int) -> int:
        self.started.append(item)
        self._observe()
        if item >= self.hold_from:
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.append(item)
                raise
        return item * 10


async def test_map_yields_in_input_order(make_manager: Factory) -> None:
    fn, finished = chain([2, 0, 3, 1])
    async with make_manager(worker_count=4) as manager:
        results = [result async for result in manager.map(fn, [0, 1, 2, 3])]
    assert finished == [2, 0, 3, 1]
    assert results == [0, 10, 20, 30]


async def test_map_unordered_and_as_completed_yield_in_completion_order(make_manager: Factory) -> None:
    async with make_manager(worker_count=4) as manager:
        fn, finished = chain([2, 0, 3, 1])
        unordered = [result async for result in manager.map(fn, [0, 1, 2, 3], ordered=False)]
        assert finished == [2, 0, 3, 1]
        assert unordered == [20, 0, 30, 10]
        fn, finished = chain([3, 1, 0, 2])
        completed = [result async for result in manager.as_completed(fn, [0, 1, 2, 3])]
        assert finished == [3, 1, 0, 2]
        assert completed == [30, 10, 0, 20]


@pytest.mark.parametrize("ordered", [True, False])
async def test_endless_input_is_bounded_and_break_cancels_the_rest(make_manager: Factory, ordered: bool) -> None:
    max_pending, wanted = 5, 3
    async with make_manager(worker_count=2) as manager:
        probe = Probe(manager, hold_from=wanted)
        got: list[int] = []
        async with contextlib.aclosing(
            manager.map(probe.task, probe.items(), ordered=ordered, max_pending=max_pending)
        ) as results:
            async for result in results:
                probe.consumed += 1
                got.append(result)
                if len(got) == wanted:
                    break
            assert manager.stats().queued_tasks > 0  # some tasks were still queued at the break
        # aclose() ran: queued tasks are gone at once, running ones are being cancelled.
        assert manager.stats().queued_tasks == 0
        await wait_for(lambda: manager.stats().running_tasks == 0)
        assert sorted(got) == [0, 10, 20]
        assert probe.pulled == wanted + max_pending - 1  # one pull per result taken, after the first fill
        assert probe.max_ahead == max_pending
        assert probe.max_unfinished <= max_pending
        ran = sorted(probe.started)
        assert sorted(probe.cancelled) == [item for item in ran if item >= wanted]
        assert len(ran) < probe.pulled  # at least one queued task never started...
        probe.release.set()
    assert sorted(probe.started) == ran  # ...nor ran while the manager drained


async def test_consumer_cancelled_while_waiting_cancels_every_pending_task(make_manager: Factory) -> None:
    async with make_manager(worker_count=2) as manager:
        probe = Probe(manager, hold_from=0)

        async def consume() -> None:
            async for _ in manager.map(probe.task, probe.items()):
                pytest.fail("no task may finish")

        consumer = asyncio.create_task(consume())
        await wait_for(lambda: len(probe.started) == 2)
        # The default bound: twice max_worker_count, filled before the first wait.
        assert probe.pulled == 4
        assert manager.stats().queued_tasks == 2
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert manager.stats().queued_tasks == 0
        await wait_for(lambda: manager.stats().running_tasks == 0)
        assert sorted(probe.cancelled) == [0, 1]
        probe.release.set()
    assert sorted(probe.started) == [0, 1]


async def test_bound_below_the_worker_count_limits_concurrency(make_manager: Factory) -> None:
    async with make_manager(worker_count=4) as manager:
        probe = Probe(manager, hold_from=0)
        probe.release.set()
        async with contextlib.aclosing(manager.map(probe.task, probe.items(), max_pending=2)) as results:
            async for result in results:
                probe.consumed += 1
                if result == 190:
                    break
    assert probe.max_unfinished <= 2
    assert probe.max_ahead == 2
    assert probe.started[:20] == list(range(20))


@pytest.mark.parametrize("ordered", [True, False])
async def test_first_error_is_raised_and_the_rest_cancelled(make_manager: Factory, ordered: bool) -> None:
    boom = Boom("item 1")
    failed = asyncio.Event()
    release = asyncio.Event()
    started: list[int] = []
    cancelled: list[int] = []

    async def task(resource: Resource, item: int) -> int:
        started.append(item)
        if item == 1:
            failed.set()
            raise boom
        if item == 0:
            await failed.wait()  # so item 1 fails first
            return 0
        try:
            await release.wait()
        except asyncio.CancelledError:
            cancelled.append(item)
            raise
        return item

    async with make_manager(worker_count=3) as manager:
        got: list[int] = []
        with pytest.raises(Boom) as raised:
            await collect(manager.map(task, range(100), ordered=ordered, max_pending=6), got)
        assert raised.value is boom
        # In order, item 0 comes first; as completed, the error is first.
        assert got == ([0] if ordered else [])
        assert manager.stats().queued_tasks == 0
        await wait_for(lambda: manager.stats().running_tasks == 0)
        assert cancelled
        assert sorted(cancelled) == sorted(item for item in started if item > 1)
        ran = sorted(started)
        release.set()
    assert ran == [0, 1, 2, 3, 4]  # three workers: the two that finished took one more each
    assert sorted(started) == ran  # the queued ones never ran, not even while the manager drained
    assert manager.metrics().total_tasks_failed == 1


async def test_return_exceptions_yields_errors_in_place(make_manager: Factory) -> None:
    async def odd_fails(resource: Resource, item: int) -> int:
        if item == 7:
            raise asyncio.CancelledError  # the task cancels itself: what awaiting its handle gives
        if item % 2:
            raise Boom(item)
        return item * 10

    async with make_manager() as manager:
        results = [r async for r in manager.map(odd_fails, range(8), return_exceptions=True, max_pending=2)]
    assert [r if isinstance(r, int) else (type(r), r.args) for r in results] == [
        0,
        (Boom, (1,)),
        20,
        (Boom, (3,)),
        40,
        (Boom, (5,)),
        60,
        (asyncio.CancelledError, ()),
    ]
    assert manager.metrics().total_tasks_completed == 4
    assert manager.metrics().total_tasks_failed == 3


async def test_sync_iterables_are_pulled_lazily(make_manager: Factory) -> None:
    pulled = 0
    consumed = 0
    most_ahead = 0

    def numbers() -> Iterator[int]:
        nonlocal pulled, most_ahead
        for item in range(50):
            pulled += 1
            most_ahead = max(most_ahead, pulled - consumed)
            yield item

    async with make_manager() as manager:
        assert [r async for r in manager.map(times_ten, [1, 2, 3])] == [10, 20, 30]
        assert [r async for r in manager.as_completed(times_ten, range(0))] == []
        results = []
        async for result in manager.map(times_ten, numbers(), max_pending=3):
            consumed += 1
            results.append(result)
    assert results == [item * 10 for item in range(50)]
    assert most_ahead == 3


async def test_priority_and_timeout_reach_every_task(make_manager: Factory) -> None:
    gate = asyncio.Event()

    async def hold(resource: Resource) -> None:
        await gate.wait()

    async def forever(resource: Resource, item: int) -> None:
        await asyncio.Event().wait()

    async with make_manager(worker_count=1) as manager:
        held = await manager.submit(hold)
        results = manager.map(forever, range(3), priority=True, max_pending=3, return_exceptions=True, timeout=0.01)
        consumer = asyncio.create_task(anext(results))
        await wait_for(lambda: manager.stats().priority_tasks == 3)
        assert manager.stats().queued_tasks == 0
        gate.set()
        await held
        assert isinstance(await consumer, TaskTimeoutError)
        await results.aclose()


async def test_manager_not_running_is_raised_on_iteration(make_manager: Factory) -> None:
    manager = make_manager()
    results = manager.map(times_ten, [1])  # nothing is checked against the manager until iteration
    with pytest.raises(ManagerNotRunningError):
        await anext(results)
    assert [r async for r in manager.map(times_ten, [])] == []


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda m: m.map(times_ten, [1], max_pending=0), ValueError, "max_pending"),
        (lambda m: m.map(times_ten, [1], max_pending=True), ValueError, "max_pending"),
        (lambda m: m.as_completed(times_ten, [1], max_pending=2.0), ValueError, "max_pending"),
        (lambda m: m.map(times_ten, [1], timeout=-1), ValueError, "timeout"),
        (lambda m: m.map("times_ten", [1]), TypeError, "fn"),
        (lambda m: m.as_completed(times_ten, 3), TypeError, "items"),
    ],
)
async def test_arguments_are_checked_at_the_call(
    make_manager: Factory, call: Callable[[Any], Any], error: type[Exception], name: str
) -> None:
    async with make_manager() as manager:
        with pytest.raises(error, match=name):
            call(manager)
