"""mypy --strict: a task's result type comes back through every way of running it.

Checked by ``mypy --strict tests/typing`` (and ``tests/test_typing.py``), never run. Each
``# type: ignore[...]`` line is a use that must be rejected: warn_unused_ignores fails the
check if it is ever accepted.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncGenerator, AsyncIterator
from typing import assert_type

from tasker_async import AsyncManager, Config, TaskHandle


class Conn: ...


class Other: ...


async def connect() -> Conn:
    return Conn()


async def fetch(conn: Conn, x: int) -> str:
    return str(x)


async def fetch_all(conn: Conn, x: int, label: str, *, unused: bool = False) -> list[str]:
    return [label] * x


async def square(conn: Conn, item: int) -> int:
    return item * item


async def on_object(resource: object, x: int) -> bytes:
    return b""


async def on_other(other: Other, x: int) -> str:
    return ""


def sync_fetch(conn: Conn, x: int) -> str:
    return ""


async def numbers() -> AsyncIterator[int]:
    yield 1


async def check_single_tasks() -> None:
    manager = AsyncManager(Config(on_create=connect))
    assert_type(manager, AsyncManager[Conn])
    assert_type(await manager.queue_task(fetch, 1), str)
    assert_type(await manager.queue_task(fetch, 1, priority=True, once=True, timeout=1.0), str)
    assert_type(await manager.queue_task(fetch_all, 2, "a"), list[str])
    assert_type(await manager.queue_task(on_object, 1), bytes)
    assert_type(await manager.queue_task(lambda conn, x: fetch(conn, x), 1), str)
    handle = await manager.submit(fetch, 1)
    assert_type(handle, TaskHandle[str])
    assert_type(await handle, str)
    assert_type(manager.submit_nowait(fetch, 1), TaskHandle[str])
    assert_type(await manager.run_task(fetch, 1), str)
    assert_type(await manager.run_task(fetch, 1, timeout=1.0), str)
    assert_type(manager.submit_threadsafe(fetch, 1), concurrent.futures.Future[str])
    assert_type(manager.submit_threadsafe(fetch, 1).result(), str)


async def check_bulk() -> None:
    manager = AsyncManager(Config(on_create=connect))
    assert_type(manager.map(square, [1, 2]), AsyncGenerator[int, None])
    assert_type(manager.map(fetch, range(3), ordered=False, max_pending=4), AsyncGenerator[str, None])
    assert_type(manager.map(square, numbers()), AsyncGenerator[int, None])
    assert_type(manager.map(square, [1], return_exceptions=True), AsyncGenerator[int | BaseException, None])
    assert_type(manager.as_completed(square, [1, 2]), AsyncGenerator[int, None])
    assert_type(manager.as_completed(square, [1], return_exceptions=True), AsyncGenerator[int | BaseException, None])
    async for value in manager.map(square, [1, 2]):
        assert_type(value, int)


async def check_wrong_tasks_are_rejected() -> None:
    manager = AsyncManager(Config(on_create=connect))
    await manager.queue_task(fetch, "1")  # type: ignore[arg-type]
    await manager.queue_task(fetch)  # type: ignore[arg-type]
    await manager.queue_task(fetch, 1, 2)  # type: ignore[arg-type]
    await manager.queue_task(on_other, 1)  # type: ignore[arg-type]
    await manager.queue_task(sync_fetch, 1)  # type: ignore[arg-type]
    await manager.submit(fetch, "1")  # type: ignore[arg-type]
    manager.submit_nowait(on_other, 1)  # type: ignore[arg-type]
    await manager.run_task(fetch, "1")  # type: ignore[arg-type]
    manager.submit_threadsafe(sync_fetch, 1)  # type: ignore[arg-type]
    manager.map(square, ["1"])  # type: ignore[arg-type]
    manager.as_completed(on_other, [1])  # type: ignore[arg-type]
    count: int = await manager.queue_task(fetch, 1)  # type: ignore[arg-type]
    handle: TaskHandle[int] = await manager.submit(fetch, 1)  # type: ignore[arg-type]
    del count, handle
