"""tasker_async's submit -> result latency at an offered load, per engine (``--latency``).

An open loop: job i is due at ``i / RATE`` seconds after the start and is submitted then, whether or not
earlier ones have finished (each in a task of its own that submits and awaits ``job.result()``). A job's
latency runs from the time it was due to the time its result was back, so a producer running late adds
to the latency instead of hiding it; the table also gives how late the producer was at most. One fresh
worker process (``benchmarks.engines.tasker_peer``, the throughput runs' concurrency) on a fresh engine,
warmed up first. Target: p99 <= 10 ms at 500 jobs/s.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import anyio

from tasker_async.durable import Client, Job, open_store

from . import tasker_peer
from ._drive import drive
from ._harness import START_LIMIT, Settings
from ._process import watched, worker_process
from ._servers import EngineServer

__all__ = ("RATE", "TARGET_MS", "LatencyResult", "measure_latency", "render_latency")

RATE = 500.0  # jobs offered per second
JOBS = 5_000
SMOKE_JOBS = 100
TARGET_MS = 10.0  # p99 at RATE


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyResult:
    """One engine's latencies (ms, one per job) and the producer's worst lateness (ms)."""

    engine: str
    server: str
    latencies: list[float]
    late: float


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def _open_loop(client: Client, jobs: int, rate: float) -> tuple[list[float], float]:
    """Submit ``jobs`` no-op jobs on a fixed schedule of ``rate`` a second; latencies and lateness in ms."""
    latencies = [0.0] * jobs
    late = 0.0

    async def one(index: int, due: float) -> None:
        job = await client.submit(tasker_peer.noop)
        await job.result()
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

            warm = drive(submit, wait, settings.warm_up, settings.submitters)
            await watched(worker, warm, limit=START_LIMIT, what="the warm-up", log=log)
            gc.collect()
            limit = 60.0 + 2 * jobs / RATE
            return await watched(worker, _open_loop(client, jobs, RATE), limit=limit, what="the open loop", log=log)


def measure_latency(server: EngineServer, settings: Settings, progress: Callable[[str], None]) -> LatencyResult:
    """tasker_async's latencies on ``server`` at ``RATE`` jobs/s offered."""
    jobs = SMOKE_JOBS if settings.smoke else JOBS
    progress(f"{server.engine}: {jobs:,} jobs at {RATE:,.0f} jobs/s offered")
    with tempfile.TemporaryDirectory(prefix="tasker-bench-logs-") as logs:
        latencies, late = asyncio.run(_run(server, settings, jobs, Path(logs) / "worker.log"))
    return LatencyResult(engine=server.engine, server=server.describe(), latencies=latencies, late=late)


def render_latency(results: list[LatencyResult], settings: Settings) -> str:
    """The latency table, then a verdict per engine (informative: it never fails the run)."""
    lines = [
        "## Engines: tasker_async submit -> result latency, open loop",
        "",
        f"One worker process at concurrency {settings.concurrency}; jobs submitted on a fixed schedule of "
        f"{RATE:,.0f} a second, each awaited on its own; latency from the time a job was due to its result.",
        "",
        "| engine | server | jobs | p50 ms | p99 ms | max ms | producer late at most, ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    for one in results:
        p50, p99 = statistics.median(one.latencies), percentile(one.latencies, 0.99)
        worst = max(one.latencies)
        count = len(one.latencies)
        lines.append(
            f"| {one.engine} | {one.server} | {count:,} | {p50:.2f} | {p99:.2f} | {worst:.2f} | {one.late:.2f} |"
        )
        status = "PASS" if p99 <= TARGET_MS else "FAIL"
        verdicts.append(f"{status}  [{one.engine}] p99 at {RATE:,.0f} jobs/s <= {TARGET_MS:g} ms: {p99:.2f} ms")
    return "\n".join([*lines, "", "```text", *verdicts, "```"])
