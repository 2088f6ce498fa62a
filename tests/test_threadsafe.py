"""``manager.submit_threadsafe`` (SPEC §10): submissions from other threads, and their futures.

Threads are started with ``loop.run_in_executor`` and meet at a barrier so
they submit at once; the test awaits their futures with
``asyncio.wrap_future``. Blocking calls in threads carry a timeout so a bug
fails the test instead of hanging the executor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tasker_async import AsyncManager, Config, ManagerNotRunningError, TaskTimeoutError

from .conftest import Resource, Tracker, manager_tasks, wait_for

Factory = Callable[..., AsyncManager[Resource]]
THREADS = 8
PER_THREAD = 200


class Boom(Exception):
    pass


async def encode(resource: Resource, thread: int, index: int) -> int:
    await asyncio.sleep(0)
    return thread * 1000 + index


@pytest.fixture(autouse=True)
async def _no_task_left_behind() -> AsyncIterator[None]:
    yield
    assert not manager_tasks()


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=THREADS) as pool:
        yield pool


async def in_thread(pool: concurrent.futures.Executor, fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


class Gate:
    """A task that holds the only worker until released, so later submissions stay queued."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, resource: Resource) -> str:
        await self.release.wait()
        return "gate"


@pytest.mark.parametrize("max_queue_size", [0, 5])
async def test_many_threads_at_once_lose_nothing(
    make_manager: Factory, executor: concurrent.futures.ThreadPoolExecutor, max_queue_size: int
) -> None:
    barrier = threading.Barrier(THREADS, timeout=10)

    async with make_manager(worker_count=4, max_queue_size=max_queue_size) as manager:

        def submit_all(thread: int) -> list[concurrent.futures.Future[int]]:
            barrier.wait()
            return [manager.submit_threadsafe(encode, thread, index) for index in range(PER_THREAD)]

        batches = await asyncio.gather(*(in_thread(executor, submit_all, t) for t in range(THREADS)))
        futures = [future for batch in batches for future in batch]
        results = await asyncio.gather(*(asyncio.wrap_future(future) for future in futures))
        assert results == [t * 1000 + i for t in range(THREADS) for i in range(PER_THREAD)]
        assert manager.metrics().total_tasks_completed == THREADS * PER_THREAD
        assert manager.stats().queued_tasks == 0


async def test_threads_may_block_on_their_futures(
    make_manager: Factory, executor: concurrent.futures.ThreadPoolExecutor
) -> None:
    async with make_manager(worker_count=2) as manager:

        def submit_and_wait(thread: int) -> list[int]:
            futures = [manager.submit_threadsafe(encode, thread, index) for index in range(20)]
            return [future.result(timeout=10) for future in futures]

        results = await asyncio.gather(*(in_thread(executor, submit_and_wait, t) for t in range(THREADS)))
    assert results == [[t * 1000 + i for i in range(20)] for t in range(THREADS)]


async def test_callable_from_the_loop_thread(make_manager: Factory) -> None:
    async with make_manager() as manager:
        future = manager.submit_threadsafe(encode, 3, 4)
        assert isinstance(future, concurrent.futures.Future)
        assert await asyncio.wrap_future(future) == 3004


async def test_exceptions_reach_the_future(
    make_manager: Factory, executor: concurrent.futures.ThreadPoolExecutor
) -> None:
    boom = Boom("from the task")

    async def fails(resource: Resource) -> None:
        raise boom

    async with make_manager() as manager:
        future = await in_thread(executor, manager.submit_threadsafe, fails)
        error = await in_thread(executor, future.exception, 10)
    assert error is boom


async def test_cancelling_the_future_of_a_queued_task_removes_it(
    make_manager: Factory, executor: concurrent.futures.ThreadPoolExecutor
) -> None:
    ran: list[str] = []

    async def record(resource: Resource, name: str) -> str:
        ran.append(name)
        return name

    gate = Gate()
    async with make_manager(worker_count=1) as manager:
        held = await manager.submit(gate)
        doomed = await in_thread(executor, manager.submit_threadsafe, record, "doomed")
        kept = await in_thread(executor, manager.submit_threadsafe, record, "kept")
        await wait_for(lambda: manager.stats().queued_tasks == 2)
        assert await in_thread(executor, doomed.cancel)
        await wait_for(lambda: manager.stats().queued_tasks == 1)
        gate.release.set()
        assert await held == "gate"
        assert await asyncio.wrap_future(kept) == "kept"
    assert doomed.cancelled()
    assert ran == ["kept"]


async def test_cancelling_the_future_of_a_running_task_cancels_its_run(make_manager: Factory) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def long(resource: Resource) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with make_manager(worker_count=1) as manager:
        future = manager.submit_threadsafe(long)
        await started.wait()
        assert await asyncio.to_thread(future.cancel)
        await cancelled.wait()
        assert await manager.queue_task(encode, 0, 1) == 1  # the worker survived
    assert future.cancelled()


async def test_a_task_that_cancels_itself_cancels_the_future(make_manager: Factory) -> None:
    async def gives_up(resource: Resource) -> None:
        raise asyncio.CancelledError

    async with make_manager() as manager:
        future = manager.submit_threadsafe(gives_up)
        await asyncio.wait([asyncio.wrap_future(future)])
    assert future.cancelled()


def test_a_thread_is_not_left_waiting_when_the_loop_ends(tracker: Tracker) -> None:
    """``asyncio.run`` returns with the manager running and a submission waiting for room."""
    waiting: list[concurrent.futures.Future[int]] = []

    async def main() -> None:
        config = Config(
            on_create=tracker.create,
            on_destroy=tracker.destroy,
            worker_count=1,
            resource_pool_size=0,
            max_queue_size=1,
        )
        manager = AsyncManager(config)
        await manager.start()
        await manager.submit(Gate())
        await manager.submit(encode, 0, 0)
        waiting.append(await asyncio.to_thread(manager.submit_threadsafe, encode, 0, 1))
        await asyncio.sleep(0)
        assert not waiting[0].done()

    asyncio.run(main())
    assert waiting[0].cancelled()
    assert tracker.balanced()


async def test_cancelled_before_the_loop_took_it_never_runs(make_manager: Factory) -> None:
    ran: list[int] = []

    async def record(resource: Resource) -> None:
        ran.append(1)

    async with make_manager() as manager:
        future = manager.submit_threadsafe(record)
        assert future.cancel()  # no loop turn in between: the submission is still scheduled
        await asyncio.sleep(0)
        assert manager.stats().queued_tasks == 0
    assert ran == []
    assert manager.metrics().total_tasks_completed == 0


async def test_full_queue_waits_for_room_and_a_cancelled_wait_queues_nothing(
    make_manager: Factory, executor: concurrent.futures.ThreadPoolExecutor
) -> None:
    ran: list[str] = []

    async def record(resource: Resource, name: str) -> str:
        ran.append(name)
        return name

    gate = Gate()
    async with make_manager(worker_count=1, max_queue_size=1) as manager:
        held = await manager.submit(gate)
        await wait_for(lambda: manager.stats().running_tasks == 1)
        first = await manager.submit(record, "first")
        abandoned = await in_thread(executor, manager.submit_threadsafe, record, "abandoned")
        waiting = await in_thread(executor, manager.submit_threadsafe, record, "waiting")
        await asyncio.sleep(0)
        assert not abandoned.done()
        assert not waiting.done()
        assert manager.stats().queued_tasks == 1  # both wait for room, neither failed
        assert await in_thread(executor, abandoned.cancel)
        gate.release.set()
        assert await held == "gate"
        assert await first == "first"
        assert await asyncio.wrap_future(waiting) == "waiting"
    assert ran == ["first", "waiting"]


async def test_a_wait_for_room_ends_with_the_manager(make_manager: Factory) -> None:
    gate = Gate()
    async with make_manager(worker_count=1, max_queue_size=1) as manager:
        await manager.submit(gate)
        await manager.submit(encode, 0, 0)
        future = manager.submit_threadsafe(encode, 0, 1)
        await asyncio.sleep(0)
        stopping = asyncio.create_task(manager.stop())
        with pytest.raises(ManagerNotRunningError):
            await asyncio.wrap_future(future)
        gate.release.set()
        await stopping


async def test_not_running_gives_manager_not_running_error(make_manager: Factory) -> None:
    manager = make_manager()
    before = manager.submit_threadsafe(encode, 0, 0)
    assert isinstance(before.exception(timeout=0), ManagerNotRunningError)

    gate = Gate()
    await manager.start()
    held = await manager.submit(gate)
    stopping = asyncio.create_task(manager.stop())
    await wait_for(lambda: manager.stats().state == "stopping")
    during = manager.submit_threadsafe(encode, 0, 0)  # the loop refuses it
    with pytest.raises(ManagerNotRunningError):
        await asyncio.wrap_future(during)
    gate.release.set()
    await stopping
    assert await held == "gate"

    after = manager.submit_threadsafe(encode, 0, 0)
    assert isinstance(after.exception(timeout=0), ManagerNotRunningError)  # at once, without a loop turn
    from_thread = await asyncio.to_thread(manager.submit_threadsafe, encode, 0, 0)
    assert isinstance(from_thread.exception(timeout=0), ManagerNotRunningError)


async def test_priority_and_timeout_are_passed_on(make_manager: Factory) -> None:
    order: list[str] = []

    async def record(resource: Resource, name: str) -> None:
        order.append(name)

    async def forever(resource: Resource) -> None:
        await asyncio.Event().wait()

    gate = Gate()
    async with make_manager(worker_count=1) as manager:
        held = await manager.submit(gate)
        main = manager.submit_threadsafe(record, "main")
        urgent = manager.submit_threadsafe(record, "urgent", priority=True, once=True)
        await wait_for(lambda: manager.stats().priority_tasks == 1 and manager.stats().queued_tasks == 1)
        gate.release.set()
        await held
        await asyncio.wrap_future(main)
        await asyncio.wrap_future(urgent)
        with pytest.raises(TaskTimeoutError):
            await asyncio.wrap_future(manager.submit_threadsafe(forever, timeout=0.01))
        with pytest.raises(ValueError, match="timeout"):
            manager.submit_threadsafe(record, "bad", timeout=0)
    assert order == ["urgent", "main"]
