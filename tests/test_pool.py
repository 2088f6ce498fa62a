"""run_task: the side pool, temporary resources, timeouts, health and shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tasker_async import AsyncManager, ResourceCreationError, TaskAbortedError, TaskTimeoutError

from .conftest import Resource, Tracker, manager_tasks

Factory = Callable[..., AsyncManager[Resource]]


async def resource_id(resource: Resource) -> int:
    return resource.id


async def test_run_task_uses_a_pooled_resource_and_returns_it(make_manager: Factory, tracker: Tracker) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def hold(resource: Resource) -> int:
        inside.set()
        await release.wait()
        return resource.id

    async with make_manager(worker_count=1, resource_pool_size=2) as manager:
        pooled = {r.id for r in tracker.created} - {0}
        running = asyncio.ensure_future(manager.run_task(hold))
        await inside.wait()
        assert manager.stats().available_resources == 1
        release.set()
        assert await running in pooled
        assert manager.stats().available_resources == 2
        assert len(tracker.created) == 3


async def test_run_task_makes_a_temporary_resource_when_the_pool_is_empty(
    make_manager: Factory, tracker: Tracker
) -> None:
    async with make_manager(worker_count=1, resource_pool_size=0) as manager:
        used = await manager.run_task(resource_id)
        assert used == 1
        assert [r.id for r in tracker.destroyed] == [1]
        assert manager.stats().available_resources == 0


async def test_run_task_creation_failure_is_chained(make_manager: Factory, tracker: Tracker) -> None:
    async with make_manager(worker_count=1, resource_pool_size=0) as manager:
        tracker.fail_next = 1
        with pytest.raises(ResourceCreationError) as caught:
            await manager.run_task(resource_id)
        assert isinstance(caught.value.__cause__, ConnectionError)


async def test_run_task_timeouts(make_manager: Factory) -> None:
    async def forever(resource: Resource) -> None:
        await asyncio.Event().wait()

    async with make_manager(worker_count=1, resource_pool_size=1, task_timeout=0.01) as manager:
        with pytest.raises(TaskTimeoutError):
            await manager.run_task(forever)
        with pytest.raises(TaskTimeoutError):
            await manager.run_task(forever, timeout=0.02)
        # A timeout is a healthy error: the pooled resource went back.
        assert manager.stats().available_resources == 1


async def test_unhealthy_pooled_resource_is_destroyed_and_the_slot_refilled(
    make_manager: Factory, tracker: Tracker
) -> None:
    class Broken(Exception):
        pass

    async def broken(resource: Resource) -> None:
        raise Broken

    async with make_manager(
        worker_count=1, resource_pool_size=1, check_health=lambda e: not isinstance(e, Broken)
    ) as manager:
        pooled = tracker.created[-1]
        with pytest.raises(Broken):
            await manager.run_task(broken)
        assert pooled in tracker.destroyed
        await tracker.wait_until(lambda: len(tracker.created) == 3)
        await tracker.wait_until(lambda: manager.stats().available_resources == 1)
        assert await manager.run_task(resource_id) == 2


async def test_stop_waits_for_run_task_in_flight(make_manager: Factory, tracker: Tracker) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def hold(resource: Resource) -> str:
        inside.set()
        await release.wait()
        return "done"

    manager = make_manager(worker_count=1, resource_pool_size=1)
    await manager.start()
    running = asyncio.ensure_future(manager.run_task(hold))
    await inside.wait()
    stopping = asyncio.ensure_future(manager.stop())
    await asyncio.sleep(0)
    assert not stopping.done()
    release.set()
    await stopping
    assert await running == "done"
    assert tracker.balanced()
    assert not manager_tasks()


async def test_kill_aborts_run_task_in_flight(make_manager: Factory, tracker: Tracker) -> None:
    inside = asyncio.Event()

    async def forever(resource: Resource) -> None:
        inside.set()
        await asyncio.Event().wait()

    manager = make_manager(worker_count=1, resource_pool_size=0)
    await manager.start()
    running = asyncio.ensure_future(manager.run_task(forever))
    await inside.wait()
    await manager.kill()
    with pytest.raises(TaskAbortedError):
        await running
    assert tracker.balanced()
    assert not manager_tasks()


async def test_run_task_metrics(make_manager: Factory) -> None:
    async def fail(resource: Resource) -> None:
        raise ValueError

    async with make_manager(worker_count=1, resource_pool_size=1) as manager:
        await manager.run_task(resource_id)
        with pytest.raises(ValueError):  # noqa: PT011
            await manager.run_task(fail)
        metrics = manager.metrics()
        assert (metrics.total_tasks_arrived, metrics.total_tasks_completed, metrics.total_tasks_failed) == (2, 1, 1)
