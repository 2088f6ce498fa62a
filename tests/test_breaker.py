"""The creation circuit breaker: fail fast while no resource can be made, recover when one can."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tasker_async import (
    AsyncManager,
    ManagerNotRunningError,
    ResourceCreationError,
    ResourceCreationFailed,
    WorkerEvent,
)

from .conftest import EventLog, Resource, Tracker

Factory = Callable[..., AsyncManager[Resource]]


class Broken(Exception):
    pass


async def broken(resource: Resource) -> None:
    raise Broken


async def resource_id(resource: Resource) -> int:
    return resource.id


async def test_the_breaker_fails_queued_and_new_tasks_fast_then_closes(make_manager: Factory, tracker: Tracker) -> None:
    watch = EventLog()
    release = asyncio.Event()

    async def held_then_broken(resource: Resource) -> None:
        await release.wait()
        raise Broken

    async with make_manager(
        worker_count=1,
        check_health=lambda e: not isinstance(e, Broken),
        max_retries=0,
        creation_breaker_threshold=2,
        hooks=[watch],
    ) as manager:
        doomed = await manager.submit(held_then_broken)
        queued = [await manager.submit(resource_id) for _ in range(3)]
        tracker.fail_next = 10_000
        release.set()
        # The only worker's resource goes bad and its replacement cannot be made, twice in a row.
        await watch.until(lambda: len(watch.of(ResourceCreationFailed)) >= 2)
        with pytest.raises(Exception, match="no retries left"):
            await doomed
        for handle in queued:
            with pytest.raises(ResourceCreationError, match="failing fast"):
                await handle
        with pytest.raises(ResourceCreationError, match="failing fast"):
            await manager.submit(resource_id)
        with pytest.raises(ResourceCreationError):
            manager.submit_nowait(resource_id)
        assert manager.stats().state == "running"
        # The backend comes back: the next try succeeds and the breaker closes.
        tracker.fail_next = 0
        await watch.until(lambda: len(watch.of(WorkerEvent, kind="created", reason="replacement")) == 1)
        assert await manager.queue_task(resource_id) == 1
        assert manager.metrics().total_tasks_failed == 4


async def test_the_breaker_stays_shut_while_a_worker_is_alive(make_manager: Factory, tracker: Tracker) -> None:
    watch = EventLog()
    async with make_manager(
        worker_count=2,
        check_health=lambda e: not isinstance(e, Broken),
        max_retries=0,
        creation_breaker_threshold=1,
        hooks=[watch],
    ) as manager:
        tracker.fail_next = 10_000
        with pytest.raises(Exception, match="no retries left"):
            await manager.queue_task(broken)
        await watch.until(lambda: len(watch.of(ResourceCreationFailed)) >= 2)
        # One worker is still alive: tasks keep flowing to it.
        assert await manager.queue_task(resource_id) in (0, 1)
        tracker.fail_next = 0


async def test_the_breaker_is_off_by_default(make_manager: Factory, tracker: Tracker) -> None:
    watch = EventLog()
    async with make_manager(
        worker_count=1, check_health=lambda e: not isinstance(e, Broken), max_retries=0, hooks=[watch]
    ) as manager:
        tracker.fail_next = 10_000
        with pytest.raises(Exception, match="no retries left"):
            await manager.queue_task(broken)
        await watch.until(lambda: len(watch.of(ResourceCreationFailed)) >= 3)
        waiting = await manager.submit(resource_id)  # accepted: it waits for a worker
        assert not waiting.done()
        tracker.fail_next = 0
        assert await waiting == 1


async def test_stop_after_the_breaker_opened(make_manager: Factory, tracker: Tracker) -> None:
    watch = EventLog()
    manager = make_manager(
        worker_count=1,
        check_health=lambda e: not isinstance(e, Broken),
        max_retries=0,
        creation_breaker_threshold=1,
        hooks=[watch],
    )
    await manager.start()
    tracker.fail_next = 10_000
    with pytest.raises(Exception, match="no retries left"):
        await manager.queue_task(broken)
    await watch.until(lambda: len(watch.of(ResourceCreationFailed)) >= 1)
    await manager.stop()
    with pytest.raises(ManagerNotRunningError):
        await manager.submit(resource_id)
    assert tracker.balanced()
