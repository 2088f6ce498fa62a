"""Recovery from on_create failures: a jittered, configurable backoff that a success cuts short, quiet logs."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable

import pytest

from tasker_async import (
    AsyncManager,
    LifecycleEvent,
    ResourceCreationError,
    ResourceCreationFailed,
    WorkerEvent,
)
from tasker_async._core import resources as _resources
from tasker_async._core.health import (
    LONGEST_BACKOFF,
    CreationStreak,
    StreakNote,
    creation_backoff,
    retry_backoff,
)

from .conftest import EventLog, Resource, Tracker, wait_for

Factory = Callable[..., AsyncManager[Resource]]

# Bounds a wait that only a bug could make long: the test fails instead of hanging.
STUCK = 5.0


class Broken(Exception):
    """The resource is bad."""


def healthy_unless_broken(exc: BaseException) -> bool:
    return not isinstance(exc, Broken)


async def broken(resource: Resource) -> None:
    raise Broken


async def resource_id(resource: Resource) -> int:
    return resource.id


# -- pure decisions ------------------------------------------------------------------


def test_creation_backoff_is_jittered_between_half_and_all_of_the_doubling_wait() -> None:
    rng = random.Random(5)
    draws = [rng.random() for _ in range(8)]
    # Eight workers failing together on their first try: eight different waits.
    firsts = [creation_backoff(1, base=0.2, cap=5.0, draw=d) for d in draws]
    assert firsts == [0.2 * (0.5 + 0.5 * d) for d in draws]
    assert len(set(firsts)) == 8
    assert all(0.1 <= wait < 0.2 for wait in firsts)
    assert max(firsts) - min(firsts) > 0.05  # spread over the range, not bunched
    # The bounds of the range: half the backoff at draw 0, all of it at the top.
    assert [creation_backoff(n, base=0.2, cap=1.0, draw=0.0) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert [creation_backoff(n, base=0.2, cap=1.0, draw=1.0) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.0, 1.0]


@pytest.mark.parametrize("cap", [None, 5.0])
@pytest.mark.parametrize(("base", "multiplier"), [(0.01, 2.0), (1.0, 10.0), (1e-310, 2.0), (0.5, 1.0000001)])
def test_retry_backoff_never_overflows(base: float, multiplier: float, cap: float | None) -> None:
    for attempt in (1_024, 1_100, 5_000, 10**6):
        delay = retry_backoff(attempt, base=base, multiplier=multiplier, cap=cap, jitter=0.0, draw=0.0)
        assert math.isfinite(delay)
        assert 0 < delay <= (LONGEST_BACKOFF if cap is None else cap)
    assert retry_backoff(5_000, base=0.01, multiplier=2, cap=None, jitter=0.0, draw=0.0) == LONGEST_BACKOFF
    assert retry_backoff(5_000, base=0.01, multiplier=2, cap=5, jitter=0.5, draw=0.5) == 3.75


def test_creation_backoff_never_overflows() -> None:
    for failures in (1_025, 5_000, 10**6):
        assert creation_backoff(failures, base=0.05, cap=5.0, draw=0.5) == 3.75
    assert creation_backoff(5_000, base=1e-300, cap=1e300, draw=1.0) == 1e300
    # Below the cap, but a power too large for a float on its own.
    assert creation_backoff(1_500, base=1e-300, cap=1e300, draw=1.0) == pytest.approx(math.ldexp(1e-300, 1_499))


def test_a_streak_is_logged_first_then_summed_up_then_ended() -> None:
    streak = CreationStreak(interval=10.0)
    assert streak.succeeded(0.0) is None  # no streak: nothing to report
    notes = [streak.failed(now) for now in (100.0, 103.0, 109.0, 110.0, 119.0, 120.0, 121.0)]
    assert notes == [
        StreakNote.FIRST,
        StreakNote.QUIET,
        StreakNote.QUIET,
        StreakNote.SUMMARY,  # 10 s after the first
        StreakNote.QUIET,
        StreakNote.SUMMARY,  # 10 s after the last summary
        StreakNote.QUIET,
    ]
    assert streak.succeeded(130.5) == (7, 30.5)
    assert streak.succeeded(131.0) is None
    assert streak.failed(140.0) is StreakNote.FIRST  # a new streak starts afresh


# -- in a manager ----------------------------------------------------------------------


async def _creation_delays(make_manager: Factory, tracker: Tracker, seed: int) -> list[float | None]:
    watch = EventLog()
    async with make_manager(
        worker_count=1,
        check_health=healthy_unless_broken,
        max_retries=0,
        creation_backoff_base=0.001,
        creation_backoff_max=0.004,
        rng=random.Random(seed),
        hooks=[watch],
    ) as manager:
        tracker.fail_next = 5
        with pytest.raises(Exception, match="no retries left"):
            await manager.queue_task(broken)
        await watch.until(lambda: bool(watch.of(WorkerEvent, kind="created", reason="replacement")))
    failures = watch.of(ResourceCreationFailed)
    assert [f.consecutive_failures for f in failures] == [1, 2, 3, 4, 5]
    return [f.retry_in for f in failures]


async def test_the_configured_backoff_is_used_jittered_and_repeatable_with_a_seed(
    make_manager: Factory, tracker: Tracker
) -> None:
    delays = await _creation_delays(make_manager, tracker, seed=11)
    for delay, backoff in zip(delays, [0.001, 0.002, 0.004, 0.004, 0.004], strict=True):
        assert delay is not None
        assert backoff / 2 <= delay < backoff
    assert len(set(delays[2:])) == 3  # jittered even at the cap
    assert await _creation_delays(make_manager, tracker, seed=11) == delays
    assert await _creation_delays(make_manager, tracker, seed=12) != delays


async def test_workers_waiting_out_a_backoff_try_again_once_a_creation_succeeds(
    make_manager: Factory, tracker: Tracker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tasker_async")
    watch = EventLog()
    # A backoff of 15 s at least: only the wake-up can bring the workers back within this test.
    async with make_manager(
        worker_count=2,
        check_health=healthy_unless_broken,
        max_retries=0,
        creation_backoff_base=30,
        creation_backoff_max=30,
        hooks=[watch],
    ) as manager:
        tracker.fail_next = 2
        blockers = [await manager.submit(broken) for _ in range(2)]
        for handle in blockers:
            with pytest.raises(Exception, match="no retries left"):
                await handle
        await watch.until(lambda: len(watch.of(ResourceCreationFailed)) == 2)
        assert all(f.retry_in is not None and f.retry_in >= 15 for f in watch.of(ResourceCreationFailed))
        assert manager.stats().active_workers == 0
        # Someone else makes a resource (a run_task with no pool makes a temporary one): the backend is back.
        assert await manager.run_task(resource_id) == 2
        async with asyncio.timeout(STUCK):
            await watch.until(lambda: len(watch.of(WorkerEvent, kind="created", reason="replacement")) == 2)
        assert {await manager.queue_task(resource_id) for _ in range(4)} <= {3, 4}
    # Two failures, one streak: one ERROR line.
    failed = [r for r in caplog.records if r.getMessage().startswith("on_create failed")]
    assert [r.levelno for r in failed] == [logging.ERROR, logging.DEBUG]
    assert "on_create recovered after 2 failed attempts" in caplog.text


async def test_a_failure_streak_logs_one_error_then_debug_lines_and_periodic_summaries(
    make_manager: Factory, tracker: Tracker, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger="tasker_async")
    # The streak's clock moves 3 s at each failure, whatever the real time.
    now = [0.0]
    monkeypatch.setattr(_resources, "monotonic", lambda: now[0])

    def tick(event: LifecycleEvent) -> None:
        if isinstance(event, ResourceCreationFailed):
            now[0] += 3.0

    watch = EventLog()
    async with make_manager(
        worker_count=1,
        check_health=healthy_unless_broken,
        max_retries=0,
        creation_backoff_base=0.001,
        creation_backoff_max=0.001,
        hooks=[tick, watch],
    ) as manager:
        tracker.fail_next = 6
        with pytest.raises(Exception, match="no retries left"):
            await manager.queue_task(broken)
        await watch.until(lambda: bool(watch.of(WorkerEvent, kind="created", reason="replacement")))
    assert len(watch.of(ResourceCreationFailed)) == 6  # every failure is still reported to hooks
    about_creation = [(r.levelno, r.getMessage()) for r in caplog.records if r.getMessage().startswith("on_create")]
    first, *rest = about_creation
    assert first[0] == logging.ERROR
    assert first[1].startswith("on_create failed: ConnectionError('backend unavailable'); retrying in ")
    error_record = next(r for r in caplog.records if r.getMessage() == first[1])
    assert error_record.exc_info is not None
    assert isinstance(error_record.exc_info[1], ConnectionError)
    assert [level for level, _ in rest] == [
        logging.DEBUG,  # failure 2, at 3 s
        logging.DEBUG,  # 6 s
        logging.DEBUG,  # 9 s
        logging.DEBUG,  # failure 5, at 12 s: a summary is due
        logging.ERROR,
        logging.DEBUG,  # failure 6, at 15 s
        logging.INFO,  # the creation that succeeded, at 18 s
    ]
    assert rest[4][1] == "on_create failing for 12 s, 5 attempts, last error: ConnectionError('backend unavailable')"
    assert rest[6][1] == "on_create recovered after 6 failed attempts in 18.0 s"


async def test_the_breaker_error_chains_the_last_on_create_error(make_manager: Factory, tracker: Tracker) -> None:
    watch = EventLog()
    async with make_manager(
        worker_count=1,
        check_health=healthy_unless_broken,
        max_retries=0,
        creation_breaker_threshold=2,
        creation_backoff_base=0.001,
        creation_backoff_max=0.001,
        hooks=[watch],
    ) as manager:
        tracker.fail_next = 10_000
        with pytest.raises(Exception, match="no retries left"):
            await manager.queue_task(broken)
        await watch.until(lambda: len(watch.of(ResourceCreationFailed)) >= 2)
        with pytest.raises(ResourceCreationError, match="failing fast") as refused:
            await manager.submit(resource_id)
        assert isinstance(refused.value.__cause__, ConnectionError)
        assert str(refused.value.__cause__) == "backend unavailable"
        tracker.fail_next = 0
        await watch.until(lambda: bool(watch.of(WorkerEvent, kind="created", reason="replacement")))
        assert await manager.queue_task(resource_id) == 1


async def test_the_breaker_opening_wakes_a_submit_waiting_for_room(make_manager: Factory, tracker: Tracker) -> None:
    watch = EventLog()
    release = asyncio.Event()

    async def held_then_broken(resource: Resource) -> None:
        await release.wait()
        raise Broken

    async with make_manager(
        worker_count=1,
        check_health=healthy_unless_broken,
        max_retries=0,
        max_queue_size=1,
        creation_breaker_threshold=1,
        creation_backoff_base=0.001,
        creation_backoff_max=0.001,
        hooks=[watch],
    ) as manager:
        held = await manager.submit(held_then_broken)
        await wait_for(lambda: manager.stats().queued_tasks == 0)  # the worker holds it
        queued = await manager.submit(resource_id)  # the queue is full now
        blocked = asyncio.create_task(manager.submit(resource_id))
        await asyncio.sleep(0)
        assert not blocked.done()
        tracker.fail_next = 10_000
        release.set()  # the only resource goes bad and no replacement can be made: the breaker opens
        async with asyncio.timeout(STUCK):
            with pytest.raises(ResourceCreationError, match="failing fast"):
                await blocked
        with pytest.raises(Exception, match="no retries left"):
            await held
        with pytest.raises(ResourceCreationError, match="failing fast"):
            await queued
        tracker.fail_next = 0
        await watch.until(lambda: bool(watch.of(WorkerEvent, kind="created", reason="replacement")))
        assert await manager.queue_task(resource_id) == 1


async def test_a_pool_refill_whose_creation_fails_is_retried_until_it_succeeds(
    make_manager: Factory, tracker: Tracker
) -> None:
    async with make_manager(
        worker_count=1,
        resource_pool_size=1,
        check_health=healthy_unless_broken,
        creation_backoff_base=0.001,
        creation_backoff_max=0.002,
    ) as manager:
        assert manager.stats().available_resources == 1
        tracker.fail_next = 3
        with pytest.raises(Broken):
            await manager.run_task(broken)  # its pooled resource goes bad, and the refill's on_create fails
        async with asyncio.timeout(STUCK):
            await tracker.wait_until(lambda: manager.stats().available_resources == 1)
        assert manager.stats().resource_creation_failures == 3
        assert await manager.run_task(resource_id) == 2


async def test_a_refill_waiting_out_its_backoff_ends_with_the_manager(make_manager: Factory, tracker: Tracker) -> None:
    watch = EventLog()
    manager = make_manager(
        worker_count=1,
        resource_pool_size=1,
        check_health=healthy_unless_broken,
        creation_backoff_base=30,
        creation_backoff_max=30,
        hooks=[watch],
    )
    await manager.start()
    tracker.fail_next = 1
    with pytest.raises(Broken):
        await manager.run_task(broken)
    await watch.until(lambda: bool(watch.of(ResourceCreationFailed)))
    async with asyncio.timeout(STUCK):
        await manager.stop()
    assert manager.stats().state == "stopped"
    assert tracker.balanced()
