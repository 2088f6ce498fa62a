"""Workflow events: ``StepEvent``s and ``RunEvent``s reach the manager's hooks, and the exporters count them."""

from __future__ import annotations

from typing import Any, cast

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from tasker_async import otel, prometheus
from tasker_async.durable import Client, MemoryStore, RunEvent, RunFailedError, StepEvent, Store, Workflow

from ._doubles import Lab, eventually, serving


class FlowEvents:
    """A manager hook that keeps the workflow events it is told of."""

    def __init__(self) -> None:
        self.steps: list[StepEvent] = []
        self.runs: list[RunEvent] = []

    def __call__(self, event: object, /) -> None:
        if isinstance(event, StepEvent):
            self.steps.append(event)
        elif isinstance(event, RunEvent):
            self.runs.append(event)

    def of_steps(self) -> list[tuple[str, str, int | None]]:
        return [(event.step, event.kind, event.item) for event in self.steps]


def _fan(lab: Lab, *, fail: bool = False) -> Workflow:
    flow = Workflow("fan", max_deliveries=1)

    @flow.step()
    async def split(resource: str) -> list[int]:
        return [1, 2]

    @flow.step(depends_on=[split], map_over=split)
    async def double(resource: str, *, split: int) -> int:
        if fail and split == 2:
            raise ValueError("two is bad")
        return split * 2

    @flow.step(depends_on=[double])
    async def total(resource: str, *, double: list[int]) -> int:
        return sum(double)

    lab.registry.add_workflow(flow)
    return flow


async def test_steps_and_the_run_tell_their_events_to_the_hooks(store: Store) -> None:
    lab, events = Lab(), FlowEvents()
    flow = _fan(lab)
    async with Client(store) as client, serving(store, lab, hooks=[events]):
        run = await client.start(flow)
        assert (await run.result(timeout=20))["total"] == 6
        await eventually(lambda: [event.kind for event in events.runs] == ["started", "succeeded"], "the run told")
        await eventually(lambda: len(events.steps) == 8, "every step told")
    told = events.of_steps()
    for step, item in [("split", None), ("double", 0), ("double", 1), ("total", None)]:
        assert told.index((step, "started", item)) < told.index((step, "succeeded", item))
    assert told.index(("double", "succeeded", 0)) < told.index(("total", "started", None))
    assert {event.run_id for event in events.steps + events.runs} == {run.id}
    assert {event.workflow for event in events.steps + events.runs} == {"fan"}
    assert all(event.attempt == 1 for event in events.steps)


async def test_a_failing_step_tells_failed_with_its_error_and_the_run_failed(store: Store) -> None:
    lab, events = Lab(), FlowEvents()
    flow = _fan(lab, fail=True)
    async with Client(store) as client, serving(store, lab, hooks=[events]):
        run = await client.start(flow)
        with pytest.raises(RunFailedError):
            await run.result(timeout=20)
        await eventually(lambda: [event.kind for event in events.runs] == ["started", "failed"], "the run told")
        await eventually(lambda: ("double", "failed", 1) in events.of_steps(), "the failure told")
    failed = next(event for event in events.steps if event.kind == "failed")
    assert failed.error is not None
    assert "two is bad" in failed.error.message
    assert ("total", "started", None) not in events.of_steps()


async def test_prometheus_counts_step_and_run_events() -> None:
    lab, registry = Lab(), CollectorRegistry()
    flow = _fan(lab)

    def value(name: str, kind: str) -> float:
        return registry.get_sample_value(f"tasker_{name}_total", {"event": kind}) or 0.0

    async with MemoryStore() as store, Client(store) as client, serving(store, lab) as node:
        exporter: Any = prometheus.instrument(node.manager, registry=registry, consumer=node.consumer)
        try:
            await (await client.start(flow)).result(timeout=20)
            await eventually(lambda: value("durable_workflow_runs", "succeeded") == 1, "the run counted")
            await eventually(lambda: value("durable_workflow_steps", "succeeded") == 4, "the steps counted")
            counted = [value("durable_workflow_steps", "started"), value("durable_workflow_steps", "failed")]
            counted.append(value("durable_workflow_runs", "started"))
        finally:
            exporter.close()
    assert counted == [4, 0, 1]


async def test_opentelemetry_counts_step_and_run_events() -> None:
    lab = Lab()
    flow = _fan(lab)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])

    def value(name: str, kind: str) -> float:
        data = reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == f"tasker.{name}":
                        for point in metric.data.data_points:
                            if (point.attributes or {}).get("event") == kind:
                                return float(cast(Any, point).value)
        return 0.0

    async with MemoryStore() as store, Client(store) as client, serving(store, lab) as node:
        exporter = otel.instrument(node.manager, meter_provider=provider, consumer=node.consumer)
        try:
            await (await client.start(flow)).result(timeout=20)
            await eventually(lambda: value("durable.workflow.run.events", "succeeded") == 1, "the run counted")
            await eventually(lambda: value("durable.workflow.step.events", "succeeded") == 4, "the steps counted")
            counted = [
                value("durable.workflow.step.events", "started"),
                value("durable.workflow.run.events", "started"),
            ]
        finally:
            exporter.close()
            provider.shutdown()
    assert counted == [4, 1]
