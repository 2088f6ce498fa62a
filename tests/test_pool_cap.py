"""run_task opens a bounded number of resources: max_temporary_resources, waiting for a slot beyond it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tasker_async import AsyncManager, Config, ResourceCreationError, TaskEvent, TaskTimeoutError

from .conftest import EventLog, Resource, Tracker, wait_for

Factory = Callable[..., AsyncManager[Resource]]


class Hold:
    """A run_task body that keeps its resource until released; records the resources it got."""

    def __init__(self) -> None:
        self.inside: list[int] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, resource: Resource) -> int:
        self.inside.append(resource.id)
        self.entered.set()
        await self.release.wait()
        return resource.id


def test_the_cap_defaults_to_worker_count_and_none_lifts_it() -> None:
    assert Config(on_create=object, worker_count=3).max_temporary_resources == 3
    assert Config(on_create=object, max_temporary_resources=None).max_temporary_resources is None
    assert Config(on_create=object, max_temporary_resources=7).max_temporary_resources == 7


async def test_a_hundred_concurrent_calls_open_no_more_than_the_cap(make_manager: Factory, tracker: Tracker) -> None:
    hold = Hold()
    peak = 0

    def create() -> Resource:
        nonlocal peak
        made = tracker.create()
        peak = max(peak, tracker.live)
        return made

    async with make_manager(
        on_create=create, worker_count=2, resource_pool_size=1, max_temporary_resources=2
    ) as manager:
        calls = [asyncio.ensure_future(manager.run_task(hold)) for _ in range(100)]
        await wait_for(lambda: len(hold.inside) == 3)
        # 2 workers + 1 pooled + 2 temporaries; the other 97 callers wait.
        assert tracker.live == 5
        assert manager.stats().temporary_resources == 2
        assert manager.stats().available_resources == 0
        hold.release.set()
        assert len(await asyncio.gather(*calls)) == 100
        assert peak == 5
        assert manager.stats().temporary_resources == 0
        assert manager.stats().available_resources == 1


async def test_a_returned_pooled_resource_goes_straight_to_a_waiting_caller(
    make_manager: Factory, tracker: Tracker
) -> None:
    hold, second = Hold(), Hold()
    async with make_manager(worker_count=1, resource_pool_size=1, max_temporary_resources=1) as manager:
        pooled = asyncio.ensure_future(manager.run_task(hold))
        await hold.entered.wait()
        temporary = asyncio.ensure_future(manager.run_task(hold))
        await wait_for(lambda: len(hold.inside) == 2)
        waiting = asyncio.ensure_future(manager.run_task(second))
        await wait_for(lambda: manager.stats().temporary_resources == 1)
        created = len(tracker.created)
        hold.release.set()
        await second.entered.wait()
        # It got the pooled resource back (or the freed slot): nothing beyond the cap was made.
        assert len(tracker.created) <= created + 1
        second.release.set()
        await asyncio.gather(pooled, temporary, waiting)
        assert tracker.live == 2  # the worker's and the pooled one


async def test_a_caller_cancelled_while_waiting_for_a_slot_passes_it_on(
    make_manager: Factory, tracker: Tracker
) -> None:
    hold, later = Hold(), Hold()
    async with make_manager(worker_count=1, max_temporary_resources=1) as manager:
        first = asyncio.ensure_future(manager.run_task(hold))
        await hold.entered.wait()
        cancelled = asyncio.ensure_future(manager.run_task(later))
        waiting = asyncio.ensure_future(manager.run_task(later))
        await asyncio.sleep(0)
        cancelled.cancel()
        hold.release.set()  # in the same step: the slot may go to the cancelled caller first
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await later.entered.wait()
        later.release.set()
        assert await waiting == await first + 1
        assert manager.stats().temporary_resources == 0


async def test_the_wait_for_a_slot_is_bounded_by_the_timeout(make_manager: Factory, tracker: Tracker) -> None:
    hold = Hold()
    events = EventLog()
    async with make_manager(worker_count=1, max_temporary_resources=1, hooks=[events]) as manager:
        first = asyncio.ensure_future(manager.run_task(hold))
        await hold.entered.wait()
        with pytest.raises(TaskTimeoutError):
            await manager.run_task(hold, timeout=0.01)
        assert hold.inside == [1]
        hold.release.set()
        await first
        assert manager.metrics().total_tasks_failed == 1
        assert [e.kind for e in events.of(TaskEvent)].count("timed_out") == 1


async def test_no_cap_opens_one_temporary_per_concurrent_call(make_manager: Factory, tracker: Tracker) -> None:
    hold = Hold()
    async with make_manager(worker_count=1, max_temporary_resources=None) as manager:
        calls = [asyncio.ensure_future(manager.run_task(hold)) for _ in range(6)]
        await wait_for(lambda: len(hold.inside) == 6)
        assert manager.stats().temporary_resources == 6
        hold.release.set()
        await asyncio.gather(*calls)


@pytest.mark.parametrize("ending", ["creation fails", "caller cancelled while creating", "killed while waiting"])
async def test_a_call_that_never_got_a_resource_still_ends_with_one_terminal_event(
    make_manager: Factory, tracker: Tracker, ending: str
) -> None:
    events = EventLog()
    creating, proceed = asyncio.Event(), asyncio.Event()
    hold = Hold()

    async def slow_create() -> Resource:
        if len(tracker.created) >= 1:  # the worker's own is made at start
            creating.set()
            await proceed.wait()
        return tracker.create()

    options = {"on_create": slow_create} if ending == "caller cancelled while creating" else {}
    manager = make_manager(worker_count=1, max_temporary_resources=1, hooks=[events], **options)
    await manager.start()
    try:
        if ending == "creation fails":
            tracker.fail_next = 1
            with pytest.raises(ResourceCreationError):
                await manager.run_task(hold)
        elif ending == "caller cancelled while creating":
            call = asyncio.ensure_future(manager.run_task(hold))
            await creating.wait()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
        else:
            first = asyncio.ensure_future(manager.run_task(hold))
            await hold.entered.wait()
            call = asyncio.ensure_future(manager.run_task(hold))
            await wait_for(lambda: len(events.of(TaskEvent, kind="queued")) == 2)
            await manager.kill()
            await asyncio.gather(first, call, return_exceptions=True)
    finally:
        proceed.set()
        await manager.kill()
    task_events = events.of(TaskEvent)
    queued = [e for e in task_events if e.kind == "queued"]
    terminal = [e for e in task_events if e.kind in ("succeeded", "failed", "timed_out", "aborted", "cancelled")]
    assert len(queued) == len(terminal)
    if ending == "killed while waiting":
        assert [e.kind for e in terminal] == ["aborted", "aborted"]
    else:
        assert [e.kind for e in terminal] == ["failed" if ending == "creation fails" else "cancelled"]
    metrics = manager.metrics()
    finished = metrics.total_tasks_completed + metrics.total_tasks_failed
    cancelled_or_aborted = sum(e.kind in ("cancelled", "aborted") for e in terminal)
    assert metrics.total_tasks_arrived == finished + cancelled_or_aborted


async def test_run_task_calls_never_share_an_event_id(make_manager: Factory) -> None:
    events = EventLog()

    async def quick(resource: Resource) -> int:
        return resource.id

    async with make_manager(worker_count=1, resource_pool_size=1, hooks=[events]) as manager:
        for _ in range(20):  # one after the other: each record is freed before the next is made
            await manager.run_task(quick)
    ended = [e.task_id for e in events.of(TaskEvent, kind="succeeded")]
    assert len(ended) == 20
    assert len(set(ended)) == 20
