"""max_per_second: task starts spaced across the pool, nothing dropped, time throttled shown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tasker_async import AsyncManager, LifecycleEvent, TaskEvent
from tasker_async._core.ratelimit import StartLimiter

from .conftest import Resource, wait_for

Factory = Callable[..., AsyncManager[Resource]]


def test_gcra_spaces_starts_after_the_burst() -> None:
    limiter = StartLimiter(rate=10, burst=3)
    assert [limiter.reserve(0.0) for _ in range(5)] == pytest.approx([0, 0, 0, 0.1, 0.2])
    assert limiter.throttled == pytest.approx(0.3)


def test_gcra_forgets_an_idle_spell_but_no_more_than_the_burst() -> None:
    limiter = StartLimiter(rate=10, burst=2)
    assert [limiter.reserve(0.0) for _ in range(3)] == pytest.approx([0, 0, 0.1])
    # Long idle: the allowance refills to the burst, not beyond.
    assert [limiter.reserve(10.0) for _ in range(3)] == pytest.approx([0, 0, 0.1])
    # Requests arriving exactly at the rate never wait.
    steady = StartLimiter(rate=10)
    assert [steady.reserve(20.0 + i * 0.1) for i in range(5)] == pytest.approx([0] * 5, abs=1e-9)


async def test_starts_are_spaced_across_the_whole_pool(make_manager: Factory) -> None:
    starts: list[float] = []

    def record(event: LifecycleEvent) -> None:
        if isinstance(event, TaskEvent) and event.kind == "started" and event.started_at is not None:
            starts.append(event.started_at)

    async def work(resource: Resource, value: int) -> int:
        return value

    async with make_manager(worker_count=4, max_per_second=100, rate_limit_burst=2, hooks=[record]) as manager:
        results = await asyncio.gather(*(manager.queue_task(work, i) for i in range(12)))
        throttled = manager.stats().throttled_seconds
    assert results == list(range(12))  # nothing dropped
    starts.sort()
    # Two start at once (the burst), then one every 10 ms at most, across four workers. A start may be
    # stamped late after its sleep, so check each start against the schedule, not the gaps between them.
    for k in range(2, 12):
        assert starts[k] - starts[0] >= (k - 1) * 0.01 - 0.002, (k, starts[k] - starts[0])
    assert throttled > 0.3


async def test_run_task_obeys_the_limit_too(make_manager: Factory) -> None:
    loop = asyncio.get_running_loop()
    stamps: list[float] = []

    async def stamp(resource: Resource) -> None:
        stamps.append(loop.time())

    async with make_manager(worker_count=1, resource_pool_size=1, max_per_second=50) as manager:
        for _ in range(3):
            await manager.run_task(stamp)
    assert stamps[2] - stamps[0] >= 0.04 - 0.003


async def test_a_throttled_task_can_still_be_cancelled(make_manager: Factory) -> None:
    ran: list[int] = []

    async def work(resource: Resource, value: int) -> None:
        ran.append(value)

    async with make_manager(worker_count=1, max_per_second=0.5) as manager:
        await manager.queue_task(work, 0)  # takes the only start of the next 2 s
        waiting = await manager.submit(work, 1)
        await wait_for(lambda: manager.stats().running_tasks == 1)  # taken, waiting for its turn
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await wait_for(lambda: manager.stats().running_tasks == 0)
    assert ran == [0]
