"""A 1,000-way fan-out into one fan-in step, per engine, next to the plain job throughput of the same worker.

``python -m benchmarks.engines sqlite --fanout`` (or ``redis``, ``postgres``, ``all``). This module is also
the worker module: ``registry`` holds the no-op task of the throughput runs and the ``fanout`` workflow
(``spread`` returns ``width`` items, ``work`` runs once per item, ``gather`` receives the list).

Each round, on a fresh engine with one fresh worker process (``--concurrency``, warmed up first): the plain
throughput (``width`` no-op jobs submitted and awaited, as the throughput runs do), then one run of the
workflow: steps/s counts its ``width + 2`` steps from ``client.start`` to the run's result. The fan-in must
run exactly once (its step's attempts are checked). A second, in-process measurement counts the store calls
a consumer makes per step (claims, completions, renewals, give-backs, ready checks): the round trips.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import statistics
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

from tasker_async import AsyncManager, Config
from tasker_async.durable import Client, Consumer, Store, Workflow, open_store

from . import tasker_peer
from ._harness import START_LIMIT, Settings
from ._process import watched, worker_process
from ._servers import EngineServer

__all__ = ("FanoutResult", "config", "measure_fanout", "registry", "render_fanout")

WIDTH = 1_000
GOAL = 0.5  # steps/s of the fan-out over the plain jobs/s of the same store

registry = tasker_peer.registry
config = tasker_peer.config

fanout = Workflow("bench.fanout", lease=30.0)


@fanout.step()
async def spread(resource: int, *, width: int) -> list[int]:
    return list(range(width))


@fanout.step(depends_on=[spread], map_over=spread)
async def work(resource: int, *, spread: int) -> int:
    return spread


@fanout.step(depends_on=[work])
async def gather(resource: int, *, work: list[int]) -> int:
    return len(work)


registry.add_workflow(fanout)


@dataclass(slots=True)
class FanoutResult:
    """One engine's rounds: plain jobs/s, fan-out steps/s, and the consumer's store calls per step."""

    engine: str
    server: str
    jobs_per_s: list[float] = field(default_factory=list)
    steps_per_s: list[float] = field(default_factory=list)
    calls_per_step: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)


async def _one_run(url: str, width: int) -> float:
    """One fan-out run through a client: steps/s, the fan-in checked to have run once."""
    async with open_store(url) as store, Client(store) as client:
        start = perf_counter()
        run = await client.start(fanout, width=width)
        results = await run.result(timeout=600)
        seconds = perf_counter() - start
        info = await run.info()
    if results["gather"] != width or info.steps["gather"].attempts != 1:
        raise RuntimeError(f"the fan-in ran {info.steps['gather'].attempts} times, with {results['gather']} items")
    return (width + 2) / seconds


async def _round(server: EngineServer, settings: Settings, width: int, log: Path) -> tuple[float, float]:
    async with server.fresh() as url:
        await tasker_peer.setup(url)
        argv = tasker_peer.worker_argv(url, settings.concurrency, module="benchmarks.engines.fanout")
        async with worker_process(argv, log) as worker:
            warm = tasker_peer.produce(url, settings.warm_up, settings.submitters)
            await watched(worker, warm, limit=START_LIMIT, what="the warm-up", log=log)
            await watched(worker, _one_run(url, 10), limit=START_LIMIT, what="the warm-up run", log=log)
            gc.collect()
            plain = await watched(worker, tasker_peer.produce(url, width, settings.submitters), **_limit(log, "jobs"))
            steps = await watched(worker, _one_run(url, width), **_limit(log, "the fan-out"))
    return width / plain.seconds, steps


def _limit(log: Path, what: str) -> dict[str, Any]:
    return {"limit": 600.0, "what": what, "log": log}


def _counting(store: Store) -> Counter[str]:
    """Count ``store``'s calls by method name from now on: each public coroutine method of the object is
    wrapped in place (the object stays what it is, so it still passes as a ``Store``)."""
    calls: Counter[str] = Counter()
    for name in dir(type(store)):
        found = getattr(store, name)
        if not name.startswith("_") and inspect.iscoroutinefunction(found):
            setattr(store, name, functools.partial(_counted, calls, name, found))
    return calls


async def _counted(
    calls: Counter[str], name: str, call: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
) -> Any:
    calls[name] += 1
    return await call(*args, **kwargs)


async def _round_trips(url: str, width: int, concurrency: int) -> Counter[str]:
    """The store calls of a consumer (in this process) running one fan-out of ``width``."""
    manager_config = Config(on_create=int, worker_count=concurrency, max_worker_count=concurrency, resource_pool_size=0)
    async with open_store(url) as store, open_store(url) as consumed, Client(store) as client:
        calls = _counting(consumed)
        async with AsyncManager(manager_config) as manager, Consumer(consumed, registry, manager):
            run = await client.start(fanout, width=width)
            await run.result(timeout=600)
        return calls


def measure_fanout(
    server: EngineServer, settings: Settings, progress: Callable[[str], None], width: int = WIDTH
) -> FanoutResult:
    """``settings.rounds`` rounds of plain jobs then one fan-out; then the round trips, counted once."""
    result = FanoutResult(server.engine, server.describe())
    with tempfile.TemporaryDirectory(prefix="tasker-bench-fanout-") as logs:
        for number in range(1, settings.rounds + 1):
            log = Path(logs) / f"{server.engine}-{number}.log"
            jobs, steps = asyncio.run(_round(server, settings, width, log))
            result.jobs_per_s.append(jobs)
            result.steps_per_s.append(steps)
            progress(f"{server.engine} round {number}: {jobs:,.0f} jobs/s, fan-out {steps:,.0f} steps/s")

    async def counted() -> Counter[str]:
        async with server.fresh() as url:
            return await _round_trips(url, width, settings.concurrency)

    calls = asyncio.run(counted())
    result.calls = dict(sorted(calls.items()))
    consumer_calls = sum(count for name, count in calls.items() if name not in ("take_run_events",))
    result.calls_per_step = consumer_calls / (width + 2)
    return result


def render_fanout(results: list[FanoutResult], settings: Settings, width: int = WIDTH) -> str:
    """The table: medians per engine, the ratio to the goal, the store calls per step."""
    lines = [
        f"## Workflow fan-out: {width:,} items into one fan-in, concurrency {settings.concurrency},"
        f" {settings.rounds} round(s), medians",
        "",
        "| engine | plain jobs/s | fan-out steps/s | steps/s ÷ jobs/s | goal | store calls per step |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        jobs, steps = statistics.median(result.jobs_per_s), statistics.median(result.steps_per_s)
        ratios = [s / j for s, j in zip(result.steps_per_s, result.jobs_per_s, strict=True)]
        ratio = statistics.median(ratios)
        mark = "✓" if ratio >= GOAL else "✗"
        lines.append(
            f"| {result.engine} ({result.server}) | {jobs:,.0f} | {steps:,.0f} | {ratio:.2f}"
            f" ({min(ratios):.2f}-{max(ratios):.2f}) | ≥ {GOAL} {mark} | {result.calls_per_step:.2f} |"
        )
    lines.append("")
    for result in results:
        shown = ", ".join(f"{name} {count}" for name, count in result.calls.items())
        lines.append(f"- {result.engine}: the consumer's store calls for {width + 2:,} steps: {shown}")
    return "\n".join(lines)
