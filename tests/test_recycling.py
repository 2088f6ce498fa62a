"""Worker recycling: task budgets, resource age (jittered), and the idle probe."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from tasker_async import AsyncManager, WorkerEvent
from tasker_async._core.health import jittered_age

from .conftest import EventLog, Resource, Tracker

Factory = Callable[..., AsyncManager[Resource]]


class Workers(EventLog):
    def reasons(self, kind: str) -> list[str]:
        return [e.reason for e in self.of(WorkerEvent, kind=kind)]


async def resource_id(resource: Resource) -> int:
    return resource.id


def test_age_jitter_stays_within_ten_percent_and_spreads() -> None:
    rng = random.Random(3)
    ages = [jittered_age(100.0, rng.random()) for _ in range(1000)]
    assert min(ages) >= 90.0
    assert max(ages) <= 110.0
    assert max(ages) - min(ages) > 15.0  # spread, not all at once


async def test_a_worker_retires_after_its_task_budget(make_manager: Factory, tracker: Tracker) -> None:
    workers = Workers()
    async with make_manager(worker_count=1, max_tasks_per_worker=3, hooks=[workers]) as manager:
        used = [await manager.queue_task(resource_id) for _ in range(7)]
        await workers.until(lambda: len(workers.reasons("created")) == 3)
    assert used == [0, 0, 0, 1, 1, 1, 2]
    assert workers.reasons("destroyed")[:2] == ["recycled", "recycled"]
    assert workers.reasons("created") == ["start", "recycle", "recycle"]
    assert tracker.balanced()


async def test_an_old_resource_is_replaced_after_the_task_in_hand(make_manager: Factory) -> None:
    workers = Workers()
    release = asyncio.Event()

    async def slow(resource: Resource) -> int:
        await release.wait()
        return resource.id

    async with make_manager(worker_count=1, max_resource_age=0.05, hooks=[workers]) as manager:
        running = await manager.submit(slow)
        # The resource outlives its age while the task runs: the task is not disturbed...
        await asyncio.sleep(0.1)  # allow-sleep: lets the 50 ms age pass while the task is held
        assert workers.reasons("destroyed") == []
        release.set()
        assert await running == 0
        # ...and the worker is recycled right after it.
        await workers.until(lambda: "recycled" in workers.reasons("destroyed"))
        assert await manager.queue_task(resource_id) >= 1


async def test_an_idle_worker_is_recycled_when_its_resource_ages(make_manager: Factory) -> None:
    workers = Workers()
    async with make_manager(worker_count=2, max_resource_age=0.05, hooks=[workers]) as manager:
        await workers.until(lambda: workers.reasons("destroyed").count("recycled") >= 2)
        assert await manager.queue_task(resource_id) >= 2


async def test_the_idle_probe_replaces_a_resource_that_went_bad(make_manager: Factory, tracker: Tracker) -> None:
    workers = Workers()
    probed: list[int] = []

    async def check(resource: Resource) -> bool:
        probed.append(resource.id)
        return resource.id != 0

    async with make_manager(
        worker_count=1, check_resource=check, check_resource_interval=0.01, hooks=[workers]
    ) as manager:
        await workers.until(lambda: "unhealthy" in workers.reasons("destroyed"))
        await workers.until(lambda: len(workers.reasons("created")) == 2)
        assert await manager.queue_task(resource_id) == 1
    assert probed[0] == 0
    assert next(r.id for r in tracker.destroyed) == 0


async def test_a_raising_probe_counts_as_a_bad_resource(
    make_manager: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    workers = Workers()

    def check(resource: Resource) -> bool:
        if resource.id == 0:
            raise OSError("ping failed")
        return True

    async with make_manager(
        worker_count=1, check_resource=check, check_resource_interval=0.01, hooks=[workers]
    ) as manager:
        await workers.until(lambda: "unhealthy" in workers.reasons("destroyed"))
        assert await manager.queue_task(resource_id) == 1
    assert "check_resource raised" in caplog.text
