"""The Prometheus integration, scraped from a real registry."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest
from prometheus_client.utils import floatToGoString

from tasker_async import (
    AsyncManager,
    BacklogPolicy,
    LifecycleEvent,
    MaxRetriesExceededError,
    ScalingEvent,
    TaskAbortedError,
    TaskEvent,
    TaskTimeoutError,
    WorkerEvent,
)
from tasker_async.prometheus import PrometheusMetrics, instrument

from ._bodies import Broken, broken_first, fail, ok, slow
from .conftest import EventLog, Resource, Tracker, wait_for

Factory = Callable[..., AsyncManager[Resource]]


class Recorder(EventLog):
    async def wait_until(self, predicate: Callable[[LifecycleEvent], bool]) -> None:
        while not any(predicate(e) for e in self.events):
            self.changed.clear()
            await self.changed.wait()

    def ended(self, name: str) -> list[TaskEvent]:
        kinds = ("succeeded", "failed", "timed_out")
        return [e for e in self.events if isinstance(e, TaskEvent) and e.kind in kinds and e.name.endswith(name)]


def scrape(registry: CollectorRegistry) -> set[str]:
    return {line for line in generate_latest(registry).decode().splitlines() if not line.startswith("#")}


def line(name: str, value: float, **labels: str) -> str:
    inner = ",".join(f'{key}="{val}"' for key, val in labels.items())
    value_text = floatToGoString(value)  # type: ignore[no-untyped-call]
    return f"{name}{{{inner}}} {value_text}" if labels else f"{name} {value_text}"


async def test_events_stats_and_metrics_are_exported(make_manager: Factory, tracker: Tracker) -> None:
    registry = CollectorRegistry()
    recorder = Recorder()
    release = asyncio.Event()

    async def hold(resource: Resource) -> None:
        await release.wait()

    manager = make_manager(
        worker_count=1,
        max_worker_count=1,  # no bursting: the gauges below must not move on their own
        max_retries=1,
        check_health=lambda e: not isinstance(e, Broken),
        hooks=[recorder],
    )
    exporter = instrument(manager, registry=registry)
    assert isinstance(exporter, PrometheusMetrics)
    assert line("tasker_state", 1.0, state="created") in scrape(registry)
    async with manager:
        assert await manager.queue_task(ok) == 0
        assert await manager.queue_task(ok, priority=True) == 0
        with pytest.raises(ValueError, match="bad input"):
            await manager.queue_task(fail)
        with pytest.raises(TaskTimeoutError):
            await manager.queue_task(slow, timeout=0.02)
        tracker.fail_next = 1  # the replacement's first on_create fails, then succeeds after a backoff
        assert await manager.queue_task(broken_first) == 1

        held = await manager.submit(hold)
        await wait_for(lambda: manager.stats().running_tasks == 1)
        queued = [await manager.submit(ok), await manager.submit(ok, priority=True), await manager.submit(ok)]
        during = scrape(registry)
        metrics = manager.metrics()
        arrivals = registry.get_sample_value("tasker_task_arrivals_per_second")
        release.set()
        await held
        assert await asyncio.gather(*queued) == [1, 1, 1]

    assert {
        line("tasker_base_workers", 1.0),
        line("tasker_active_workers", 1.0),
        line("tasker_burst_workers", 0.0),
        line("tasker_running_tasks", 1.0),
        line("tasker_queued_tasks", 2.0, queue="main"),
        line("tasker_queued_tasks", 1.0, queue="priority"),
        line("tasker_available_resources", 0.0),
        line("tasker_state", 1.0, state="running"),
        line("tasker_state", 0.0, state="stopped"),
        # Succeeded / (succeeded + failed): 3 / (3 + a failure and a timeout); the retried run counts as neither.
        line("tasker_task_success_ratio", 0.6),
        line("tasker_task_execution_time_seconds", metrics.p50_execution_time, quantile="0.5"),
        line("tasker_task_execution_time_seconds", metrics.p99_execution_time, quantile="0.99"),
        line("tasker_task_average_execution_time_seconds", metrics.average_execution_time),
        line("tasker_task_wait_time_seconds", metrics.p95_wait_time, quantile="0.95"),
        line("tasker_tasks_submitted_total", 9.0),
        line("tasker_tasks_finished_total", 3.0, outcome="succeeded"),
        line("tasker_tasks_finished_total", 1.0, outcome="failed"),
        line("tasker_tasks_finished_total", 1.0, outcome="timed_out"),
        line("tasker_tasks_finished_total", 0.0, outcome="aborted"),
        line("tasker_task_retries_total", 1.0),
        line("tasker_resource_creation_failures_total", 1.0),
        line("tasker_worker_events_total", 2.0, kind="created"),
        line("tasker_worker_events_total", 1.0, kind="destroyed"),
        line("tasker_worker_events_total", 1.0, kind="replaced"),
        line("tasker_scaling_events_total", 0.0, kind="scale_up"),
    } <= during
    assert metrics.p99_execution_time >= 0.019  # the timed-out run is the longest
    assert arrivals is not None
    assert arrivals > 0

    after = scrape(registry)
    assert {
        line("tasker_state", 1.0, state="stopped"),
        line("tasker_active_workers", 0.0),
        line("tasker_running_tasks", 0.0),
        line("tasker_tasks_finished_total", 7.0, outcome="succeeded"),
        line("tasker_worker_events_total", 2.0, kind="destroyed"),
        # One observation per task that succeeded, failed or timed out: 7 + 1 + 1.
        line("tasker_task_run_duration_seconds_count", 9.0),
        line("tasker_task_run_duration_seconds_bucket", 9.0, le="+Inf"),
        line("tasker_task_wait_duration_seconds_count", 9.0),
    } <= after
    runs = [e.run_time or 0.0 for e in recorder.ended("")]
    waits = [e.wait_time or 0.0 for e in recorder.ended("")]
    assert registry.get_sample_value("tasker_task_run_duration_seconds_sum") == pytest.approx(sum(runs))
    assert registry.get_sample_value("tasker_task_wait_duration_seconds_sum") == pytest.approx(sum(waits))
    # The timed-out run lasted its 20 ms timeout, so it is above the 10 ms bucket: observations are seconds.
    below = registry.get_sample_value("tasker_task_run_duration_seconds_bucket", {"le": "0.01"})
    assert below is not None
    assert below <= 8.0
    exporter.close()


async def test_scaling_decisions_are_counted(make_manager: Factory) -> None:
    registry = CollectorRegistry()
    recorder = Recorder()
    release = asyncio.Event()

    async def hold(resource: Resource) -> None:
        await release.wait()

    manager = make_manager(
        worker_count=1,
        max_worker_count=2,
        burst_interval=0.01,
        scaling_policy=BacklogPolicy(threshold=1, cooldown=3600.0),  # scale up, never down, in this test
        hooks=[recorder],
    )
    instrument(manager, registry=registry)
    async with manager:
        held = await manager.submit(hold)
        await wait_for(lambda: manager.stats().running_tasks == 1)
        rest = [await manager.submit(ok), await manager.submit(ok)]
        await recorder.wait_until(lambda e: isinstance(e, WorkerEvent) and e.burst and e.kind == "created")
        assert await asyncio.gather(*rest) == [1, 1]
        assert {
            line("tasker_scaling_events_total", 1.0, kind="scale_up"),
            line("tasker_scaling_events_total", 0.0, kind="scale_down"),
            line("tasker_burst_workers", 1.0),
            line("tasker_active_workers", 2.0),
            line("tasker_worker_events_total", 2.0, kind="created"),
        } <= scrape(registry)
        release.set()
        await held
    assert [e.kind for e in recorder.events if isinstance(e, ScalingEvent)] == ["scale_up"]


async def test_a_custom_prefix_names_every_metric(make_manager: Factory) -> None:
    registry = CollectorRegistry()
    manager = make_manager(worker_count=1)
    instrument(manager, registry=registry, prefix="jobs", buckets=(0.5, 1.0))
    async with manager:
        assert await manager.queue_task(ok) == 0
    samples = scrape(registry)
    assert line("jobs_tasks_finished_total", 1.0, outcome="succeeded") in samples
    assert line("jobs_task_run_duration_seconds_bucket", 1.0, le="1.0") in samples
    assert line("jobs_state", 1.0, state="stopped") in samples
    assert all(sample.startswith("jobs_") for sample in samples), samples


async def test_close_detaches_and_unregisters(make_manager: Factory) -> None:
    registry = CollectorRegistry()
    manager = make_manager(worker_count=1)
    async with manager:
        with instrument(manager, registry=registry) as exporter:
            assert await manager.queue_task(ok) == 0
            assert line("tasker_tasks_finished_total", 1.0, outcome="succeeded") in scrape(registry)
            assert repr(exporter) == "<PrometheusMetrics prefix='tasker' attached>"
        assert exporter.closed
        assert repr(exporter) == "<PrometheusMetrics prefix='tasker' closed>"
        assert generate_latest(registry) == b""
        with pytest.raises(ValueError):  # noqa: PT011 - the manager no longer holds the hook
            manager.remove_hook(exporter)
        exporter.close()  # a second close does nothing

        # The names are free again, and a fresh exporter counts from zero.
        fresh = instrument(manager, registry=registry)
        assert await manager.queue_task(ok) == 0
        assert line("tasker_tasks_finished_total", 1.0, outcome="succeeded") in scrape(registry)
        fresh.close()


async def test_a_name_clash_leaves_nothing_behind(make_manager: Factory) -> None:
    registry = CollectorRegistry()
    Counter("tasker_task_retries", "Someone else's.", registry=registry)
    manager = make_manager(worker_count=1)
    # The clash is on the third metric: the two made before it are unregistered again.
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        instrument(manager, registry=registry)
    assert {sample.split(" ")[0] for sample in scrape(registry)} == {
        "tasker_task_retries_total",
        "tasker_task_retries_created",
    }
    # A second manager on the same registry and prefix clashes with the first.
    other = CollectorRegistry()
    first = instrument(manager, registry=other)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        instrument(make_manager(worker_count=1), registry=other)
    async with manager:
        assert await manager.queue_task(ok) == 0
    assert line("tasker_tasks_finished_total", 1.0, outcome="succeeded") in scrape(other)
    first.close()
    assert generate_latest(other) == b""


async def test_the_global_registry_is_the_default(make_manager: Factory) -> None:
    manager = make_manager(worker_count=3)
    exporter = instrument(manager, prefix="tasker_default_registry_test")
    try:
        assert exporter.registry is REGISTRY
        assert REGISTRY.get_sample_value("tasker_default_registry_test_base_workers") == 3.0
    finally:
        exporter.close()
    assert REGISTRY.get_sample_value("tasker_default_registry_test_base_workers") is None


async def test_a_task_that_fails_for_good_after_retries_counts_once(make_manager: Factory) -> None:
    registry = CollectorRegistry()

    async def always_broken(resource: Resource) -> None:
        raise Broken

    manager = make_manager(worker_count=1, max_retries=2, check_health=lambda e: not isinstance(e, Broken))
    instrument(manager, registry=registry)
    async with manager:
        with pytest.raises(MaxRetriesExceededError):
            await manager.queue_task(always_broken)
    assert {
        line("tasker_tasks_finished_total", 1.0, outcome="failed"),
        line("tasker_task_retries_total", 2.0),
        line("tasker_worker_events_total", 3.0, kind="replaced"),
        line("tasker_task_run_duration_seconds_count", 1.0),
    } <= scrape(registry)


async def test_cancelled_and_aborted_tasks_are_counted_but_not_timed(make_manager: Factory) -> None:
    registry = CollectorRegistry()
    release = asyncio.Event()

    async def hold(resource: Resource) -> None:
        await release.wait()

    manager = make_manager(worker_count=1, max_worker_count=1)
    instrument(manager, registry=registry)
    await manager.start()
    running = await manager.submit(hold)
    await wait_for(lambda: manager.stats().running_tasks == 1)
    (await manager.submit(ok)).cancel()
    waiting = await manager.submit(ok)
    await manager.kill()
    for handle in (running, waiting):
        with pytest.raises(TaskAbortedError):
            await handle
    assert {
        line("tasker_tasks_finished_total", 2.0, outcome="aborted"),
        line("tasker_tasks_finished_total", 1.0, outcome="cancelled"),
        line("tasker_tasks_finished_total", 0.0, outcome="succeeded"),
        line("tasker_state", 1.0, state="killed"),
        # A run cut short is no run time: TaskMetrics does not count it either.
        line("tasker_task_run_duration_seconds_count", 0.0),
        line("tasker_task_wait_duration_seconds_count", 0.0),
    } <= scrape(registry)


def test_a_missing_prometheus_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "tasker_async.prometheus")
    with pytest.raises(ImportError, match=r"pip install 'tasker-async\[prometheus\]'"):
        importlib.import_module("tasker_async.prometheus")
