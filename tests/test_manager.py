"""Submitting tasks: results, ordering, bounds, timeouts, handles, state errors and stats."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tasker_async import (
    AsyncManager,
    Config,
    ManagerNotRunningError,
    QueueFullError,
    TaskTimeoutError,
)

from .conftest import Resource, Tracker, manager_tasks, wait_for

Factory = Callable[..., AsyncManager[Resource]]


async def echo(resource: Resource, value: Any) -> tuple[int, Any]:
    return resource.id, value


class Gate:
    """A task body that holds its worker until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, resource: Resource) -> str:
        self.entered.set()
        await self.release.wait()
        return "gate"


async def test_queue_task_returns_the_result_computed_on_a_worker_resource(make_manager: Factory) -> None:
    async with make_manager() as manager:
        resource_id, value = await manager.queue_task(echo, "x")
    assert value == "x"
    assert resource_id in (0, 1)


async def test_the_tasks_own_exception_reaches_the_caller_unchanged(make_manager: Factory) -> None:
    error = KeyError("mine")

    async def boom(resource: Resource) -> None:
        raise error

    async with make_manager() as manager:
        with pytest.raises(KeyError) as caught:
            await manager.queue_task(boom)
        assert caught.value is error
        assert manager.metrics().total_tasks_failed == 1


async def test_priority_first_and_fifo_within_each_queue(make_manager: Factory) -> None:
    order: list[str] = []

    async def record(resource: Resource, name: str) -> None:
        order.append(name)

    gate = Gate()
    async with make_manager(worker_count=1) as manager:
        held = await manager.submit(gate)
        await gate.entered.wait()
        handles = [await manager.submit(record, f"m{i}") for i in range(3)]
        handles += [await manager.submit(record, f"p{i}", priority=True) for i in range(3)]
        handles.append(await manager.submit(record, "m3"))
        assert manager.stats().queued_tasks == 4
        assert manager.stats().priority_tasks == 3
        gate.release.set()
        await asyncio.gather(held, *handles)
    assert order == ["p0", "p1", "p2", "m0", "m1", "m2", "m3"]


async def test_many_tasks_all_resolve_with_their_own_result(make_manager: Factory) -> None:
    async with make_manager(worker_count=4) as manager:
        results = await asyncio.gather(*(manager.queue_task(echo, i) for i in range(500)))
    assert [value for _, value in results] == list(range(500))
    assert manager.metrics().total_tasks_completed == 500


async def test_submitting_before_start_or_after_stop_fails_at_once(make_manager: Factory) -> None:
    manager = make_manager()
    with pytest.raises(ManagerNotRunningError, match="not started"):
        await manager.queue_task(echo, 1)
    with pytest.raises(ManagerNotRunningError):
        manager.submit_nowait(echo, 1)
    with pytest.raises(ManagerNotRunningError):
        await manager.run_task(echo, 1)
    await manager.start()
    await manager.stop()
    with pytest.raises(ManagerNotRunningError, match="stopped"):
        await manager.submit(echo, 1)
    with pytest.raises(ManagerNotRunningError, match="single-use"):
        await manager.start()


async def test_start_twice_is_refused(make_manager: Factory) -> None:
    async with make_manager() as manager:
        with pytest.raises(RuntimeError, match="already"):
            await manager.start()


async def test_stop_and_kill_before_start_just_mark_the_manager(make_manager: Factory, tracker: Tracker) -> None:
    stopped, killed = make_manager(), make_manager()
    await stopped.stop()
    await killed.kill()
    assert stopped.stats().state == "stopped"
    assert killed.stats().state == "killed"
    assert tracker.created == []
    with pytest.raises(ManagerNotRunningError):
        await stopped.start()


async def test_submit_nowait_raises_queue_full_and_submit_waits_for_room(make_manager: Factory) -> None:
    gate = Gate()
    async with make_manager(worker_count=1, max_queue_size=2) as manager:
        held = await manager.submit(gate)
        await gate.entered.wait()
        queued = [manager.submit_nowait(echo, 1), manager.submit_nowait(echo, 2)]
        with pytest.raises(QueueFullError, match="max_queue_size=2"):
            manager.submit_nowait(echo, 3)
        # The priority queue has its own bound.
        priority = manager.submit_nowait(echo, "p", priority=True)
        waiting = asyncio.ensure_future(manager.submit(echo, 3))
        await asyncio.sleep(0)
        assert not waiting.done()
        gate.release.set()
        late = await waiting
        results = await asyncio.gather(held, *queued, priority, late)
    assert [r if isinstance(r, str) else r[1] for r in results] == ["gate", 1, 2, "p", 3]


async def test_a_waiting_submit_is_refused_when_the_manager_stops(make_manager: Factory) -> None:
    gate = Gate()
    manager = make_manager(worker_count=1, max_queue_size=1)
    await manager.start()
    held = await manager.submit(gate)
    await gate.entered.wait()
    queued = await manager.submit(echo, 1)
    waiting = asyncio.ensure_future(manager.submit(echo, 2))
    await asyncio.sleep(0)
    stopping = asyncio.ensure_future(manager.stop())
    with pytest.raises(ManagerNotRunningError):
        await waiting
    gate.release.set()
    await stopping
    assert await held == "gate"
    assert (await queued)[1] == 1


async def test_timeout_bounds_the_run_not_the_wait(make_manager: Factory) -> None:
    gate = Gate()

    async def forever(resource: Resource) -> None:
        await asyncio.Event().wait()

    async with make_manager(worker_count=1) as manager:
        held = await manager.submit(gate)
        await gate.entered.wait()
        # Queued behind the gate far longer than its timeout, yet it runs and succeeds.
        quick = await manager.submit(echo, "ok", timeout=0.01)
        await asyncio.sleep(0.05)  # allow-sleep: the wait in the queue must outlast the timeout
        gate.release.set()
        assert (await quick)[1] == "ok"
        with pytest.raises(TaskTimeoutError) as caught:
            await manager.queue_task(forever, timeout=0.01)
        assert isinstance(caught.value, TimeoutError)
        assert caught.value.timeout == 0.01
        await held
        # The worker survived its timed-out run, with the same resource.
        assert (await manager.queue_task(echo, 1))[0] == 0
        assert manager.stats().active_workers == 1


async def test_config_task_timeout_is_the_default(make_manager: Factory) -> None:
    async def forever(resource: Resource) -> None:
        await asyncio.Event().wait()

    async with make_manager(task_timeout=0.01) as manager:
        with pytest.raises(TaskTimeoutError):
            await manager.queue_task(forever)


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "1", True])
async def test_bad_timeouts_are_rejected(make_manager: Factory, timeout: Any) -> None:
    async with make_manager() as manager:
        with pytest.raises(ValueError, match="timeout"):
            await manager.queue_task(echo, 1, timeout=timeout)
        with pytest.raises(ValueError, match="timeout"):
            manager.submit_nowait(echo, 1, timeout=timeout)
        assert manager.stats().queued_tasks == 0


async def test_tasks_keep_their_own_options_however_many_kinds_are_used(make_manager: Factory) -> None:
    async def note(resource: Resource, index: int) -> int:
        return index

    async with make_manager(worker_count=1, task_timeout=30.0) as manager:
        handles = [
            manager.submit_nowait(note, i, priority=i % 2 == 0, once=i % 3 == 0, timeout=10.0 + i) for i in range(200)
        ]
        options = [(h._options.priority, h._options.once, h._options.timeout) for h in handles]
        assert options == [(i % 2 == 0, i % 3 == 0, 10.0 + i) for i in range(200)]
        assert await asyncio.gather(*handles) == list(range(200))
        plain = manager.submit_nowait(note, -1)
        assert (plain._options.priority, plain._options.once, plain._options.timeout) == (False, False, 30.0)
        assert await plain == -1
        # Options are shared between tasks alike, and a caller choosing ever new timeouts
        # does not make the manager keep them all.
        assert len(manager._rt.ledger._options) <= 64


async def test_handle_api_mirrors_asyncio_future(make_manager: Factory) -> None:
    seen: list[Any] = []

    async def boom(resource: Resource) -> None:
        raise ValueError("bad")

    async with make_manager() as manager:
        ok = await manager.submit(echo, 1)
        ok.add_done_callback(seen.append)
        assert not ok.done()
        with pytest.raises(asyncio.InvalidStateError):
            ok.result()
        assert (await ok)[1] == 1
        assert ok.done()
        assert not ok.cancelled()
        assert ok.result()[1] == 1
        assert ok.exception() is None
        assert seen == [ok]
        assert not ok.cancel()
        failed = await manager.submit(boom)
        with pytest.raises(ValueError, match="bad"):
            await failed
        assert isinstance(failed.exception(), ValueError)
        assert "done" in repr(failed)


async def test_stats_count_workers_queues_and_running_tasks(make_manager: Factory) -> None:
    gate = Gate()
    async with make_manager(worker_count=2, resource_pool_size=3) as manager:
        stats = manager.stats()
        assert (stats.base_workers, stats.active_workers, stats.burst_workers) == (2, 2, 0)
        assert stats.available_resources == 3
        assert stats.state == "running"
        running = [await manager.submit(gate), await manager.submit(gate)]
        await wait_for(lambda: manager.stats().running_tasks == 2)
        queued = await manager.submit(echo, 1)
        assert manager.stats().queued_tasks == 1
        assert "running workers=2/2 burst=0 queued=1+0 running=2" in repr(manager)
        gate.release.set()
        await asyncio.gather(*running, queued)
        assert manager.stats().running_tasks == 0
    assert manager.stats().state == "stopped"
    assert manager.stats().active_workers == 0
    assert manager.stats().available_resources == 0
    assert not manager_tasks()


async def test_sync_and_async_callables_are_both_accepted(tracker: Tracker) -> None:
    created: list[int] = []
    destroyed: list[int] = []

    async def create() -> int:
        created.append(len(created))
        return created[-1]

    def destroy(resource: int) -> None:
        destroyed.append(resource)

    async def unhealthy(exc: BaseException) -> bool:
        return not isinstance(exc, ConnectionError)

    async def fail(resource: int) -> None:
        raise ConnectionError

    config = Config(
        on_create=create,
        on_destroy=destroy,
        worker_count=1,
        max_worker_count=1,
        resource_pool_size=0,
        check_health=unhealthy,
        max_retries=0,
    )
    async with AsyncManager(config) as manager:
        with pytest.raises(Exception, match="no retries left"):
            await manager.queue_task(fail)
    assert sorted(created) == sorted(destroyed) == [0, 1]
