"""The Go-parity aliases and the callback family."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from tasker_async import AsyncManager, ManagerNotRunningError, TaskHandle

from .conftest import Resource, manager_tasks

Factory = Callable[..., AsyncManager[Resource]]


async def double(resource: Resource, value: int) -> int:
    return value * 2


class Broken(Exception):
    pass


async def test_awaiting_aliases(make_manager: Factory) -> None:
    async with make_manager() as manager:
        assert await manager.queue_task_with_priority(double, 1) == 2
        assert await manager.queue_task_once(double, 2) == 4
        assert await manager.queue_task_with_priority_once(double, 3) == 6


async def test_async_aliases_return_handles_at_once(make_manager: Factory) -> None:
    order: list[str] = []

    async def record(resource: Resource, name: str) -> str:
        order.append(name)
        return name

    release = asyncio.Event()

    async def gate(resource: Resource) -> str:
        await release.wait()
        return "gate"

    async with make_manager(worker_count=1) as manager:
        held = manager.queue_task_async(gate)
        await asyncio.sleep(0)
        handles = [
            manager.queue_task_async(record, "main"),
            manager.queue_task_once_async(record, "main-once"),
            manager.queue_task_with_priority_async(record, "prio"),
            manager.queue_task_with_priority_once_async(record, "prio-once"),
        ]
        assert all(isinstance(h, TaskHandle) for h in handles)
        assert manager.stats().priority_tasks == 2
        release.set()
        await asyncio.gather(held, *handles)
    assert order == ["prio", "prio-once", "main", "main-once"]


async def test_callbacks_are_called_exactly_once_with_result_or_error(make_manager: Factory) -> None:
    seen: list[tuple[str, Any, Any]] = []
    done = asyncio.Event()

    def recorder(name: str) -> Callable[[Any, BaseException | None], None]:
        def callback(result: Any, exc: BaseException | None) -> None:
            seen.append((name, result, type(exc).__name__ if exc else None))
            if len(seen) == 5:
                done.set()

        return callback

    async def broken(resource: Resource) -> None:
        raise Broken

    async with make_manager(check_health=lambda e: not isinstance(e, Broken)) as manager:
        manager.queue_task_with_callback(double, recorder("plain"), 1)
        manager.queue_task_with_priority_with_callback(double, recorder("prio"), 2)
        manager.queue_task_once_with_callback(double, recorder("once"), 3)
        manager.queue_task_with_priority_once_with_callback(double, recorder("prio-once"), 4)
        manager.queue_task_once_with_callback(broken, recorder("broken"))
        await done.wait()
    assert sorted(seen) == [
        ("broken", None, "Broken"),
        ("once", 6, None),
        ("plain", 2, None),
        ("prio", 4, None),
        ("prio-once", 8, None),
    ]


async def test_async_callbacks_are_awaited_before_shutdown_completes(make_manager: Factory) -> None:
    seen: list[int] = []

    async def callback(result: int | None, exc: BaseException | None) -> None:
        await asyncio.sleep(0)
        assert result is not None
        seen.append(result)

    async with make_manager() as manager:
        for i in range(5):
            manager.queue_task_with_callback(double, callback, i)
    assert sorted(seen) == [0, 2, 4, 6, 8]
    assert not manager_tasks()


async def test_a_raising_callback_is_logged_and_loses_nothing(
    make_manager: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    def bad(result: int | None, exc: BaseException | None) -> None:
        raise RuntimeError("callback bug")

    def good(result: int | None, exc: BaseException | None) -> None:
        assert result is not None
        seen.append(result)

    caplog.set_level(logging.ERROR, logger="tasker_async")
    async with make_manager() as manager:
        manager.queue_task_with_callback(double, bad, 1)
        manager.queue_task_with_callback(double, good, 2)
        assert await manager.queue_task(double, 3) == 6
    assert seen == [4]
    assert "a task callback raised" in caplog.text


async def test_callback_when_not_running_gets_manager_not_running(make_manager: Factory) -> None:
    got: list[BaseException | None] = []
    called = asyncio.Event()

    def callback(result: Any, exc: BaseException | None) -> None:
        got.append(exc)
        called.set()

    manager = make_manager()
    manager.queue_task_with_callback(double, callback, 1)
    assert got == []  # called soon, not from inside queue_task_with_callback
    await called.wait()
    assert len(got) == 1
    assert isinstance(got[0], ManagerNotRunningError)


async def test_callback_submission_waits_for_room_in_a_full_queue(make_manager: Factory) -> None:
    release = asyncio.Event()
    results: list[Any] = []
    finished = asyncio.Event()

    async def gate(resource: Resource) -> str:
        await release.wait()
        return "gate"

    def callback(result: Any, exc: BaseException | None) -> None:
        results.append((result, exc))
        finished.set()

    async with make_manager(worker_count=1, max_queue_size=1) as manager:
        held = await manager.submit(gate)
        await asyncio.sleep(0)
        queued = await manager.submit(double, 1)
        manager.queue_task_with_callback(double, callback, 5)
        assert manager.stats().queued_tasks == 1
        release.set()
        await finished.wait()
        assert await held == "gate"
        assert await queued == 2
    assert results == [(10, None)]
