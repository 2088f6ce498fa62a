"""Shutdown: stop drains, kill aborts, both idempotent, nothing lost, nothing left behind."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tasker_async import AsyncManager, ManagerNotRunningError, TaskAbortedError

from .conftest import Resource, Tracker, manager_tasks, wait_for

Factory = Callable[..., AsyncManager[Resource]]


class Blocker:
    """Task bodies that report when they start and wait for a release."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.release = asyncio.Event()

    async def __call__(self, resource: Resource, value: int) -> int:
        self.started += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return value


async def test_stop_drains_queued_and_running_tasks_without_cancelling_them(
    make_manager: Factory, tracker: Tracker
) -> None:
    body = Blocker()
    manager = make_manager(worker_count=2, resource_pool_size=1)
    await manager.start()
    handles = [await manager.submit(body, i, priority=i % 3 == 0) for i in range(10)]
    await wait_for(lambda: body.started == 2)
    stopping = asyncio.ensure_future(manager.stop())
    await wait_for(lambda: manager.stats().state == "stopping")
    with pytest.raises(ManagerNotRunningError, match="stopping"):
        await manager.submit(body, 99)
    assert not stopping.done()
    body.release.set()
    await stopping
    assert sorted([await h for h in handles]) == list(range(10))
    assert body.cancelled == 0
    assert manager.stats().state == "stopped"
    assert tracker.balanced()
    assert len(tracker.created) == 3
    assert not manager_tasks()


async def test_stop_timeout_escalates_to_kill(make_manager: Factory, tracker: Tracker) -> None:
    body = Blocker()
    manager = make_manager(worker_count=1)
    await manager.start()
    running = await manager.submit(body, 1)
    queued = await manager.submit(body, 2)
    await wait_for(lambda: body.started == 1)
    await manager.stop(timeout=0.05)
    for handle in (running, queued):
        with pytest.raises(TaskAbortedError):
            await handle
    assert body.cancelled == 1
    assert manager.stats().state == "killed"
    assert tracker.balanced()
    assert not manager_tasks()


async def test_kill_resolves_every_task_exactly_once(make_manager: Factory, tracker: Tracker) -> None:
    body = Blocker()
    outcomes: Counter[int] = Counter()
    kinds: dict[int, str] = {}

    def on_done(index: int) -> Callable[[Any, BaseException | None], None]:
        def record(result: Any, exc: BaseException | None) -> None:
            outcomes[index] += 1
            kinds[index] = type(exc).__name__ if exc else "result"

        return record

    manager = make_manager(worker_count=3, max_retries=2, retry_delay=30, check_health=lambda e: True)
    await manager.start()
    handles = [await manager.submit(body, i, priority=i % 2 == 0) for i in range(50)]
    for i in range(50, 60):
        manager.queue_task_with_callback(body, on_done(i), i)
    await wait_for(lambda: body.started == 3)
    await manager.kill()
    for handle in handles:
        assert handle.done()
        with pytest.raises(TaskAbortedError):
            handle.result()
    assert body.cancelled == 3
    assert outcomes == Counter(range(50, 60))
    assert set(kinds.values()) == {"TaskAbortedError"}
    assert manager.stats().state == "killed"
    stats = manager.stats()
    assert (stats.queued_tasks, stats.priority_tasks, stats.running_tasks, stats.active_workers) == (0, 0, 0, 0)
    assert tracker.balanced()
    assert not manager_tasks()


async def test_stop_and_kill_are_idempotent_and_safe_together(make_manager: Factory, tracker: Tracker) -> None:
    body = Blocker()
    manager = make_manager(worker_count=2, resource_pool_size=2)
    await manager.start()
    handles = [await manager.submit(body, i) for i in range(6)]
    await wait_for(lambda: body.started == 2)
    await asyncio.gather(manager.stop(), manager.kill(), manager.stop(), manager.kill())
    await manager.stop()
    await manager.kill()
    results = await asyncio.gather(*handles, return_exceptions=True)
    assert all(isinstance(r, TaskAbortedError) for r in results)
    assert tracker.balanced()
    assert not manager_tasks()


async def test_async_with_exit_by_exception_kills_and_reraises(make_manager: Factory, tracker: Tracker) -> None:
    body = Blocker()
    manager = make_manager(worker_count=1)
    handles: list[Any] = []

    async def app() -> None:
        async with manager:
            handles.extend([await manager.submit(body, i) for i in range(3)])
            await wait_for(lambda: body.started == 1)
            raise LookupError("app failure")

    with pytest.raises(LookupError, match="app failure"):
        await app()
    assert manager.stats().state == "killed"
    for handle in handles:
        with pytest.raises(TaskAbortedError):
            await handle
    assert tracker.balanced()
    assert not manager_tasks()


async def test_on_destroy_errors_are_logged_never_raised(
    make_manager: Factory, tracker: Tracker, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    async def bad_destroy(resource: Resource) -> None:
        calls.append(resource.id)
        await tracker.destroy(resource)
        raise OSError("close failed")

    caplog.set_level(logging.ERROR, logger="tasker_async")
    async with make_manager(worker_count=2, resource_pool_size=1, on_destroy=bad_destroy) as manager:
        body = Blocker()
        body.release.set()
        assert await manager.queue_task(body, 7) == 7
    assert sorted(calls) == [0, 1, 2]
    assert caplog.text.count("on_destroy failed") == 3


async def test_on_destroy_runs_shielded_even_when_the_stop_caller_is_cancelled(tracker: Tracker) -> None:
    destroying = asyncio.Event()
    finish = asyncio.Event()
    finished: list[int] = []

    async def slow_destroy(resource: Resource) -> None:
        destroying.set()
        await finish.wait()
        finished.append(resource.id)
        await tracker.destroy(resource)

    from tasker_async import Config

    manager = AsyncManager(
        Config(
            on_create=tracker.create, on_destroy=slow_destroy, worker_count=1, max_worker_count=1, resource_pool_size=0
        )
    )
    await manager.start()
    stopper = asyncio.ensure_future(manager.stop())
    await destroying.wait()
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    finish.set()
    await manager.stop()
    assert finished == [0]
    assert tracker.balanced()
    assert not manager_tasks()


@pytest.mark.parametrize("ending", ["stop", "kill"])
async def test_stop_or_kill_during_start_leaves_nothing_behind(tracker: Tracker, ending: str) -> None:
    from tasker_async import Config

    creating = asyncio.Event()
    proceed = asyncio.Event()

    async def slow_create() -> Resource:
        creating.set()
        await proceed.wait()
        return tracker.create()

    manager = AsyncManager(
        Config(
            on_create=slow_create, on_destroy=tracker.destroy, worker_count=2, max_worker_count=2, resource_pool_size=1
        )
    )
    starting = asyncio.ensure_future(manager.start())
    await creating.wait()
    ender = asyncio.ensure_future(getattr(manager, ending)())
    await asyncio.sleep(0)
    assert not ender.done()
    proceed.set()
    with pytest.raises(ManagerNotRunningError):
        await starting
    await ender
    assert manager.stats().state == ("stopped" if ending == "stop" else "killed")
    assert len(tracker.created) == 3
    assert tracker.balanced()
    assert not manager_tasks()


async def test_stop_waits_for_a_pending_retry(make_manager: Factory, tracker: Tracker) -> None:
    class Broken(Exception):
        pass

    async def broken_once(resource: Resource) -> int:
        if resource.id == 0:
            raise Broken
        return resource.id

    manager = make_manager(worker_count=1, check_health=lambda e: not isinstance(e, Broken), retry_delay=0.05)
    await manager.start()
    handle = await manager.submit(broken_once)
    await wait_for(lambda: manager.metrics().total_tasks_retried == 1)
    await manager.stop()
    assert await handle == 1
    assert tracker.balanced()


async def test_a_task_raising_a_base_exception_ends_the_manager_cleanly(
    make_manager: Factory, tracker: Tracker
) -> None:
    class Fatal(BaseException):
        pass

    async def fatal(resource: Resource) -> None:
        raise Fatal

    body = Blocker()
    manager = make_manager(worker_count=2)
    await manager.start()
    running = await manager.submit(body, 1)
    await wait_for(lambda: body.started == 1)
    # Submitted without yielding, so the idle worker takes the priority task first.
    queued_behind = [manager.submit_nowait(body, i) for i in range(3)]
    doomed = manager.submit_nowait(fatal, priority=True)
    with pytest.raises(Fatal):
        await doomed
    # The manager is over: stop() finds it killed, with everything released.
    await manager.stop()
    assert manager.stats().state == "killed"
    for handle in (running, *queued_behind):
        with pytest.raises(TaskAbortedError):
            await handle
    with pytest.raises(ManagerNotRunningError):
        await manager.submit(body, 9)
    assert tracker.balanced()
    assert not manager_tasks()


async def test_a_hanging_on_destroy_is_abandoned_after_destroy_timeout(
    tracker: Tracker, caplog: pytest.LogCaptureFixture
) -> None:
    from tasker_async import Config

    async def hang(resource: Resource) -> None:
        await tracker.destroy(resource)
        await asyncio.Event().wait()

    caplog.set_level(logging.ERROR, logger="tasker_async")
    manager = AsyncManager(
        Config(
            on_create=tracker.create,
            on_destroy=hang,
            destroy_timeout=0.05,
            worker_count=2,
            max_worker_count=2,
            resource_pool_size=1,
        )
    )
    await manager.start()
    await manager.stop()
    assert manager.stats().state == "stopped"
    assert caplog.text.count("destroy_timeout=0.05 s: abandoned") == 3
    assert tracker.balanced()
    await wait_for(lambda: not manager_tasks())  # the abandoned destroys were cancelled and end
