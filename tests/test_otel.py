"""The OpenTelemetry integration, read through the SDK's in-memory reader and exporter."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import metrics as otel_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, Tracer

from tasker_async import AsyncManager, TaskAbortedError, TaskEvent, TaskTimeoutError
from tasker_async.otel import OtelMetrics, instrument

from ._bodies import Broken, broken_first, fail, ok, slow
from .conftest import EventLog, Resource, Tracker, wait_for

Factory = Callable[..., AsyncManager[Resource]]
Attrs = frozenset[tuple[str, Any]]


@dataclass
class Telemetry:
    provider: MeterProvider
    reader: InMemoryMetricReader
    spans: InMemorySpanExporter
    tracer: Tracer

    def read(self) -> dict[str, dict[Attrs, Any]]:
        """Every metric with data points, by attributes: the value of a number, the point itself for a histogram."""
        data = self.reader.get_metrics_data()
        found: dict[str, dict[Attrs, Any]] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        key = frozenset((point.attributes or {}).items())
                        found.setdefault(metric.name, {})[key] = getattr(point, "value", point)
        return found

    def finished(self) -> dict[str, ReadableSpan]:
        spans = self.spans.get_finished_spans()
        by_name = {span.name.rsplit(".", 1)[-1]: span for span in spans}
        assert len(by_name) == len(spans), [span.name for span in spans]
        return by_name


@pytest.fixture
async def telemetry() -> AsyncIterator[Telemetry]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    yield Telemetry(provider, reader, spans, tracer_provider.get_tracer("tests"))
    provider.shutdown()
    tracer_provider.shutdown()


class Recorder(EventLog):
    def last(self, name: str) -> TaskEvent:
        return [e for e in self.events if isinstance(e, TaskEvent) and e.name.endswith(name)][-1]


def one(attributes: dict[str, Any] | None = None) -> Attrs:
    return frozenset((attributes or {}).items())


async def test_events_stats_and_metrics_are_recorded(
    make_manager: Factory, tracker: Tracker, telemetry: Telemetry
) -> None:
    release = asyncio.Event()

    async def hold(resource: Resource) -> None:
        await release.wait()

    recorder = Recorder()
    manager = make_manager(
        worker_count=1,
        max_worker_count=1,  # no bursting: the gauges below must not move on their own
        max_retries=1,
        check_health=lambda e: not isinstance(e, Broken),
        hooks=[recorder],
    )
    instrument(manager, meter_provider=telemetry.provider)
    async with manager:
        assert await manager.queue_task(ok) == 0
        with pytest.raises(ValueError, match="bad input"):
            await manager.queue_task(fail)
        with pytest.raises(TaskTimeoutError):
            await manager.queue_task(slow, timeout=0.02)
        tracker.fail_next = 1  # the replacement's first on_create fails, then succeeds after a backoff
        assert await manager.queue_task(broken_first) == 1
        held = await manager.submit(hold)
        await wait_for(lambda: manager.stats().running_tasks == 1)
        queued = [await manager.submit(ok), await manager.submit(ok, priority=True), await manager.submit(ok)]
        during = telemetry.read()
        metrics = manager.metrics()
        release.set()
        await held
        assert await asyncio.gather(*queued) == [1, 1, 1]

    assert during.keys() >= {
        "tasker.workers.base",
        "tasker.workers.active",
        "tasker.workers.burst",
        "tasker.resources.available",
        "tasker.task.arrival_rate",
        "tasker.task.completion_rate",
        "tasker.task.success_ratio",
        "tasker.task.execution_time",
        "tasker.task.execution_time.average",
        "tasker.task.wait_time",
        "tasker.task.wait_time.average",
    }
    assert during["tasker.task.execution_time.average"] == {one(): metrics.average_execution_time}
    assert during["tasker.task.wait_time.average"] == {one(): metrics.average_wait_time}
    assert during["tasker.workers.base"] == {one(): 1}
    assert during["tasker.workers.active"] == {one(): 1}
    assert during["tasker.workers.burst"] == {one(): 0}
    assert during["tasker.tasks.running"] == {one(): 1}
    assert during["tasker.tasks.queued"] == {one({"queue": "main"}): 2, one({"queue": "priority"}): 1}
    assert during["tasker.resources.available"] == {one(): 0}
    assert during["tasker.task.success_ratio"] == {one(): 0.5}  # 2 / (2 + a failure and a timeout)
    assert during["tasker.task.execution_time"] == {
        one({"quantile": "0.5"}): metrics.p50_execution_time,
        one({"quantile": "0.95"}): metrics.p95_execution_time,
        one({"quantile": "0.99"}): metrics.p99_execution_time,
    }
    assert metrics.p99_execution_time >= 0.019  # the timed-out run is the longest
    assert during["tasker.task.wait_time"] == {one({"quantile": "0.95"}): metrics.p95_wait_time}
    assert during["tasker.task.arrival_rate"][one()] > 0
    assert during["tasker.tasks.finished"] == {
        one({"outcome": "succeeded"}): 2,
        one({"outcome": "failed"}): 1,
        one({"outcome": "timed_out"}): 1,
    }
    assert during["tasker.tasks.submitted"] == {one(): 8}
    assert during["tasker.task.retries"] == {one(): 1}
    assert during["tasker.resource.creation_failures"] == {one(): 1}
    assert during["tasker.worker.events"] == {
        one({"kind": "created"}): 2,
        one({"kind": "destroyed"}): 1,
        one({"kind": "replaced"}): 1,
    }
    assert "tasker.scaling.events" not in during  # nothing scaled

    after = telemetry.read()
    assert after["tasker.tasks.finished"][one({"outcome": "succeeded"})] == 6
    assert after["tasker.worker.events"][one({"kind": "destroyed"})] == 2
    run = after["tasker.task.run.duration"][one()]
    wait = after["tasker.task.wait.duration"][one()]
    ended = [e for e in recorder.events if isinstance(e, TaskEvent) and e.kind in ("succeeded", "failed", "timed_out")]
    assert run.count == wait.count == len(ended) == 8
    assert run.sum == pytest.approx(sum(e.run_time or 0.0 for e in ended))
    assert wait.sum == pytest.approx(sum(e.wait_time or 0.0 for e in ended))
    # Seconds, in the advised buckets: the 20 ms timeout is above 10 ms.
    assert run.explicit_bounds[:3] == (0.005, 0.01, 0.025)
    assert sum(run.bucket_counts[:2]) <= 7
    assert after["tasker.tasks.running"] == {one(): 0}
    assert telemetry.spans.get_finished_spans() == ()  # no tracer, no spans


async def test_one_span_per_task_from_submission_to_end(
    make_manager: Factory, tracker: Tracker, telemetry: Telemetry
) -> None:
    recorder = Recorder()
    manager = make_manager(worker_count=1, max_retries=1, check_health=lambda e: not isinstance(e, Broken))
    instrument(manager, meter_provider=telemetry.provider, tracer=telemetry.tracer)
    manager.add_hook(recorder)
    async with manager:
        assert await manager.queue_task(ok, priority=True) == 0
        with pytest.raises(ValueError, match="bad input"):
            await manager.queue_task(fail)
        with pytest.raises(TaskTimeoutError):
            await manager.queue_task(slow, timeout=0.02)
        assert await manager.queue_task(broken_first) == 1
    spans = telemetry.finished()
    assert sorted(spans) == ["broken_first", "fail", "ok", "slow"]

    for name, span in spans.items():
        event = recorder.last(name)
        assert span.name == event.name
        assert span.start_time is not None
        assert span.end_time is not None
        started = [e for e in span.events if e.name == "started"][-1]
        assert span.start_time <= started.timestamp <= span.end_time
        # The span's times are the event's monotonic stamps moved to the epoch: the gaps are kept to the ns.
        assert event.finished_at is not None
        assert span.end_time - span.start_time == pytest.approx((event.finished_at - event.queued_at) * 1e9, abs=2)
        assert span.end_time - started.timestamp == pytest.approx((event.run_time or 0.0) * 1e9, abs=2)
        assert span.attributes is not None
        assert span.attributes["tasker.task.name"] == event.name
        assert span.attributes["tasker.task.attempt"] == event.attempt
        assert span.attributes["tasker.task.priority"] == event.priority
        assert span.attributes["tasker.task.outcome"] == event.kind
        assert span.attributes["tasker.task.wait_seconds"] == event.wait_time

    ok_span = spans["ok"]
    assert ok_span.status.status_code is StatusCode.UNSET
    assert ok_span.attributes is not None
    assert ok_span.attributes["tasker.task.priority"] is True
    assert [e.name for e in ok_span.events] == ["started"]

    assert spans["fail"].status.status_code is StatusCode.ERROR
    assert "bad input" in (spans["fail"].status.description or "")
    (exception,) = [e for e in spans["fail"].events if e.name == "exception"]
    assert exception.attributes is not None
    assert exception.attributes["exception.type"] == "ValueError"
    assert exception.timestamp == spans["fail"].end_time

    slow_span = spans["slow"]
    assert slow_span.status.status_code is StatusCode.ERROR
    assert slow_span.attributes is not None
    assert slow_span.attributes["tasker.task.outcome"] == "timed_out"
    assert slow_span.end_time is not None
    assert slow_span.end_time - slow_span.events[0].timestamp >= 19_000_000  # ran into its 20 ms timeout
    assert [e.attributes["exception.type"] for e in slow_span.events if e.name == "exception" and e.attributes] == [
        "tasker_async.errors.TaskTimeoutError"
    ]

    retried = spans["broken_first"]
    assert retried.status.status_code is StatusCode.UNSET
    assert [(e.name, (e.attributes or {}).get("tasker.task.attempt")) for e in retried.events] == [
        ("started", 1),
        ("retried", 1),
        ("started", 2),
    ]
    stamps = [e.timestamp for e in retried.events]
    assert stamps == sorted(stamps)
    assert retried.attributes is not None
    assert retried.attributes["tasker.task.attempt"] == 2


async def test_a_span_is_a_child_of_the_span_current_where_it_was_submitted(
    make_manager: Factory, telemetry: Telemetry
) -> None:
    manager = make_manager(worker_count=1, resource_pool_size=1)
    instrument(manager, meter_provider=telemetry.provider, tracer=telemetry.tracer)
    with telemetry.tracer.start_as_current_span("starting"):
        await manager.start()  # the workers inherit this context; the task spans must not
    with telemetry.tracer.start_as_current_span("request") as request:
        assert await manager.queue_task(ok) == 0
    with telemetry.tracer.start_as_current_span("direct") as direct:
        assert await manager.run_task(ok) == 1
    await manager.stop()
    spans = telemetry.spans.get_finished_spans()
    queued, ran = (span for span in spans if span.name.endswith("ok"))
    assert queued.parent is not None
    assert queued.parent.span_id == request.get_span_context().span_id
    assert queued.context is not None
    assert queued.context.trace_id == request.get_span_context().trace_id
    assert ran.parent is not None
    assert ran.parent.span_id == direct.get_span_context().span_id


async def test_cancelled_and_aborted_tasks_get_their_spans(make_manager: Factory, telemetry: Telemetry) -> None:
    release = asyncio.Event()

    async def hold(resource: Resource) -> None:
        await release.wait()

    async def cancelled(resource: Resource) -> None:
        raise AssertionError("a cancelled task never runs")

    async def aborted(resource: Resource) -> None:
        raise AssertionError("an aborted task never runs")

    manager = make_manager(worker_count=1, max_worker_count=1)
    instrument(manager, meter_provider=telemetry.provider, tracer=telemetry.tracer)
    await manager.start()
    running = await manager.submit(hold)
    await wait_for(lambda: manager.stats().running_tasks == 1)
    (await manager.submit(cancelled)).cancel()
    waiting = await manager.submit(aborted)
    await manager.kill()
    for handle in (running, waiting):
        with pytest.raises(TaskAbortedError):
            await handle
    spans = telemetry.finished()
    assert spans["cancelled"].status.status_code is StatusCode.UNSET
    assert spans["cancelled"].events == ()
    assert spans["aborted"].status.status_code is StatusCode.ERROR
    assert [e.name for e in spans["hold"].events] == ["started", "exception"]
    assert spans["hold"].status.status_code is StatusCode.ERROR
    outcomes = {name: (span.attributes or {}).get("tasker.task.outcome") for name, span in spans.items()}
    assert outcomes == {"hold": "aborted", "cancelled": "cancelled", "aborted": "aborted"}
    finished = telemetry.read()["tasker.tasks.finished"]
    assert finished == {one({"outcome": "aborted"}): 2, one({"outcome": "cancelled"}): 1}
    # Neither kind is timed: the run and wait histograms stay empty.
    assert "tasker.task.run.duration" not in telemetry.read()


async def test_close_detaches(make_manager: Factory, telemetry: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    manager = make_manager(worker_count=1)
    async with manager:
        with instrument(
            manager, meter_provider=telemetry.provider, tracer=telemetry.tracer, prefix="jobs"
        ) as instruments:
            assert isinstance(instruments, OtelMetrics)
            assert repr(instruments) == "<OtelMetrics prefix='jobs' attached>"
            assert await manager.queue_task(ok) == 0
            before = telemetry.read()
            assert before["jobs.tasks.finished"] == {one({"outcome": "succeeded"}): 1}
            assert before["jobs.workers.base"] == {one(): 1}
        assert instruments.closed
        assert repr(instruments) == "<OtelMetrics prefix='jobs' closed>"
        with pytest.raises(ValueError):  # noqa: PT011 - the manager no longer holds the hook
            manager.remove_hook(instruments)
        instruments.close()  # a second close does nothing
        assert await manager.queue_task(ok) == 0
    after = telemetry.read()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no callback failed
    assert after["jobs.tasks.finished"] == {one({"outcome": "succeeded"}): 1}
    assert "jobs.workers.base" not in after  # the gauges report nothing once closed
    spans = telemetry.spans.get_finished_spans()
    assert len(spans) == 1
    assert spans[0].attributes is not None
    assert spans[0].attributes["jobs.task.outcome"] == "succeeded"


async def test_the_global_meter_provider_is_the_default(
    make_manager: Factory, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(otel_metrics, "get_meter_provider", lambda: telemetry.provider)
    manager = make_manager(worker_count=3)
    instrument(manager)
    assert telemetry.read()["tasker.workers.base"] == {one(): 3}


def test_a_missing_opentelemetry_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "tasker_async.otel")
    with pytest.raises(ImportError, match=r"pip install 'tasker-async\[otel\]'"):
        importlib.import_module("tasker_async.otel")
