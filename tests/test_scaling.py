"""Burst scaling: the policies on tables of snapshots, and the supervisor under real load."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from tasker_async import (
    AsyncManager,
    BacklogPolicy,
    Config,
    ConfigError,
    LifecycleEvent,
    RatePolicy,
    ScalingDecision,
    ScalingEvent,
    ScalingSnapshot,
    WorkerEvent,
)

from .conftest import EventLog, Resource, Tracker, manager_tasks, scaling_snapshot, wait_for

Factory = Callable[..., AsyncManager[Resource]]

BASE = scaling_snapshot()


def snap(**changes: Any) -> ScalingSnapshot:
    return replace(BASE, **changes)


# -- the rate policy ------------------------------------------------------------------

RATE = RatePolicy(cooldown=1.0, idle_grace=0.5)


@pytest.mark.parametrize(
    ("seen", "add", "retire"),
    [
        # Arrivals 30/s, completions 10/s on 2 workers (5/s each): a deficit of 20/s needs 4 workers.
        (snap(queued=10, arrival_rate=30, completion_rate=10), 4, 0),
        # The same deficit with room for only 1 more (5 alive, 1 starting, max 6).
        (snap(queued=10, arrival_rate=30, completion_rate=10, active_workers=5, starting_workers=1), 0, 0),
        (snap(queued=10, arrival_rate=30, completion_rate=10, active_workers=5), 1, 0),
        # Nothing completed in the window while work waits: a worker per queued task...
        (snap(queued=3, arrival_rate=0, completion_rate=0), 3, 0),
        # ... that no starting worker will take.
        (snap(queued=3, starting_workers=1, arrival_rate=0, completion_rate=0), 2, 0),
        # Arrivals outpace completions but nothing is queued: hold.
        (snap(queued=0, arrival_rate=30, completion_rate=10), 0, 0),
        # Completions 40/s, arrivals 10/s on 4 workers (10/s each): a surplus of 30/s frees 3, 2 are idle.
        (
            snap(
                queued=1,
                active_workers=4,
                burst_workers=2,
                idle_burst=(1.0, 2.0),
                arrival_rate=10,
                completion_rate=40,
                arrivals_in_window=100,
            ),
            0,
            2,
        ),
        # Surplus, but only one burst worker idle long enough.
        (
            snap(
                queued=1,
                active_workers=4,
                burst_workers=2,
                idle_burst=(1.0, 0.1),
                arrival_rate=10,
                completion_rate=40,
                arrivals_in_window=100,
            ),
            0,
            1,
        ),
        # No work, no arrivals in the window: every idle burst worker goes.
        (snap(active_workers=5, burst_workers=3, idle_burst=(0.6, 0.7, 9.0), completion_rate=3), 0, 3),
        # ... but not within the cooldown after a scale-up.
        (snap(active_workers=5, burst_workers=3, idle_burst=(0.6, 0.7, 9.0), last_scale_up=99.5), 0, 0),
        # Balanced load: hold.
        (snap(queued=2, arrival_rate=10, completion_rate=10, arrivals_in_window=100), 0, 0),
    ],
)
def test_rate_policy(seen: ScalingSnapshot, add: int, retire: int) -> None:
    decision = RATE.decide(seen)
    assert (decision.add, decision.retire) == (add, retire)
    assert bool(decision.reason) == bool(add or retire)


# -- the backlog policy ----------------------------------------------------------------

BACKLOG = BacklogPolicy(threshold=10, step=3, cooldown=1.0, idle_grace=0.5)


@pytest.mark.parametrize(
    ("seen", "add", "retire"),
    [
        (snap(queued=11), 3, 0),
        (snap(queued=10), 0, 0),
        (snap(queued=50, active_workers=5), 1, 0),
        (snap(queued=50, active_workers=6), 0, 0),
        (snap(queued=4, burst_workers=2, idle_burst=(0.5, 3.0)), 0, 2),
        (snap(queued=5, burst_workers=2, idle_burst=(0.5, 3.0)), 0, 0),
        (snap(queued=0, burst_workers=2, idle_burst=(0.2, 3.0)), 0, 1),
        (snap(queued=0, burst_workers=2, idle_burst=(3.0, 3.0), last_scale_up=99.9), 0, 0),
    ],
)
def test_backlog_policy(seen: ScalingSnapshot, add: int, retire: int) -> None:
    decision = BACKLOG.decide(seen)
    assert (decision.add, decision.retire) == (add, retire)


@pytest.mark.parametrize(
    "build",
    [
        lambda: RatePolicy(cooldown=-1),
        lambda: RatePolicy(idle_grace=math.nan),
        lambda: BacklogPolicy(threshold=0),
        lambda: BacklogPolicy(threshold=5, step=0),
        lambda: BacklogPolicy(threshold=5, cooldown="1"),  # type: ignore[arg-type]
    ],
)
def test_policies_reject_bad_arguments(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        build()


def test_config_picks_the_policy() -> None:
    assert isinstance(Config(on_create=object).scaling_policy, RatePolicy)
    backlog = Config(on_create=object, burst_task_threshold=7, burst_worker_count=2).scaling_policy
    assert backlog == BacklogPolicy(threshold=7, step=2)
    with pytest.raises(ConfigError, match="scaling_policy"):
        Config(on_create=object, scaling_policy=object())  # type: ignore[call-overload]


# -- the supervisor ------------------------------------------------------------------------


class Watch(EventLog):
    def scaling(self) -> list[ScalingEvent]:
        return self.of(ScalingEvent)


class Held:
    """Task bodies held until released; records the resources they ran on."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.ran_on: set[int] = set()

    async def __call__(self, resource: Resource, value: int) -> int:
        self.ran_on.add(resource.id)
        await self.release.wait()
        return value * 10


def burst_manager(make_manager: Factory, watch: Watch, **options: Any) -> AsyncManager[Resource]:
    options.setdefault("worker_count", 2)
    options.setdefault("max_worker_count", 5)
    options.setdefault("burst_interval", 0.005)
    options.setdefault("scaling_policy", BacklogPolicy(threshold=2, step=2, cooldown=0.0, idle_grace=0.0))
    return make_manager(hooks=[watch], **options)


async def test_backlog_brings_burst_workers_up_to_the_maximum_and_back_to_zero(
    make_manager: Factory, tracker: Tracker
) -> None:
    watch = Watch()
    body = Held()
    async with burst_manager(make_manager, watch) as manager:
        handles = [await manager.submit(body, i) for i in range(20)]
        await watch.until(lambda: manager.stats().active_workers == 5)
        assert manager.stats().burst_workers == 3
        assert len(body.ran_on) == 5  # every burst worker took a task
        body.release.set()
        assert [await h for h in handles] == [i * 10 for i in range(20)]
        await watch.until(lambda: manager.stats().burst_workers == 0)
        stats = manager.stats()
        assert stats.active_workers == 2
        assert stats.burst_workers_added == stats.burst_workers_retired == 3
    ups = [e for e in watch.scaling() if e.kind == "scale_up"]
    assert [e.count for e in ups] == [3]  # step 2 per 2 queued: up to the maximum in one decision
    assert max(e.burst_workers for e in watch.scaling()) == 3
    retired = [e for e in watch.events if isinstance(e, WorkerEvent) and e.reason == "retired"]
    assert len(retired) == 3
    assert all(e.burst for e in retired)
    assert tracker.balanced()


async def test_active_workers_never_exceed_the_maximum(make_manager: Factory) -> None:
    watch = Watch()
    body = Held()
    peak = 0

    def track(event: LifecycleEvent) -> None:
        nonlocal peak
        peak = max(peak, manager.stats().active_workers)

    async with burst_manager(
        make_manager, watch, scaling_policy=BacklogPolicy(threshold=1, step=10, cooldown=0, idle_grace=0)
    ) as manager:
        manager.add_hook(track)
        handles = [await manager.submit(body, i) for i in range(50)]
        await watch.until(lambda: manager.stats().active_workers == 5)
        # Give the supervisor many more decisions while the backlog stays high.
        ticks = len(watch.scaling())
        for _ in range(10):
            await asyncio.sleep(0.005)  # allow-sleep: lets decisions happen; the assertion holds at every instant
        assert len(watch.scaling()) == ticks  # at the maximum, no further scale-up is even attempted
        body.release.set()
        await asyncio.gather(*handles)
    assert peak == 5


async def test_repeated_scaling_loses_and_aborts_nothing(make_manager: Factory, tracker: Tracker) -> None:
    watch = Watch()
    async with burst_manager(make_manager, watch) as manager:
        for round_ in range(5):
            body = Held()
            handles = [await manager.submit(body, round_ * 100 + i) for i in range(12)]
            target = 3 * (round_ + 1)
            await watch.until(lambda: manager.stats().burst_workers_added >= target)  # noqa: B023
            # Quick tasks flowing while workers scale: none of them may be lost or aborted.
            quick = [manager.queue_task(_times_ten, i) for i in range(30)]
            body.release.set()
            results = await asyncio.gather(*handles, *quick)
            assert results[:12] == [(round_ * 100 + i) * 10 for i in range(12)]
            assert results[12:] == [i * 10 for i in range(30)]
            await watch.until(lambda: manager.stats().burst_workers == 0)
        metrics = manager.metrics()
        assert metrics.total_tasks_completed == 5 * 42
        assert metrics.total_tasks_failed == 0
    assert tracker.balanced()
    assert not manager_tasks()


async def _times_ten(resource: Resource, value: int) -> int:
    return value * 10


async def test_rate_policy_adds_workers_when_nothing_completes(make_manager: Factory) -> None:
    watch = Watch()
    body = Held()
    async with burst_manager(
        make_manager, watch, max_worker_count=3, scaling_policy=RatePolicy(cooldown=0, idle_grace=0)
    ) as manager:
        handles = [await manager.submit(body, i) for i in range(5)]
        await watch.until(lambda: manager.stats().active_workers == 3)
        assert watch.scaling()[0].reason
        body.release.set()
        await asyncio.gather(*handles)
        await watch.until(lambda: manager.stats().burst_workers == 0)


async def test_scaling_decisions_are_logged(make_manager: Factory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tasker_async")
    watch = Watch()
    body = Held()
    async with burst_manager(make_manager, watch, max_worker_count=3) as manager:
        handles = [await manager.submit(body, i) for i in range(6)]
        await watch.until(lambda: manager.stats().active_workers == 3)
        body.release.set()
        await asyncio.gather(*handles)
        await watch.until(lambda: manager.stats().burst_workers == 0)
    assert "scale_up: 1 burst worker(s)" in caplog.text
    assert "scale_down: 1 burst worker(s)" in caplog.text


async def test_a_raising_policy_is_logged_and_holds(make_manager: Factory, caplog: pytest.LogCaptureFixture) -> None:
    calls = asyncio.Event()

    class Broken:
        def decide(self, snapshot: ScalingSnapshot) -> ScalingDecision:
            calls.set()
            raise RuntimeError("policy bug")

    caplog.set_level(logging.ERROR, logger="tasker_async")
    async with make_manager(max_worker_count=4, burst_interval=0.001, scaling_policy=Broken()) as manager:
        await calls.wait()
        assert await manager.queue_task(_echo) == "ok"
        assert manager.stats().burst_workers == 0
    assert "scaling policy" in caplog.text


async def _echo(resource: Resource) -> str:
    return "ok"


class Broken(Exception):
    pass


class BurstBreaker:
    """Tasks that hold base workers until released, and break burst resources on cue."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.burst_started = asyncio.Event()
        self.break_burst = asyncio.Event()

    async def __call__(self, resource: Resource, value: int) -> int:
        if resource.id >= 2:  # base workers hold resources 0 and 1
            self.burst_started.set()
            await self.break_burst.wait()
            raise Broken
        await self.release.wait()
        return value


def _replaced_bursts(watch: Watch) -> list[WorkerEvent]:
    return [e for e in watch.events if isinstance(e, WorkerEvent) and e.kind == "replaced" and e.burst]


async def test_an_unhealthy_burst_worker_is_not_replaced_once_the_queue_is_empty(make_manager: Factory) -> None:
    watch = Watch()
    tasks = BurstBreaker()
    async with burst_manager(
        make_manager, watch, max_worker_count=3, check_health=lambda e: not isinstance(e, Broken)
    ) as manager:
        handles = [await manager.submit(tasks, i, once=True) for i in range(6)]
        await tasks.burst_started.wait()
        tasks.release.set()
        await watch.until(lambda: manager.stats().queued_tasks == 0 and manager.stats().running_tasks == 1)
        tasks.break_burst.set()
        results = await asyncio.gather(*handles, return_exceptions=True)
        assert sum(isinstance(r, Broken) for r in results) == 1
        await watch.until(lambda: manager.stats().burst_workers == 0)
        assert _replaced_bursts(watch) == []
        assert manager.stats().burst_workers_retired == 0  # it left as unhealthy, not retired


async def test_an_unhealthy_burst_worker_is_replaced_while_work_waits(make_manager: Factory) -> None:
    watch = Watch()
    tasks = BurstBreaker()
    async with burst_manager(
        make_manager, watch, max_worker_count=3, check_health=lambda e: not isinstance(e, Broken)
    ) as manager:
        handles = [await manager.submit(tasks, i, once=True) for i in range(6)]
        await tasks.burst_started.wait()
        assert manager.stats().queued_tasks == 3
        tasks.break_burst.set()
        await watch.until(lambda: bool(_replaced_bursts(watch)))
        tasks.release.set()
        results = await asyncio.gather(*handles, return_exceptions=True)
        assert all(isinstance(r, (int, Broken)) for r in results)
        await watch.until(lambda: manager.stats().burst_workers == 0)


def _supervisor_running() -> bool:
    return any(task.get_name().endswith("_supervise") for task in asyncio.all_tasks())


@pytest.mark.parametrize("ending", ["stop", "kill"])
async def test_the_supervisor_stops_first_on_shutdown(make_manager: Factory, ending: str) -> None:
    watch = Watch()
    body = Held()
    manager = burst_manager(make_manager, watch, max_worker_count=4)
    await manager.start()
    handles = [await manager.submit(body, i) for i in range(3)]  # running 2, queued 1: below the threshold
    await wait_for(_supervisor_running)
    ending_call = asyncio.ensure_future(getattr(manager, ending)())
    # The backlog grows past the threshold only now, yet no worker is added: the supervisor is gone.
    await wait_for(lambda: not _supervisor_running())
    assert not ending_call.done()
    body.release.set()
    await ending_call
    await asyncio.gather(*handles, return_exceptions=True)
    assert watch.scaling() == []
