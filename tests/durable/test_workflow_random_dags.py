"""Random DAGs on SQLite (hypothesis): random failures, a consumer killed mid-run; runs end as their failures imply.

Every step returns a list its children can map over, derived from its name alone, so what each step must receive
and return is known in advance. Checked for each run: the run's and every step's final state, the results, that
a step only ever started with its parents' complete results (the fan-in rule), and that no step job ran more
times than it was delivered, nor completed twice.
"""

from __future__ import annotations

import collections
import functools
import itertools
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasker_async import AsyncManager, Config
from tasker_async.durable import Client, Consumer, Registry, RunFailedError, SQLiteStore, Workflow, WorkflowRun

from ._doubles import eventually

SETTINGS = settings(
    max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

pytestmark = pytest.mark.timeout(120)


@st.composite
def dags(draw: st.DrawFn) -> dict[str, Any]:
    """Up to 12 steps, each on a random set of earlier ones, maybe mapped over one; lengths, failures, a kill point."""
    count = draw(st.integers(min_value=1, max_value=12))
    names = [f"s{index}" for index in range(count)]
    steps = []
    for index, name in enumerate(names):
        bits = draw(st.integers(min_value=0, max_value=(1 << index) - 1))
        parents = tuple(names[parent] for parent in range(index) if bits >> parent & 1)
        mapped: str | None = None
        maps = draw(st.booleans())
        if parents and maps:
            mapped = draw(st.sampled_from(parents))
        steps.append((name, parents, mapped, draw(st.integers(min_value=0, max_value=3))))
    failing = draw(st.sets(st.sampled_from(names), max_size=2))
    return {"steps": steps, "failing": failing, "kill_after": draw(st.integers(min_value=0, max_value=4))}


def _expected(steps: list[tuple[str, tuple[str, ...], str | None, int]], failing: set[str]) -> dict[str, Any]:
    """Each step's final state and, if it succeeds, its result (in definition order, which is topological here)."""
    states: dict[str, str] = {}
    results: dict[str, Any] = {}
    for name, parents, mapped, length in steps:
        if any(states[parent] != "succeeded" for parent in parents):
            states[name] = "upstream_failed"
        elif mapped is not None and not results[mapped]:
            states[name], results[name] = "succeeded", []  # no items: succeeds without a job
        elif name in failing:
            states[name] = "failed"
        else:
            states[name] = "succeeded"
            items = results[mapped] if mapped is not None else None
            results[name] = [f"{name}<{item}>" for item in items] if items is not None else _made(name, length)
    return {"states": states, "results": results}


def _made(name: str, length: int) -> list[str]:
    return [f"{name}:{index}" for index in range(length)]


class Watch:
    """What the steps saw: starts and completions per (step, item), fan-in violations; the kill's gate."""

    def __init__(self, kill_after: int) -> None:
        self.starts: collections.Counter[tuple[str, Any]] = collections.Counter()
        self.completions: collections.Counter[tuple[str, Any]] = collections.Counter()
        self.violations: list[str] = []
        self.kill_after = kill_after
        self.gate = anyio.Event()  # closed: starts past ``kill_after`` wait here (the consumer is killed there)

    @property
    def started(self) -> int:
        return sum(self.starts.values())


def _flow(spec: dict[str, Any], watch: Watch, expected: dict[str, Any]) -> Workflow:
    flow = Workflow("random", lease=30.0, max_deliveries=10)
    for name, parents, mapped, length in spec["steps"]:
        flow.step(depends_on=parents, map_over=mapped, name=name)(
            _step(name, parents, mapped, length, spec["failing"], watch, expected["results"])
        )
    return flow


def _step(
    name: str,
    parents: tuple[str, ...],
    mapped: str | None,
    length: int,
    failing: set[str],
    watch: Watch,
    results: dict[str, Any],
) -> Any:
    async def step(resource: str, **received: Any) -> Any:
        item = received.get(mapped) if mapped is not None else None
        watch.starts[name, item] += 1
        for parent in parents:
            want = results.get(parent)
            if parent == mapped:
                want = item if item in (want or []) else ("an item of", want)
            if received.get(parent) != want:
                watch.violations.append(f"{name} got {parent}={received.get(parent)!r}, not {want!r}")
        if watch.started > watch.kill_after:
            await watch.gate.wait()
        if name in failing:
            raise RuntimeError(f"{name} fails")
        watch.completions[name, item] += 1
        return f"{name}<{item}>" if mapped is not None else _made(name, length)

    return step


async def _run(spec: dict[str, Any], folder: Path) -> None:
    expected = _expected(spec["steps"], set(spec["failing"]))
    watch = Watch(spec["kill_after"])
    registry = Registry()
    flow = _flow(spec, watch, expected)
    registry.add_workflow(flow)
    ids = itertools.count()
    config = Config(on_create=lambda: f"r{next(ids)}", worker_count=2, max_worker_count=2, resource_pool_size=0)
    path = folder / f"dag-{next(_files)}.db"
    async with SQLiteStore(path) as store, Client(store) as client:
        run = await client.start(flow)
        with anyio.fail_after(60):
            async with SQLiteStore(path) as first, AsyncManager(config) as manager:
                consumer = Consumer(first, registry, manager)
                async with consumer:
                    await eventually(functools.partial(_kill_point, watch, run), "the kill point", timeout=50)
                    await consumer.kill()  # the runs held at the gate are cut short, their jobs given back
            watch.gate.set()
            async with (
                SQLiteStore(path) as second,
                AsyncManager(config) as manager,
                Consumer(second, registry, manager),
            ):
                try:
                    results = await run.result(timeout=50)
                except RunFailedError:
                    results = None
                info = await run.info()
    states = {name: step.state for name, step in info.steps.items()}
    assert states == expected["states"]
    assert info.state == ("succeeded" if set(states.values()) == {"succeeded"} else "failed")
    if results is not None:
        assert results == expected["results"]
    assert watch.violations == []
    assert all(count == 1 for count in watch.completions.values())
    for name, step in info.steps.items():
        started = sum(count for (step_name, _), count in watch.starts.items() if step_name == name)
        assert started <= step.attempts, f"{name} started {started} times in {step.attempts} deliveries"


_files = itertools.count()


async def _kill_point(watch: Watch, run: WorkflowRun) -> bool:
    """Whether the first consumer is to be killed: steps wait at the gate, or the run ended before any did."""
    return watch.started > watch.kill_after or (await run.info()).state != "running"


@SETTINGS
@given(spec=dags())
def test_random_dags_end_as_their_failures_imply_with_a_consumer_killed_mid_run(
    spec: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    anyio.run(_run, spec, tmp_path_factory.mktemp("dags"))
