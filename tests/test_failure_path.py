"""The failure path itself failing: a raising logger or collector fails one task, never the manager."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

import pytest

from tasker_async import (
    AsyncManager,
    DefaultCollector,
    RetryableError,
    ScalingDecision,
    TaskEvent,
    TaskLifecycleTimestamps,
)

from .conftest import EventLog, Resource, Tracker

Factory = Callable[..., AsyncManager[Resource]]


class Broken(Exception):
    """The resource is bad."""


class Boom(Exception):
    """What the misbehaving logger or collector raises."""


class RaisingCollector(DefaultCollector):
    """The built-in collector, except for the calls named in ``raising``."""

    def __init__(self, *raising: str) -> None:
        super().__init__()
        self.raising = set(raising)

    def record_failure(self, timestamps: TaskLifecycleTimestamps) -> None:
        if "record_failure" in self.raising:
            raise Boom("record_failure")
        super().record_failure(timestamps)

    def record_retry(self) -> None:
        if "record_retry" in self.raising:
            raise Boom("record_retry")
        super().record_retry()


class RaisingLogger(logging.Logger):
    """A logger whose warnings raise."""

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        raise Boom("warning")


async def fails(resource: Resource) -> None:
    raise ValueError("the task's own error")


async def breaks(resource: Resource) -> None:
    raise Broken


async def echo(resource: Resource, value: int) -> int:
    return value


@pytest.mark.parametrize(
    ("body", "options", "expected"),
    [
        (fails, {"collector": RaisingCollector("record_failure")}, ValueError),
        (breaks, {"collector": RaisingCollector("record_retry")}, Boom),
        (breaks, {"logger": RaisingLogger("raising")}, Boom),
    ],
    ids=["collector.record_failure", "collector.record_retry", "logger.warning"],
)
async def test_a_failure_path_that_raises_fails_that_task_and_the_manager_goes_on(
    make_manager: Factory, tracker: Tracker, body: Any, options: dict[str, Any], expected: type[Exception]
) -> None:
    events = EventLog()
    async with make_manager(
        worker_count=1, check_health=lambda e: not isinstance(e, Broken), hooks=[events], **options
    ) as manager:
        with pytest.raises(expected):
            await manager.queue_task(body)
        assert manager.stats().state == "running"
        assert await manager.queue_task(echo, 7) == 7
        assert manager.stats().running_tasks == 0
    # stop() drained: the failed task was settled exactly once.
    assert manager.stats().state == "stopped"
    assert sum(e.kind in ("failed", "succeeded") for e in events.of(TaskEvent)) == 2


@pytest.mark.parametrize("retry_after", [math.inf, math.nan, 10**400, -1])
async def test_retry_after_that_is_not_finite_fails_the_task_and_stop_returns(
    make_manager: Factory, retry_after: float
) -> None:
    async def asks_forever(resource: Resource) -> None:
        raise RetryableError("later", retry_after=retry_after)

    async with make_manager(worker_count=1) as manager:
        with pytest.raises(ValueError, match="retry_after"):
            await manager.queue_task(asks_forever)
        assert manager.metrics().total_tasks_retried == 0
    assert manager.stats().state == "stopped"


async def test_many_queued_tasks_cancelled_in_random_order_leave_exact_counts(make_manager: Factory) -> None:
    import random

    gate, holding = asyncio.Event(), asyncio.Event()

    async def hold(resource: Resource) -> None:
        holding.set()
        await gate.wait()

    ran: list[int] = []

    async def record(resource: Resource, n: int) -> int:
        ran.append(n)
        return n

    async with make_manager(worker_count=1) as manager:
        held = await manager.submit(hold)
        await holding.wait()
        handles = [manager.submit_nowait(record, n) for n in range(5000)]
        order = list(range(5000))
        random.Random(3).shuffle(order)
        kept = set(order[:500])
        for n in order[500:]:
            assert handles[n].cancel()
        assert manager.stats().queued_tasks == 500
        # Removal is in place and O(1); the lane is compacted so it never holds mostly dead tasks.
        assert len(manager._rt.queue.main) <= 2 * 500 + 64
        gate.set()
        await held
        assert sorted(await asyncio.gather(*(handles[n] for n in kept))) == sorted(kept)
        assert ran == sorted(kept)  # FIFO among the survivors
        assert manager.stats().queued_tasks == 0
        assert manager.metrics().total_tasks_completed == 501


async def test_a_task_that_returns_a_non_awaitable_gets_an_error_that_says_so(
    make_manager: Factory, tracker: Tracker
) -> None:
    class Sync:
        """A callable object: whether it returns an awaitable is only known once called."""

        def __call__(self, resource: Resource) -> int:
            return 42

    async with make_manager(worker_count=1) as manager:
        with pytest.raises(TypeError, match=r"task .*Sync returned a non-awaitable .*async def fn\(resource, \.\.\.\)"):
            await manager.queue_task(Sync())  # type: ignore[arg-type]
        assert await manager.queue_task(echo, 1) == 1
        assert len(tracker.created) == 1
        assert manager.metrics().total_tasks_failed == 1


async def test_log_lines_about_a_task_name_it_and_carry_the_id_its_events_carry(
    make_manager: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    events = EventLog()
    caplog.set_level(logging.DEBUG, logger="tasker_async")
    async with make_manager(
        worker_count=1, max_retries=1, check_health=lambda e: not isinstance(e, Broken), hooks=[events]
    ) as manager:
        handle = await manager.submit(breaks)
        with pytest.raises(Exception, match="no retries left"):
            await handle
    task_id = handle.task_id
    assert {e.task_id for e in events.of(TaskEvent)} == {task_id}
    assert handle.name == "breaks"
    about = [r.getMessage() for r in caplog.records if f"(id {task_id})" in r.getMessage()]
    assert len(about) == 3  # unhealthy, retrying, unhealthy again
    assert all("task breaks (id" in line or "retrying task breaks (id" in line for line in about)
    assert "run 1" in about[0]
    assert "run 2" in about[-1]
    assert not any("finishing" in line for line in about)


class Nonsense:
    """A scaling policy answering something that is not a decision, a few times over."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.calls = 0
        self.asked = asyncio.Event()

    def decide(self, snapshot: object) -> Any:
        self.calls += 1
        if self.calls >= 3:
            self.asked.set()
        return self.answer


@pytest.mark.parametrize(
    "answer",
    [None, ScalingDecision(add=-1), ScalingDecision(add=True), ScalingDecision(retire=1.5)],  # type: ignore[arg-type]
    ids=["None", "negative", "bool", "float"],
)
async def test_a_scaling_policy_answering_nonsense_costs_a_decision_not_the_manager(
    make_manager: Factory, answer: object
) -> None:
    policy = Nonsense(answer)
    async with make_manager(worker_count=1, max_worker_count=2, scaling_policy=policy, burst_interval=0.001) as manager:
        await policy.asked.wait()
        assert manager.stats().state == "running"
        assert await manager.queue_task(echo, 3) == 3
    assert manager.stats().state == "stopped"
