"""Health: unhealthy errors replace exactly the bad resource and retry the task, within limits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from tasker_async import (
    AsyncManager,
    MaxRetriesExceededError,
    ResourceCreationError,
    TaskAbortedError,
)
from tasker_async._core.health import RetryVerdict, creation_backoff, retry_verdict

from .conftest import Resource, Tracker, manager_tasks, wait_for

Factory = Callable[..., AsyncManager[Resource]]


class Broken(Exception):
    """The resource is bad."""


def healthy_unless_broken(exc: BaseException) -> bool:
    return not isinstance(exc, Broken)


async def broken_on(resource: Resource, bad_ids: set[int]) -> int:
    if resource.id in bad_ids:
        raise Broken(f"resource {resource.id}")
    return resource.id


# -- pure decisions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "max_retries", "once", "verdict"),
    [
        (1, 3, False, RetryVerdict.RETRY),
        (3, 3, False, RetryVerdict.RETRY),
        (4, 3, False, RetryVerdict.EXHAUSTED),
        (1, 0, False, RetryVerdict.EXHAUSTED),
        (1, 3, True, RetryVerdict.FAIL_ONCE),
        (1, 0, True, RetryVerdict.FAIL_ONCE),
    ],
)
def test_retry_verdict(attempts: int, max_retries: int, once: bool, verdict: RetryVerdict) -> None:
    assert retry_verdict(attempts=attempts, max_retries=max_retries, once=once) is verdict


def test_creation_backoff_doubles_up_to_a_cap() -> None:
    # draw=1.0 is the top of the jitter range: the backoff itself.
    assert [creation_backoff(n, base=0.05, cap=5.0, draw=1.0) for n in range(1, 5)] == [0.05, 0.1, 0.2, 0.4]
    assert creation_backoff(50, base=0.05, cap=5.0, draw=1.0) == 5.0


# -- through the manager -----------------------------------------------------------------


async def test_unhealthy_error_destroys_exactly_that_resource_and_retries(
    make_manager: Factory, tracker: Tracker
) -> None:
    async with make_manager(worker_count=1, check_health=healthy_unless_broken) as manager:
        assert await manager.queue_task(broken_on, {0}) == 1
        assert [r.id for r in tracker.destroyed] == [0]
        assert [r.id for r in tracker.created] == [0, 1]
        stats = manager.stats()
        assert stats.active_workers == 1
        metrics = manager.metrics()
        assert (metrics.total_tasks_retried, metrics.total_tasks_completed, metrics.total_tasks_failed) == (1, 1, 0)


async def test_healthy_errors_keep_the_resource(make_manager: Factory, tracker: Tracker) -> None:
    async def fail(resource: Resource) -> None:
        raise ValueError("just this task")

    async with make_manager(worker_count=1, check_health=healthy_unless_broken) as manager:
        with pytest.raises(ValueError, match="just this task"):
            await manager.queue_task(fail)
        assert tracker.destroyed == []
        assert manager.metrics().total_tasks_retried == 0


async def test_retries_stop_after_max_retries_with_the_cause_chained(make_manager: Factory, tracker: Tracker) -> None:
    async def always_broken(resource: Resource) -> None:
        raise Broken(f"resource {resource.id}")

    async with make_manager(worker_count=1, check_health=healthy_unless_broken, max_retries=2) as manager:
        with pytest.raises(MaxRetriesExceededError) as caught:
            await manager.queue_task(always_broken)
        assert caught.value.attempts == 3
        assert isinstance(caught.value.__cause__, Broken)
        assert str(caught.value.__cause__) == "resource 2"
        await tracker.wait_until(lambda: len(tracker.created) == 4)
        assert [r.id for r in tracker.destroyed] == [0, 1, 2]
        assert manager.metrics().total_tasks_retried == 2


async def test_max_retries_zero_never_retries(make_manager: Factory, tracker: Tracker) -> None:
    runs: list[int] = []

    async def broken(resource: Resource) -> None:
        runs.append(resource.id)
        raise Broken

    async with make_manager(worker_count=1, check_health=healthy_unless_broken, max_retries=0) as manager:
        with pytest.raises(MaxRetriesExceededError) as caught:
            await manager.queue_task(broken)
        assert caught.value.attempts == 1
    assert runs == [0]
    assert manager.metrics().total_tasks_retried == 0


async def test_once_never_retries_and_raises_the_tasks_own_error(make_manager: Factory) -> None:
    runs: list[int] = []
    error = Broken("once")

    async def broken(resource: Resource) -> None:
        runs.append(resource.id)
        raise error

    async with make_manager(worker_count=1, check_health=healthy_unless_broken) as manager:
        with pytest.raises(Broken) as caught:
            await manager.queue_task(broken, once=True)
        assert caught.value is error
        with pytest.raises(Broken):
            await manager.queue_task_with_priority_once(broken)
    assert runs == [0, 1]


async def test_check_health_raising_counts_as_unhealthy_and_is_logged(
    make_manager: Factory, tracker: Tracker, caplog: pytest.LogCaptureFixture
) -> None:
    def check(exc: BaseException) -> bool:
        raise RuntimeError("checker bug")

    async def fail_first(resource: Resource) -> int:
        if resource.id == 0:
            raise ValueError
        return resource.id

    caplog.set_level(logging.ERROR, logger="tasker_async")
    async with make_manager(worker_count=1, check_health=check) as manager:
        assert await manager.queue_task(fail_first) == 1
    assert next(r.id for r in tracker.destroyed) == 0
    assert "check_health raised" in caplog.text


async def test_a_delayed_retry_does_not_hold_a_worker(make_manager: Factory) -> None:
    runs: list[int] = []

    async def broken_once(resource: Resource) -> int:
        runs.append(resource.id)
        if resource.id == 0:
            raise Broken
        return resource.id

    async with make_manager(worker_count=1, check_health=healthy_unless_broken, retry_delay=60) as manager:
        first = await manager.submit(broken_once)
        await wait_for(lambda: manager.metrics().total_tasks_retried == 1)
        # The only worker serves other work while the retry waits out its delay.
        assert await manager.queue_task(broken_once) == 1
        stats = manager.stats()
        assert (stats.queued_tasks, stats.priority_tasks, stats.running_tasks) == (0, 0, 0)
        assert not first.done()
        first.cancel()
    assert runs == [0, 1]


async def test_retry_runs_after_retry_delay_on_the_priority_queue(make_manager: Factory) -> None:
    loop = asyncio.get_running_loop()
    stamps: list[float] = []

    async def broken_once(resource: Resource) -> int:
        stamps.append(loop.time())
        if resource.id == 0:
            raise Broken
        return resource.id

    async with make_manager(worker_count=1, check_health=healthy_unless_broken, retry_delay=0.05) as manager:
        assert await manager.queue_task(broken_once) == 1
    assert stamps[1] - stamps[0] >= 0.05


async def test_replacement_whose_on_create_fails_comes_back_with_backoff(
    make_manager: Factory, tracker: Tracker
) -> None:
    async with make_manager(worker_count=1, check_health=healthy_unless_broken) as manager:
        tracker.fail_next = 3
        assert await manager.queue_task(broken_on, {0}) == 1
        assert manager.stats().resource_creation_failures == 3
        assert manager.stats().active_workers == 1


async def test_kill_and_stop_work_while_a_replacement_keeps_failing(make_manager: Factory, tracker: Tracker) -> None:
    for ending in ("kill", "stop"):
        manager = make_manager(worker_count=1, check_health=healthy_unless_broken, max_retries=1)
        await manager.start()
        tracker.fail_next = 10_000
        handle = await manager.submit(broken_on, {r.id for r in tracker.created})
        await tracker.wait_until(lambda: tracker.fail_next < 10_000)
        if ending == "kill":
            await manager.kill()
            with pytest.raises(TaskAbortedError):
                await handle
        else:
            await manager.stop(timeout=0.1)
            with pytest.raises(TaskAbortedError):
                await handle
        assert manager.stats().active_workers == 0
        tracker.fail_next = 0
    assert tracker.balanced()
    assert not manager_tasks()


async def test_start_failure_destroys_what_it_made_and_can_be_retried(make_manager: Factory, tracker: Tracker) -> None:
    calls = 0

    def flaky() -> Resource:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise ConnectionError("third one fails")
        return tracker.create()

    manager = make_manager(worker_count=2, resource_pool_size=2, on_create=flaky)
    with pytest.raises(ResourceCreationError) as caught:
        await manager.start()
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert tracker.balanced()
    assert len(tracker.created) == 3
    assert manager.stats().state == "created"
    assert not manager_tasks()
    await manager.start()
    assert manager.stats().active_workers == 2
    await manager.stop()
    assert tracker.balanced()
