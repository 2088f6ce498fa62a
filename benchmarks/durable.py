"""Durable jobs end to end through SQLiteStore, against in-process ``queue_task``, in the same run.

    python -m benchmarks.durable                 # 5,000 no-op jobs, 2,000 jobs of 1 ms, 8 workers, 5 rounds
    python -m benchmarks.durable --rounds 9 --jobs 10000
    python -m benchmarks.durable --dir /dev/shm  # the SQLite files on tmpfs: no disk sync in the numbers
    python -m benchmarks.durable --smoke         # tiny, one round: checks that it runs, not the numbers

Each round makes three runs, each on a fresh SQLite file (in a temporary
directory under ``--dir``) with a fresh worker process started by the worker command line
(``python -m tasker_async worker benchmarks.durable --concurrency W``: this
module is also that worker's module) and warmed up with a few jobs before the
clock starts:

- *no-op, durable*: the producer (this process, one ``Client``) submits
  ``--jobs`` no-op jobs from 64 concurrent submitters, then awaits each result;
  jobs/s is the jobs over the time from the first submission to the last
  result;
- *1 ms, in-process*: ``--sleep-jobs`` callers each await
  ``manager.queue_task`` of a 1 ms task on a manager of W workers in this
  process;
- *1 ms, durable*: the same jobs through the store and the worker process.

The report gives medians over the rounds (min-max), the durable 1 ms
throughput over the in-process one, and the wall time per job of each, whose
difference is what the durable path adds per job. For the durable runs,
*submits/s* is the jobs over the time until the last ``submit`` returned:
where it is close to jobs/s, submitting is what limits the run. The target,
>= 2,000 no-op jobs/s, is informative: it never fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

import anyio
from anyio.abc import Process

from tasker_async import AsyncManager, Config
from tasker_async.durable import Client, Registry, SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
TARGET = 2_000.0  # no-op jobs/s through SQLite, one consumer process
SUBMITTERS = 64
START_LIMIT = 60.0  # seconds a worker process may take to answer its first jobs
WORKERS_ENV = "TASKER_BENCH_WORKERS"
NOOP, SLEEP_IN, SLEEP_DURABLE = "no-op, durable", "1 ms, in-process", "1 ms, durable"


def fixed_pool(workers: int) -> Config[int]:
    """A manager of exactly ``workers`` workers (no bursting, no spare ``run_task`` resources)."""
    return Config(on_create=int, worker_count=workers, max_worker_count=workers, resource_pool_size=0)


registry = Registry()
# The worker process's manager: as many workers as the producer's in-process pool (it sets WORKERS_ENV).
config = fixed_pool(int(os.environ.get(WORKERS_ENV, "8")))


@registry.task("bench.noop")
async def noop(resource: int) -> None:
    """As little as a job can do."""


@registry.task("bench.sleep")
async def sleep(resource: int, seconds: float) -> None:
    """Wait ``seconds``: a job that holds its worker, like I/O."""
    await asyncio.sleep(seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The loads and the pools; ``smoke`` runs check that the benchmark works, not its numbers."""

    jobs: int = 5_000
    sleep_jobs: int = 2_000
    task_seconds: float = 0.001
    workers: int = 8
    rounds: int = 5
    folder: str | None = None  # where the SQLite files go (None: the system's temporary directory)
    smoke: bool = False


@dataclass(slots=True)
class Series:
    """Seconds of one kind of run, one per round, and the jobs each ran.

    ``submitted``: for durable runs, the seconds until the last ``submit`` returned.
    """

    name: str
    jobs: int
    seconds: list[float] = field(default_factory=list)
    submitted: list[float] = field(default_factory=list)

    def add(self, seconds: float, submitted: float | None = None) -> None:
        self.seconds.append(seconds)
        if submitted is not None:
            self.submitted.append(submitted)

    def rates(self) -> list[float]:
        return [self.jobs / seconds for seconds in self.seconds]

    def ms_per_job(self) -> list[float]:
        return [seconds * 1e3 / self.jobs for seconds in self.seconds]


@asynccontextmanager
async def worker_process(url: str, workers: int, log: Path) -> AsyncIterator[Process]:
    """A worker process on ``url``, started by the command line; drained with SIGTERM on the way out."""
    command = [sys.executable, "-m", "tasker_async", "worker", "benchmarks.durable"]
    command += ["--store", url, "--concurrency", str(workers)]
    with log.open("wb") as errors:
        env = {**os.environ, WORKERS_ENV: str(workers)}
        process = await anyio.open_process(command, cwd=ROOT, env=env, stdin=None, stdout=errors, stderr=errors)
    try:
        yield process
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with anyio.move_on_after(30):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()
        if process.returncode != 0:
            output = await anyio.Path(log).read_text()
            raise RuntimeError(f"the worker process exited with {process.returncode}:\n{output[-2000:]}")


async def _submit_all(client: Client, submit: Callable[[Client], Awaitable[Any]], count: int) -> list[Any]:
    """``count`` jobs submitted by up to ``SUBMITTERS`` concurrent submitters, in order."""
    jobs: list[Any] = [None] * count
    indices = iter(range(count))

    async def submitter() -> None:
        for index in indices:  # shared: each submitter takes the next index
            jobs[index] = await submit(client)

    async with anyio.create_task_group() as group:
        for _ in range(min(SUBMITTERS, count)):
            group.start_soon(submitter)
    return jobs


async def _warm_up(client: Client, worker: Process, count: int) -> None:
    """Run ``count`` no-op jobs through the worker; fail at once if it exits instead."""

    async def watch() -> None:
        await worker.wait()
        raise RuntimeError(f"the worker process exited during the warm-up, with {worker.returncode}")

    with anyio.fail_after(START_LIMIT):
        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            for job in await _submit_all(client, lambda c: c.submit(noop), count):
                await job.result()
            group.cancel_scope.cancel()


async def durable_run(
    settings: Settings, submit: Callable[[Client], Awaitable[Any]], count: int
) -> tuple[float, float]:
    """Seconds from the first of ``count`` submissions to the last result, and to the last submission returned.

    Through a fresh store and a fresh worker process, warmed up first.
    """
    with tempfile.TemporaryDirectory(prefix="tasker-bench-", dir=settings.folder) as folder:
        path = Path(folder) / "bench.db"
        # The producer's store opens first, so the schema exists before the worker starts.
        log = Path(folder) / "worker.log"
        async with (
            SQLiteStore(path) as store,
            Client(store) as client,
            worker_process(f"sqlite:///{path}", settings.workers, log) as worker,
        ):
            await _warm_up(client, worker, 2 * settings.workers)
            gc.collect()
            start = perf_counter()
            jobs = await _submit_all(client, submit, count)
            submitted = perf_counter() - start
            for job in jobs:
                await job.result()
            return perf_counter() - start, submitted


async def in_process_run(settings: Settings) -> float:
    """Seconds for ``sleep_jobs`` callers each awaiting ``queue_task`` of the 1 ms task, W workers."""
    async with AsyncManager(fixed_pool(settings.workers)) as manager:
        gc.collect()
        start = perf_counter()
        await asyncio.gather(*[manager.queue_task(sleep.fn, settings.task_seconds) for _ in range(settings.sleep_jobs)])
        return perf_counter() - start


def measure(settings: Settings, progress: Callable[[str], None]) -> list[Series]:
    """``rounds`` rounds of the three runs, each run in a fresh event loop."""
    seconds = settings.task_seconds
    noop_series = Series(NOOP, settings.jobs)
    inproc = Series(SLEEP_IN, settings.sleep_jobs)
    durable = Series(SLEEP_DURABLE, settings.sleep_jobs)
    for number in range(1, settings.rounds + 1):
        noop_series.add(*asyncio.run(durable_run(settings, lambda c: c.submit(noop), settings.jobs)))
        inproc.add(asyncio.run(in_process_run(settings)))
        durable.add(*asyncio.run(durable_run(settings, lambda c: c.submit(sleep, seconds), settings.sleep_jobs)))
        shown = ", ".join(f"{one.name} {one.rates()[-1]:,.0f} jobs/s" for one in (noop_series, inproc, durable))
        progress(f"round {number}/{settings.rounds}: {shown}")
    return [noop_series, inproc, durable]


def _spread(values: list[float], fmt: str) -> tuple[str, str]:
    return format(statistics.median(values), fmt), f"{min(values):{fmt}}-{max(values):{fmt}}"


def report(settings: Settings, series: list[Series]) -> str:
    """The table, the overhead lines and the verdict, as markdown."""
    noop_series, inproc, durable = series
    lines = [
        f"Durable jobs through SQLiteStore (files in {settings.folder or tempfile.gettempdir()}), one worker "
        f"process of {settings.workers} workers, against in-process queue_task with as many workers; "
        f"medians of {settings.rounds} round(s) (min-max).",
        "",
        "| run | jobs | jobs/s | min-max | ms per job | min-max | submits/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for one in series:
        rate, rate_range = _spread(one.rates(), ",.0f")
        per_job, per_job_range = _spread(one.ms_per_job(), ".3f")
        submits = f"{statistics.median(one.jobs / s for s in one.submitted):,.0f}" if one.submitted else "-"
        lines.append(f"| {one.name} | {one.jobs:,} | {rate} | {rate_range} | {per_job} | {per_job_range} | {submits} |")
    ratios = [d / i for d, i in zip(durable.rates(), inproc.rates(), strict=True)]
    added = [d - i for d, i in zip(durable.ms_per_job(), inproc.ms_per_job(), strict=True)]
    ratio, ratio_range = _spread(ratios, ".2f")
    extra, extra_range = _spread(added, ".3f")
    noop_rate = statistics.median(noop_series.rates())
    status = "PASS" if noop_rate >= TARGET else "FAIL"
    lines += [
        "",
        f"1 ms jobs, durable over in-process throughput: {ratio}x ({ratio_range}); "
        f"the durable path adds {extra} ms per job ({extra_range}).",
        "",
        "```text",
        f"{status}  no-op jobs through SQLiteStore, one consumer process >= {TARGET:,.0f} jobs/s: {noop_rate:,.0f}",
        "```",
    ]
    return "\n".join(lines)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.durable", description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=_positive, default=defaults.jobs, help="no-op jobs per durable run")
    parser.add_argument("--sleep-jobs", type=_positive, default=defaults.sleep_jobs, help="1 ms jobs per run")
    parser.add_argument("--workers", type=_positive, default=defaults.workers, help="workers, in both pools")
    parser.add_argument("--rounds", type=_positive, default=defaults.rounds, help="rounds; the report gives medians")
    parser.add_argument("--dir", help="where the SQLite files go (default: the system's temporary directory)")
    parser.add_argument("--smoke", action="store_true", help="100 and 50 jobs, 2 workers, one round")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings(
        jobs=args.jobs, sleep_jobs=args.sleep_jobs, workers=args.workers, rounds=args.rounds, folder=args.dir
    )
    if args.smoke:
        settings = Settings(jobs=100, sleep_jobs=50, workers=2, rounds=1, folder=args.dir, smoke=True)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    print(report(settings, measure(settings, progress)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
