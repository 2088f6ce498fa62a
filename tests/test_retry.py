"""Retries: RetryableError and PermanentError, and the backoff (exact, with seeded jitter)."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable

import pytest

from tasker_async import (
    AsyncManager,
    Config,
    ConfigError,
    LifecycleEvent,
    MaxRetriesExceededError,
    PermanentError,
    RetryableError,
    TaskEvent,
)
from tasker_async._core.health import retry_backoff

from .conftest import Resource, Tracker, wait_for

Factory = Callable[..., AsyncManager[Resource]]


def test_backoff_grows_caps_and_jitters_exactly() -> None:
    plain = [retry_backoff(n, base=0.1, multiplier=2, cap=None, jitter=0, draw=0.0) for n in range(1, 6)]
    assert plain == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])
    capped = [retry_backoff(n, base=0.1, multiplier=2, cap=0.5, jitter=0, draw=0.0) for n in range(1, 6)]
    assert capped == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    rng = random.Random(42)
    draws = [rng.random() for _ in range(3)]
    jittered = [
        retry_backoff(n, base=1.0, multiplier=3, cap=None, jitter=0.5, draw=d)
        for n, d in zip((1, 2, 3), draws, strict=True)
    ]
    assert jittered == pytest.approx(
        [1.0 * (1 - 0.5 * draws[0]), 3.0 * (1 - 0.5 * draws[1]), 9.0 * (1 - 0.5 * draws[2])]
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("retry_multiplier", 0.5), ("retry_max_delay", -1), ("retry_jitter", 1.5), ("rng", 42)],
)
def test_backoff_settings_are_validated(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        Config(on_create=object, **{field: value})  # type: ignore[call-overload]


def test_retry_after_is_validated() -> None:
    with pytest.raises(ValueError, match="retry_after"):
        RetryableError("x", retry_after=-1)
    assert RetryableError("x", retry_after=2).retry_after == 2


async def test_the_manager_waits_the_seeded_backoff_sequence(
    make_manager: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    async def flaky(resource: Resource) -> None:
        raise RetryableError("try later")

    caplog.set_level(logging.WARNING, logger="tasker_async")
    async with make_manager(
        worker_count=1,
        max_retries=3,
        retry_delay=0.01,
        retry_multiplier=2.0,
        retry_jitter=0.5,
        rng=random.Random(7),
    ) as manager:
        with pytest.raises(MaxRetriesExceededError) as caught:
            await manager.queue_task(flaky)
    assert caught.value.attempts == 4
    assert isinstance(caught.value.__cause__, RetryableError)
    waited = [float(x) for x in re.findall(r"retrying task .* in ([0-9.]+) s", caplog.text)]
    rng = random.Random(7)
    expected = [0.01 * 2 ** (n - 1) * (1 - 0.5 * rng.random()) for n in (1, 2, 3)]
    assert waited == pytest.approx(expected, abs=0.0005)  # the log rounds to the millisecond


async def test_retryable_error_retries_on_the_same_resource_without_check_health(
    make_manager: Factory, tracker: Tracker
) -> None:
    asked: list[BaseException] = []
    runs: list[int] = []

    def check(exc: BaseException) -> bool:
        asked.append(exc)
        return True

    async def twice_unlucky(resource: Resource) -> str:
        runs.append(resource.id)
        if len(runs) < 3:
            raise RetryableError("busy")
        return "done"

    async with make_manager(worker_count=1, check_health=check) as manager:
        assert await manager.queue_task(twice_unlucky) == "done"
        assert manager.metrics().total_tasks_retried == 2
    assert runs == [0, 0, 0]  # no replacement
    assert asked == []
    assert len(tracker.created) == 1


async def test_retry_after_is_honoured_without_holding_a_worker(make_manager: Factory) -> None:
    loop = asyncio.get_running_loop()
    stamps: list[float] = []

    async def rate_limited(resource: Resource) -> str:
        stamps.append(loop.time())
        if len(stamps) == 1:
            raise RetryableError("429", retry_after=60)
        return "ok"

    async def other(resource: Resource) -> str:
        return "other"

    async with make_manager(worker_count=1) as manager:
        first = await manager.submit(rate_limited)
        await wait_for(lambda: manager.metrics().total_tasks_retried == 1)
        # The only worker is free while the retry waits out its 60 s.
        assert await manager.queue_task(other) == "other"
        assert not first.done()
        first.cancel()
    assert len(stamps) == 1


async def test_a_short_retry_after_wins_over_no_backoff(make_manager: Factory) -> None:
    loop = asyncio.get_running_loop()
    stamps: list[float] = []

    async def once_limited(resource: Resource) -> str:
        stamps.append(loop.time())
        if len(stamps) == 1:
            raise RetryableError("429", retry_after=0.05)
        return "ok"

    async with make_manager(worker_count=1) as manager:
        assert await manager.queue_task(once_limited) == "ok"
    assert stamps[1] - stamps[0] >= 0.05 - 0.002


async def test_retryable_error_with_once_reaches_the_caller(make_manager: Factory) -> None:
    error = RetryableError("no")

    async def fail(resource: Resource) -> None:
        raise error

    async with make_manager() as manager:
        with pytest.raises(RetryableError) as caught:
            await manager.queue_task(fail, once=True)
    assert caught.value is error


async def test_permanent_error_is_never_retried_nor_judged(make_manager: Factory, tracker: Tracker) -> None:
    asked: list[BaseException] = []
    runs = 0
    events: list[LifecycleEvent] = []

    async def bad_input(resource: Resource) -> None:
        nonlocal runs
        runs += 1
        raise PermanentError("malformed")

    def never_healthy(exc: BaseException) -> bool:
        asked.append(exc)
        return False

    async with make_manager(worker_count=1, check_health=never_healthy, hooks=[events.append]) as manager:
        with pytest.raises(PermanentError, match="malformed"):
            await manager.queue_task(bad_input)
        assert manager.metrics().total_tasks_failed == 1
    assert runs == 1
    assert asked == []
    assert len(tracker.created) == 1  # the worker kept its resource
    assert [e.kind for e in events if isinstance(e, TaskEvent)] == ["queued", "started", "failed"]


async def test_unhealthy_retries_use_the_backoff_too(make_manager: Factory, caplog: pytest.LogCaptureFixture) -> None:
    class Broken(Exception):
        pass

    async def broken(resource: Resource) -> None:
        raise Broken

    caplog.set_level(logging.WARNING, logger="tasker_async")
    async with make_manager(
        worker_count=1,
        max_retries=2,
        retry_delay=0.002,
        retry_multiplier=3.0,
        check_health=lambda e: not isinstance(e, Broken),
    ) as manager:
        with pytest.raises(MaxRetriesExceededError):
            await manager.queue_task(broken)
    assert re.findall(r"retrying task .* in ([0-9.]+) s", caplog.text) == ["0.002", "0.006"]


@pytest.mark.parametrize("error", [PermanentError("bad"), RetryableError("later")])
async def test_run_task_never_judges_the_retry_steering_errors(
    make_manager: Factory, tracker: Tracker, error: Exception
) -> None:
    asked: list[BaseException] = []

    def never_healthy(exc: BaseException) -> bool:
        asked.append(exc)
        return False

    async def fail(resource: Resource) -> None:
        raise error

    async with make_manager(worker_count=1, resource_pool_size=1, check_health=never_healthy) as manager:
        with pytest.raises(type(error)):
            await manager.run_task(fail)
        assert manager.stats().available_resources == 1  # the pooled resource was kept
    assert asked == []
