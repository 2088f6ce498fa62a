"""tasker_async's recovery after SIGKILL of a worker process, per engine (``--recovery``).

Each repeat, on a fresh engine: two worker processes of this module (``python -m tasker_async worker
benchmarks.engines.recovery``, ``CONCURRENCY`` workers each) serve one queue; once both are listed among
the store's consumers, ``CONCURRENCY`` *hold* jobs with a short lease are submitted. A hold job leaves a
mark (its process id) when it starts, then holds its worker for far longer than the run; started again
after a loss (its mark is there), it returns at once, so what is timed is the recovery, not a second run.
When every job has started, after a random pause of up to one lease (so the kills fall anywhere between
two renewals of the leases), the process that holds the most is killed with SIGKILL; for each job it held,
the time from the kill to the job's result (from the other process) is taken, as a multiple of the
lease. The other process has room for all of them (it runs ``CONCURRENCY`` at once). Target: <= 1.5.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import anyio

from tasker_async import Config
from tasker_async.durable import Client, DurableTask, Job, Registry, open_store

from ._process import worker_process
from ._servers import EngineServer
from .latency import percentile
from .tasker_peer import setup, worker_argv

__all__ = ("TARGET", "RecoveryResult", "config", "measure_recovery", "registry", "render_recovery")

CONCURRENCY = 4
HOLD = 600.0  # seconds a job holds its worker the first time: longer than any repeat
START_LIMIT = 60.0  # seconds for the workers to come up and start every job
TARGET = 1.5  # recovery within this many leases
NAME = "bench.hold"
MODULE = "benchmarks.engines.recovery"

registry = Registry()
config = Config(on_create=int, worker_count=CONCURRENCY, max_worker_count=CONCURRENCY, resource_pool_size=0)


async def hold(resource: int, folder: str, token: str) -> int:
    """Mark the start, then hold the worker; started again after a loss, return at once. Returns the pid."""
    mark = anyio.Path(folder) / token
    if not await mark.exists():
        await mark.write_text(str(os.getpid()))
        await anyio.sleep(HOLD)
    return os.getpid()


registry.task(NAME)(hold)  # the worker's; the lease a job has is the submitter's (``_hold_task``)


def _hold_task(lease: float) -> DurableTask[int, [str, str], int]:
    """The hold task with ``lease``: jobs carry their task's lease into the store."""
    return Registry().task(NAME, lease=lease)(hold)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryResult:
    """One engine's recovery times, in leases, over every killed worker's jobs."""

    engine: str
    server: str
    leases: list[float]


async def _marks(folder: Path, count: int) -> dict[str, int]:
    """Wait until ``count`` jobs left their mark; each job's token and the pid it started in."""
    with anyio.fail_after(START_LIMIT):
        while True:
            found = [path async for path in anyio.Path(folder).iterdir()]
            if len(found) >= count:
                return {path.name: int(await path.read_text() or 0) for path in found}
            await anyio.sleep(0.01)


async def _both_serving(client: Client, pids: set[int]) -> None:
    """Wait until both worker processes are listed among the store's live consumers."""
    with anyio.fail_after(START_LIMIT):
        while True:
            if pids <= {consumer.pid for consumer in (await client.stats()).consumers}:
                return
            await anyio.sleep(0.05)


async def _recovered(jobs: dict[str, Job[int]], tokens: list[str], survivor: int, killed: float) -> list[float]:
    """Seconds from ``killed`` to each result of ``tokens``' jobs, awaited at once; each must be ``survivor``'s."""
    times: list[float] = []

    async def one(token: str) -> None:
        pid = await jobs[token].result(timeout=START_LIMIT)
        times.append(perf_counter() - killed)
        if pid != survivor:
            raise RuntimeError(f"job {token} ended in process {pid}, not the survivor {survivor}")

    async with anyio.create_task_group() as group:
        for token in tokens:
            group.start_soon(one, token)
    return sorted(times)


async def _repeat(server: EngineServer, lease: float, folder: Path) -> list[float]:
    """One kill: the recovery time of each job the killed process held, in leases."""
    marks = folder / "marks"
    marks.mkdir()
    task = _hold_task(lease)
    async with server.fresh() as url:
        await setup(url)
        argv = worker_argv(url, CONCURRENCY, MODULE)
        async with (
            worker_process(argv, folder / "first.log") as first,
            worker_process(argv, folder / "second.log") as second,
            open_store(url) as store,
            Client(store) as client,
        ):
            await _both_serving(client, {first.pid, second.pid})
            jobs = {f"job-{n}": await client.submit(task, str(marks), f"job-{n}") for n in range(CONCURRENCY)}
            started = await _marks(marks, CONCURRENCY)
            victim_pid, _ = Counter(started.values()).most_common(1)[0]
            victim, survivor = (first, second) if first.pid == victim_pid else (second, first)
            await anyio.sleep(random.uniform(0, lease))  # a kill anywhere between two renewals
            victim.kill()
            killed = perf_counter()
            held = [token for token, pid in started.items() if pid == victim_pid]
            times = await _recovered(jobs, held, survivor.pid, killed)
            survivor.kill()  # its own jobs hold on: no drain to wait for
            return [seconds / lease for seconds in times]


def measure_recovery(server: EngineServer, kills: int, lease: float, progress: Callable[[str], None]) -> RecoveryResult:
    """``kills`` repeats on ``server``, each on a fresh engine with two fresh workers."""
    found: list[float] = []
    for number in range(1, kills + 1):
        with tempfile.TemporaryDirectory(prefix="tasker-bench-recovery-") as folder:
            times = asyncio.run(_repeat(server, lease, Path(folder)))
        found += times
        shown = ", ".join(f"{value:.2f}" for value in times)
        progress(f"{server.engine} kill {number}/{kills}: {len(times)} job(s) recovered after {shown} lease(s)")
    return RecoveryResult(engine=server.engine, server=server.describe(), leases=found)


def render_recovery(results: list[RecoveryResult], kills: int, lease: float) -> str:
    """The recovery table, then a verdict per engine (informative: it never fails the run)."""
    lines = [
        "## Engines: tasker_async recovery after SIGKILL of a worker process",
        "",
        f"Two worker processes of {CONCURRENCY} workers each; jobs with a lease of {lease:g} s; {kills} kill(s) "
        "per engine, each on a fresh engine; for every job the killed process held, the time from the kill "
        "to its result from the other process, in leases.",
        "",
        "| engine | server | kills | jobs | min | median | p90 | max |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    for one in results:
        values: list[Any] = [min(one.leases), statistics.median(one.leases), percentile(one.leases, 0.9)]
        values.append(max(one.leases))
        shown = " | ".join(f"{value:.2f}" for value in values)
        lines.append(f"| {one.engine} | {one.server} | {kills} | {len(one.leases)} | {shown} |")
        status = "PASS" if max(one.leases) <= TARGET else "FAIL"
        verdicts.append(
            f"{status}  [{one.engine}] every job recovered within {TARGET:g} x lease: {max(one.leases):.2f}"
        )
    return "\n".join([*lines, "", "```text", *verdicts, "```"])
