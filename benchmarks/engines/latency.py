"""tasker_async's submit -> result latency at an offered load, per engine (``--latency``).

An open loop: job i is due at ``i / RATE`` seconds after the start and is submitted then, whether or not
earlier ones have finished (each in a task of its own that submits and awaits ``job.result()``). A job's
latency runs from the time it was due to the time its result was back, so a producer running late adds
to the latency instead of hiding it; the table also gives how late the producer was at most. One fresh
worker process (``benchmarks.engines.tasker_peer``, the throughput runs' concurrency) on a fresh engine,
warmed up first, ``--rounds`` times. Target: p99 <= 10 ms at 500 jobs/s (the median of the rounds').

On Redis the same open loop then runs through a queue written by hand (``floor.py``): three synced writes
a job and nothing else, the least any durable queue costs this machine at that moment; its row is the
yardstick for tasker_async's (a machine in a slow spell moves both).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import anyio

from tasker_async.durable import Client, Job, open_store

from . import floor, tasker_peer
from ._drive import drive
from ._harness import START_LIMIT, Settings
from ._process import watched, worker_process
from ._servers import EngineServer

__all__ = ("RATE", "TARGET_MS", "LatencyResult", "Round", "measure_latency", "render_latency")

RATE = 500.0  # jobs offered per second
JOBS = 5_000
SMOKE_JOBS = 100
TARGET_MS = 10.0  # p99 at RATE


@dataclass(frozen=True, slots=True, kw_only=True)
class Round:
    """One open loop: the latency of each job (ms) and how late the producer was at most (ms)."""

    latencies: list[float]
    late: float

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyResult:
    """One system's rounds on one engine."""

    engine: str
    system: str
    server: str
    rounds: list[Round]

    @property
    def p99(self) -> float:
        """The median of the rounds' p99."""
        return statistics.median(one.p99 for one in self.rounds)


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def _open_loop(job: Callable[[int], Awaitable[None]], jobs: int, rate: float) -> tuple[list[float], float]:
    """Run ``job(index)`` for ``jobs`` indexes on a fixed schedule of ``rate`` a second; latencies and lateness in ms.

    ``job(index)`` submits a no-op job and returns once its result is back.
    """
    latencies = [0.0] * jobs
    late = 0.0

    async def one(index: int, due: float) -> None:
        await job(index)
        latencies[index] = (perf_counter() - due) * 1e3

    start = perf_counter()
    async with anyio.create_task_group() as group:
        for index in range(jobs):
            due = start + index / rate
            wait = due - perf_counter()
            if wait > 0:
                await anyio.sleep(wait)
            late = max(late, (perf_counter() - due) * 1e3)
            group.start_soon(one, index, due)
    return latencies, late


async def _run(server: EngineServer, settings: Settings, jobs: int, log: Path) -> tuple[list[float], float]:
    async with server.fresh() as url:
        await tasker_peer.setup(url)
        async with (
            worker_process(tasker_peer.worker(url, settings.concurrency), log) as worker,
            open_store(url) as store,
            Client(store) as client,
        ):

            async def submit() -> Job[None]:
                return await client.submit(tasker_peer.noop)

            async def wait(job: Job[None]) -> None:
                await job.result()

            async def job(index: int) -> None:
                await (await submit()).result()

            warm = drive(submit, wait, settings.warm_up, settings.submitters)
            await watched(worker, warm, limit=START_LIMIT, what="the warm-up", log=log)
            gc.collect()
            return await watched(worker, _open_loop(job, jobs, RATE), limit=_limit(jobs), what="the open loop", log=log)


def _limit(jobs: int) -> float:
    return 60.0 + 2 * jobs / RATE


async def _floor(server: EngineServer, settings: Settings, jobs: int, log: Path) -> tuple[list[float], float]:
    found: list[tuple[list[float], float]] = []

    async def use(job: Callable[[int], Awaitable[None]]) -> None:
        async def warm(index: int) -> None:
            await job(index)

        async with anyio.create_task_group() as group:  # the warm-up, as many at once as tasker_async's
            for index in range(jobs, jobs + settings.warm_up):
                group.start_soon(warm, index)
        gc.collect()
        found.append(await _open_loop(job, jobs, RATE))

    async with server.fresh() as url, worker_process(floor.worker(url), log) as process:
        await watched(process, floor.floor_jobs(url, use), limit=START_LIMIT + _limit(jobs), what="the floor", log=log)
    return found[0]


def measure_latency(server: EngineServer, settings: Settings, progress: Callable[[str], None]) -> list[LatencyResult]:
    """tasker_async's latencies on ``server`` at ``RATE`` jobs/s offered, ``settings.rounds`` times.

    On Redis each round runs the floor right after tasker_async, so the machine's spells hit both alike.
    """
    jobs = SMOKE_JOBS if settings.smoke else JOBS
    runs = [("tasker_async", _run)]
    if server.engine == "redis":
        runs.append(("floor", _floor))
    found: dict[str, list[Round]] = {system: [] for system, _ in runs}
    for number in range(1, settings.rounds + 1):
        for system, run in runs:
            progress(f"{server.engine}: round {number}, {system}, {jobs:,} jobs at {RATE:,.0f} jobs/s offered")
            with tempfile.TemporaryDirectory(prefix="tasker-bench-logs-") as logs:
                latencies, late = asyncio.run(run(server, settings, jobs, Path(logs) / "worker.log"))
            found[system].append(Round(latencies=latencies, late=late))
    return [
        LatencyResult(engine=server.engine, system=system, server=server.describe(), rounds=rounds)
        for system, rounds in found.items()
    ]


def render_latency(results: list[LatencyResult], settings: Settings) -> str:
    """The latency table, then a verdict per engine for tasker_async (informative: it never fails the run)."""
    lines = [
        "## Engines: tasker_async submit -> result latency, open loop",
        "",
        f"One worker process at concurrency {settings.concurrency}; jobs submitted on a fixed schedule of "
        f"{RATE:,.0f} a second, each awaited on its own; latency from the time a job was due to its result. "
        "floor: a queue written by hand, three synced writes a job and nothing else (benchmarks/engines/floor.py). "
        "p50 and p99: medians of the rounds' own (p99 of each round in order after them); max and lateness: "
        "the worst of all rounds (late: how late the producer was at most).",
        "",
        "| engine | system | server | rounds x jobs | p50 ms | p99 ms | each round's p99 | max ms | late ms |",
        "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    verdicts = []
    for one in results:
        p50 = statistics.median(statistics.median(each.latencies) for each in one.rounds)
        worst = max(max(each.latencies) for each in one.rounds)
        late = max(each.late for each in one.rounds)
        each_p99 = ", ".join(f"{each.p99:.2f}" for each in one.rounds)
        size = f"{len(one.rounds)} x {len(one.rounds[0].latencies):,}"
        lines.append(
            f"| {one.engine} | {one.system} | {one.server} | {size} | {p50:.2f} | {one.p99:.2f} | {each_p99} "
            f"| {worst:.2f} | {late:.2f} |"
        )
        if one.system != "tasker_async":
            continue
        status = "PASS" if one.p99 <= TARGET_MS else "FAIL"
        verdict = f"p99 at {RATE:,.0f} jobs/s <= {TARGET_MS:g} ms: {one.p99:.2f} ms (median of rounds)"
        verdicts.append(f"{status}  [{one.engine}] {verdict}")
    return "\n".join([*lines, "", "```text", *verdicts, "```"])
