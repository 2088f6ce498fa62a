"""The built-in collector: percentile accuracy, fixed memory, windowed rates, and the manager's metrics."""

from __future__ import annotations

import asyncio
import gc
import math
import random
import tracemalloc
from collections.abc import Callable

import pytest

from tasker_async import AsyncManager, DefaultCollector, TaskLifecycleTimestamps, TaskMetrics
from tasker_async._observe.histogram import LogHistogram
from tasker_async._observe.rates import WindowRate

from .conftest import Resource

Factory = Callable[..., AsyncManager[Resource]]


def exact(samples: list[float], q: float) -> float:
    """The nearest-rank q-quantile."""
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def uniform(rng: random.Random, n: int) -> list[float]:
    return [rng.uniform(0.001, 0.5) for _ in range(n)]


def bimodal(rng: random.Random, n: int) -> list[float]:
    return [rng.gauss(0.002, 0.0002) if rng.random() < 0.7 else rng.gauss(1.5, 0.1) for _ in range(n)]


def heavy_tailed(rng: random.Random, n: int) -> list[float]:
    return [0.0005 * rng.paretovariate(1.2) for _ in range(n)]


@pytest.mark.parametrize("distribution", [uniform, bimodal, heavy_tailed])
@pytest.mark.parametrize("q", [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0])
def test_quantiles_are_within_two_percent_of_exact(
    distribution: Callable[[random.Random, int], list[float]], q: float
) -> None:
    samples = [abs(x) for x in distribution(random.Random(7), 20_000)]
    histogram = LogHistogram()
    for sample in samples:
        histogram.add(sample)
    (estimate,) = histogram.quantiles((q,))
    truth = exact(samples, q)
    assert abs(estimate - truth) <= 0.02 * truth, (estimate, truth)


def test_histogram_edges() -> None:
    histogram = LogHistogram()
    assert histogram.quantiles((0.5, 0.99)) == [0.0, 0.0]
    for value in (0.0, 0.0, 1e-12, 3.0):
        histogram.add(value)
    assert histogram.quantiles((0.25, 0.75, 1.0)) == [0.0, 0.0, 3.0]
    huge = LogHistogram()
    huge.add(1e12)
    assert huge.quantiles((0.5,)) == [1e12]


@pytest.mark.parametrize("distribution", [uniform, bimodal, heavy_tailed])
def test_adding_a_batch_counts_as_adding_each(distribution: Callable[[random.Random, int], list[float]]) -> None:
    rng = random.Random(3)
    samples = [*distribution(rng, 5_000), 0.0, -1.0, 1e-12, 1e-9, 1e12, 2.5e-9]
    rng.shuffle(samples)
    one_by_one = LogHistogram()
    for sample in samples:
        one_by_one.add(sample)
    batched = LogHistogram()
    for start in range(0, len(samples), 512):
        batched.add_many(samples[start : start + 512])
    assert batched._counts == one_by_one._counts
    assert (batched.count, batched.min, batched.max) == (one_by_one.count, one_by_one.min, one_by_one.max)
    assert batched.total == pytest.approx(one_by_one.total)


def stamps(queued: float, wait: float, run: float) -> TaskLifecycleTimestamps:
    return TaskLifecycleTimestamps(queued, queued + wait, queued + wait + run)


def test_collector_memory_does_not_grow_with_tasks() -> None:
    collector = DefaultCollector()
    rng = random.Random(1)

    def feed(n: int) -> None:
        for i in range(n):
            collector.record_arrival()
            collector.record_completion(stamps(i * 0.001, rng.random() * 0.1, rng.random()))
            if i % 10 == 0:
                collector.record_failure(stamps(i * 0.001, 0.01, rng.random()))

    feed(1_000)  # warm up: every lazily built structure exists now
    collector.metrics()
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        feed(100_000)
        collector.metrics()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 16_384, f"collector grew by {after - before} bytes over 100k tasks"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rates_cover_the_recent_window_not_the_lifetime() -> None:
    clock = FakeClock()
    collector = DefaultCollector(window=10.0, clock=clock)
    # 100 tasks per second for 20 s.
    for _ in range(2000):
        clock.now += 0.01
        collector.record_arrival()
        collector.record_completion(stamps(clock.now - 0.002, 0.001, 0.001))
    metrics = collector.metrics()
    assert metrics.task_arrival_rate == pytest.approx(100, rel=0.06)
    assert metrics.task_completion_rate == pytest.approx(100, rel=0.06)
    # Then 10 per second for 10 s: the window forgets the busy spell.
    for _ in range(100):
        clock.now += 0.1
        collector.record_arrival()
    assert collector.metrics().task_arrival_rate == pytest.approx(10, rel=0.11)
    # Then nothing for a whole window.
    clock.now += 10.5
    quiet = collector.metrics()
    assert quiet.task_arrival_rate == 0.0
    assert quiet.task_completion_rate == 0.0
    assert quiet.total_tasks_arrived == 2100


def test_rate_early_on_uses_the_time_elapsed() -> None:
    rate = WindowRate(10.0, now=0.0)
    for i in range(1, 21):
        rate.add(i * 0.1)
    assert rate.rate(2.0) == pytest.approx(10, rel=0.01)
    assert WindowRate(10.0, now=5.0).rate(5.0) == 0.0


def test_collector_totals_and_times() -> None:
    clock = FakeClock()
    collector = DefaultCollector(clock=clock)
    for _ in range(4):
        collector.record_arrival()
    collector.record_completion(stamps(0.0, 0.5, 1.0))
    collector.record_completion(stamps(0.0, 0.5, 3.0))
    collector.record_completion(stamps(0.0, 0.5, 2.0))
    collector.record_failure(stamps(0.0, 1.5, 4.0))
    collector.record_retry()
    metrics = collector.metrics()
    assert (metrics.total_tasks_arrived, metrics.total_tasks_completed, metrics.total_tasks_failed) == (4, 3, 1)
    assert metrics.total_tasks_retried == 1
    assert metrics.success_rate == 0.75
    assert metrics.failure_rate == 0.25
    assert metrics.average_execution_time == 2.5
    assert (metrics.min_execution_time, metrics.max_execution_time) == (1.0, 4.0)
    assert metrics.p50_execution_time == pytest.approx(2.0, rel=0.01)
    assert metrics.p99_execution_time == pytest.approx(4.0, rel=0.01)
    assert metrics.average_wait_time == 0.75
    assert metrics.p95_wait_time == pytest.approx(1.5, rel=0.01)


def test_empty_collector_reads_zero() -> None:
    assert DefaultCollector().metrics() == TaskMetrics()


def test_collector_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        DefaultCollector(window=0)


async def test_manager_metrics_come_from_the_configured_collector(make_manager: Factory) -> None:
    async def ok(resource: Resource) -> int:
        return 1

    async def fail(resource: Resource) -> None:
        raise ValueError

    collector = DefaultCollector(window=5.0)
    async with make_manager(collector=collector) as manager:
        for _ in range(9):
            await manager.queue_task(ok)
        with pytest.raises(ValueError):  # noqa: PT011
            await manager.queue_task(fail)
        metrics = manager.metrics()
    assert collector.metrics().total_tasks_arrived == 10  # the manager reported to this collector
    assert (metrics.total_tasks_arrived, metrics.total_tasks_completed, metrics.total_tasks_failed) == (10, 9, 1)
    assert metrics.success_rate == 0.9
    assert metrics.task_arrival_rate > 0
    assert 0 <= metrics.min_execution_time <= metrics.p50_execution_time <= metrics.max_execution_time


async def test_a_retry_waits_from_its_requeue_not_from_its_first_submission(make_manager: Factory) -> None:
    class Lost(Exception):
        pass

    runs = 0

    async def lose_first(resource: Resource) -> str:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.2)  # allow-sleep: a run of known length, not a wait for a state
        if runs == 1:
            raise Lost
        return "ok"

    async with make_manager(worker_count=2, check_health=lambda e: not isinstance(e, Lost)) as manager:
        assert await manager.queue_task(lose_first) == "ok"
        metrics = manager.metrics()
    # The first run waited ~0 and a free worker took the retry at once: nowhere near the 200 ms run.
    assert metrics.average_wait_time < 0.1


def test_reading_a_rate_changes_nothing() -> None:
    rate = WindowRate(10.0, now=0.0)
    for i in range(50):
        rate.add(i * 0.1)
    before = list(rate._counts)
    assert rate.rate(100.0) == 0.0  # long after: nothing in the window...
    assert rate._counts == before  # ...yet nothing was zeroed by reading
    assert rate.rate(5.0) == pytest.approx(10, rel=0.05)


def test_a_read_from_another_thread_never_folds_the_feeders_buffer() -> None:
    import threading

    clock = FakeClock()
    collector = DefaultCollector(clock=clock)
    for _ in range(600):  # past FOLD_AT: this thread becomes the feeder
        collector.record_completion(stamps(clock.now, 0.001, 0.001))
    collector.record_completion(stamps(clock.now, 0.001, 0.001))  # left in the buffer
    seen: list[int] = []
    reader = threading.Thread(target=lambda: seen.append(collector.metrics().total_tasks_completed))
    reader.start()
    reader.join()
    assert seen == [512]  # the other thread read the folded state only
    assert collector.metrics().total_tasks_completed == 601  # the feeder folds everything


def test_flush_folds_a_worthwhile_buffer_and_reads_see_everything() -> None:
    from tasker_async._observe.collector import FLUSH_AT

    clock = FakeClock()
    collector = DefaultCollector(clock=clock)
    for _ in range(FLUSH_AT - 1):
        collector.record_completion(stamps(clock.now, 0.001, 0.002))
    collector.flush()
    assert len(collector.pending) == 2 * (FLUSH_AT - 1)  # (a wait and a run a task) too little to fold when idle
    collector.record_completion(stamps(clock.now, 0.001, 0.002))
    collector.flush()
    assert collector.pending == []
    collector.record_completion(stamps(clock.now, 0.001, 0.002))
    assert collector.metrics().total_tasks_completed == FLUSH_AT + 1  # a read folds the rest
