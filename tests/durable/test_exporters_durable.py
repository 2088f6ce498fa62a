"""The exporters with a durable consumer (§11.4): queue depth per lane, running, dead, and the job events counted.

Read through prometheus_client's registry and the OpenTelemetry SDK's in-memory reader. The
queue gauges show what ``consumer.queue_stats()`` last read from the store, so each test waits
for that to reflect the state it set up (by condition), then scrapes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal, cast

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from tasker_async import AsyncManager, Config, TaskEvent, WorkerEvent, otel, prometheus
from tasker_async.durable import (
    Client,
    Consumer,
    DeadLetterError,
    JobEvent,
    MemoryStore,
    QueueStats,
    Registry,
    Store,
)

from ._doubles import Lab, OutageStore, eventually, serving

Kind = Literal["delivered", "redelivered", "acked", "dead", "released"]
KINDS: tuple[Kind, ...] = ("delivered", "redelivered", "acked", "dead", "released")
Depths = tuple[float | None, ...]  # ready priority, ready main, delayed, running, dead


class PrometheusView:
    def __init__(self, manager: AsyncManager[Any], consumer: Consumer | None) -> None:
        self.registry = CollectorRegistry()
        self.exporter = prometheus.instrument(manager, registry=self.registry, consumer=consumer)

    def _value(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(f"tasker_{name}", labels)

    def depths(self, queue: str) -> Depths:
        return (
            self._value("durable_ready_jobs", queue=queue, lane="priority"),
            self._value("durable_ready_jobs", queue=queue, lane="main"),
            *(self._value(f"durable_{what}_jobs", queue=queue) for what in ("delayed", "running", "dead")),
        )

    def events(self) -> dict[str, float]:
        return {kind: self._value("durable_jobs_total", event=kind) or 0.0 for kind in KINDS}

    def close(self) -> None:
        self.exporter.close()


class OtelView:
    def __init__(self, manager: AsyncManager[Any], consumer: Consumer | None) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.exporter = otel.instrument(manager, meter_provider=self.provider, consumer=consumer)

    def _points(self, name: str) -> dict[frozenset[tuple[str, Any]], float]:
        data = self.reader.get_metrics_data()
        found: dict[frozenset[tuple[str, Any]], float] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == f"tasker.{name}":
                        for point in metric.data.data_points:
                            found[frozenset((point.attributes or {}).items())] = float(cast(Any, point).value)
        return found

    def depths(self, queue: str) -> Depths:
        ready = self._points("durable.jobs.ready")
        lanes = [ready.get(frozenset({("queue", queue), ("lane", lane)})) for lane in ("priority", "main")]
        others = [
            self._points(f"durable.jobs.{what}").get(frozenset({("queue", queue)}))
            for what in ("delayed", "running", "dead")
        ]
        return (*lanes, *others)

    def events(self) -> dict[str, float]:
        points = self._points("durable.job.events")
        # A counter's series shows once it was added to: a kind never seen is 0.
        return {kind: points.get(frozenset({("event", kind)}), 0.0) for kind in KINDS}

    def close(self) -> None:
        self.exporter.close()
        self.provider.shutdown()


# One exporter attached to a manager (and its consumer), read the way its backend reads it.
View = PrometheusView | OtelView
Attach = Callable[[AsyncManager[Any], Consumer | None], View]
VIEWS = pytest.mark.parametrize("attach", [PrometheusView, OtelView], ids=["prometheus", "otel"])


def depths_of(stats: QueueStats | None) -> Depths | None:
    return None if stats is None else (stats.ready_priority, stats.ready_main, stats.delayed, stats.running, stats.dead)


def read_depths(consumer: Consumer, queue: str = "default") -> Depths | None:
    """What the consumer last read of ``queue``, in the order of ``View.depths``."""
    return depths_of(consumer.queue_stats().get(queue))


def events(**counts: int) -> dict[str, float]:
    return {kind: float(counts.get(kind, 0)) for kind in KINDS}


@asynccontextmanager
async def exported(
    store: Store, lab: Lab, attach: Attach, *, name: str, workers: int
) -> AsyncIterator[tuple[Consumer, View]]:
    """A manager and its consumer of ``lab``'s registry, exported from before the consumer takes its first job."""
    ids = itertools.count()
    config = Config(
        on_create=lambda: f"{name}{next(ids)}", worker_count=workers, max_worker_count=workers, resource_pool_size=0
    )
    async with AsyncManager(config) as manager:
        consumer = Consumer(store, lab.registry, manager)
        view = attach(manager, consumer)
        try:
            async with consumer:
                try:
                    yield consumer, view
                finally:
                    lab.open_all()
        finally:
            view.close()
            lab.close_new_gates()


async def depths_and_redeliveries(store: Store, attach: Attach) -> None:
    """Jobs running, ready in both lanes and delayed; a kill leaves one dead and one to redeliver elsewhere."""
    lab = Lab()

    @lab.registry.task("exporters.fragile", max_deliveries=1)  # killed mid-run once: dead
    async def fragile(resource: str, label: str) -> str:
        return await lab.hold(resource, label)

    async with Client(store) as client:
        async with exported(store, lab, attach, name="A", workers=2) as (a, view):
            x = await client.submit(lab.hold, "x")
            f = await client.submit(fragile, "f")
            await eventually(lambda: lab.starts("x") == lab.starts("f") == 1, "both workers busy")
            main = [await client.submit(lab.hold, label) for label in ("m1", "m2")]
            urgent = await client.submit(lab.hold, "p1", priority=True)
            await client.submit(lab.echo, "later", delay=3600.0)
            await eventually(lambda: read_depths(a) == (1, 2, 1, 2, 0), "the counts read after the submissions")
            assert view.depths("default") == (1, 2, 1, 2, 0)
            assert view.events() == events(delivered=2)
            await a.kill()
            assert view.events() == events(delivered=2, released=2)

        async with exported(store, lab, attach, name="B", workers=1) as (b, view):
            lab.open_all()
            for job in (x, urgent, *main):
                await job.result(timeout=10)
            with pytest.raises(DeadLetterError):
                await f.result(timeout=10)
            # x ran again: the one redelivery; the jobs that waited are first deliveries.
            expected = events(delivered=3, redelivered=1, acked=4)
            await eventually(lambda: view.events() == expected, "every outcome counted")
            # Delayed and dead (every other count from the third): as in every read from entering on.
            read = read_depths(b)
            assert read is not None
            assert read[2::2] == view.depths("default")[2::2] == (1, 1)


async def test_prometheus_shows_depths_per_lane_running_dead_and_redeliveries(store: Store) -> None:
    await depths_and_redeliveries(store, PrometheusView)


async def test_otel_shows_depths_per_lane_running_dead_and_redeliveries() -> None:
    async with MemoryStore() as store:
        await depths_and_redeliveries(store, OtelView)


async def test_queue_stats_is_empty_until_the_first_read_then_has_every_queue_served(store: Store) -> None:
    lab = Lab()
    async with AsyncManager(Config(on_create=lambda: "r", worker_count=1)) as manager:
        consumer = Consumer(store, lab.registry, manager, queues=["default", "other"])
        assert consumer.queue_stats() == {}
        async with consumer:
            # The first lease tick, on entering, reads them.
            assert set(consumer.queue_stats()) == {"default", "other"}
            assert read_depths(consumer, "other") == (0, 0, 0, 0, 0)


class TimedStore(OutageStore):
    """An outage store that notes when each ``stats`` call came, served or failed."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.stats_at: list[float] = []

    async def stats(self, queue: str) -> QueueStats:
        self.stats_at.append(time.monotonic())
        return await super().stats(queue)


async def test_the_counts_are_read_once_a_second_at_most_and_a_failed_read_keeps_the_last() -> None:
    lab = Lab(lease=0.3)  # a lease tick every 0.1 s
    async with MemoryStore() as inner, Client(inner) as client:
        store = TimedStore(inner)
        async with serving(store, lab) as node:
            assert read_depths(node.consumer) == (0, 0, 0, 0, 0)  # read on entering
            # Only the counts fail: the consumer carries on with everything else.
            store.spared = frozenset(name for name in vars(OutageStore) if not name.startswith("_")) - {"stats"}
            store.down = True
            job = await client.submit(lab.hold, "h")
            await eventually(lambda: lab.starts("h") == 1, "the job running")
            await eventually(lambda: store.failed["stats"] >= 1, "a read of the counts failed")
            assert (await inner.stats("default")).running == 1
            assert read_depths(node.consumer) == (0, 0, 0, 0, 0)
            store.down = False
            await eventually(lambda: read_depths(node.consumer) == (0, 0, 0, 1, 0), "the counts read again")
            lab.open("h")
            assert await job.result(timeout=10) == "h"
    gaps = [later - earlier for earlier, later in itertools.pairwise(store.stats_at)]
    assert len(gaps) >= 2
    assert min(gaps) >= 0.9, gaps
    # The ticks came far more often than the reads of the counts.
    assert store.served["renew"] > 2 * len(store.stats_at)


@contextmanager
def attached(attach: Attach, *, consumer: bool) -> Iterator[View]:
    manager: AsyncManager[Any] = AsyncManager(Config(on_create=lambda: "r", worker_count=1))
    durable = Consumer(MemoryStore(), Registry(), manager) if consumer else None
    view = attach(manager, durable)
    try:
        yield view
    finally:
        view.close()


@VIEWS
def test_every_job_event_kind_is_counted_and_the_managers_events_are_not(attach: Attach) -> None:
    with attached(attach, consumer=True) as view:
        hook = view.exporter
        for count, kind in enumerate(KINDS, start=1):
            for _ in range(count):
                hook(cast(Any, JobEvent(kind=kind, job_id="j", name="t", queue="default", deliveries=1)))
        hook(TaskEvent(kind="started", name="t", task_id=1, priority=False, attempt=1, queued_at=0.0))
        hook(WorkerEvent(kind="created", worker_id=0, burst=False, reason="start"))
        assert view.events() == events(delivered=1, redelivered=2, acked=3, dead=4, released=5)
        # Not entered: nothing read yet, so no queue series.
        assert view.depths("default") == (None,) * 5


@VIEWS
def test_without_a_consumer_there_is_nothing_durable(attach: Attach) -> None:
    with attached(attach, consumer=False) as view:
        view.exporter(cast(Any, JobEvent(kind="acked", job_id="j", name="t", queue="default", deliveries=1)))
        assert view.events() == events()
        if isinstance(view, PrometheusView):
            names = {metric.name for metric in view.registry.collect()}
            assert not any("durable" in name for name in names), names


@VIEWS
def test_a_consumer_that_is_not_one_is_refused(attach: Attach) -> None:
    manager: AsyncManager[Any] = AsyncManager(Config(on_create=lambda: "r", worker_count=1))
    with pytest.raises(TypeError, match=r"tasker_async\.durable\.Consumer"):
        attach(manager, object())  # type: ignore[arg-type]
