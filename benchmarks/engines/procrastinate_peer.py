"""procrastinate on PostgreSQL: the same no-op task, deferred one job per call, run by one worker process.

The worker process calls ``run_worker(URL, CONCURRENCY)`` of this module (through ``python -c``, so that
the app lives in this module rather than in ``__main__``, as procrastinate asks): it points the module's
app at ``URL`` (a ``PsycopgConnector`` with its default pool) and runs ``app.run_worker_async`` with that
concurrency and the library's defaults otherwise (LISTEN/NOTIFY on, jobs kept after they end), as its
documentation shows. SIGTERM stops it gracefully.

The producer defers each job with ``defer_async`` (one call per job, from concurrent submitters) into a
queue of its own for the run, so only this run's jobs are counted. procrastinate keeps no results and
sends no notification when a job ends, so the producer waits the way its documentation offers: it polls
``app.job_manager.list_queues_async(queue=...)`` (one query counting the queue's jobs by status) until
every job is ``succeeded``, from the moment the last submission returned. It waits between two looks half
the time the remaining jobs should take at the rate seen so far, within ``POLL_MIN`` and ``POLL_MAX``: few
counts of a large queue while the worker is busy, and a last look soon after the last job ends (the
measured time overshoots by about ``POLL_MIN`` seconds, or half the error of the last estimate).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from time import perf_counter

import anyio
import procrastinate

from benchmarks.engines._drive import submit_all
from benchmarks.engines._system import System, Timing

__all__ = ("SYSTEM", "app", "noop", "run_worker")

WORKER_MAIN = "import sys; from benchmarks.engines.procrastinate_peer import run_worker; run_worker(*sys.argv[1:])"
POLL_MIN, POLL_MAX = 0.02, 1.0  # seconds between two looks at the run's queue
FAILED = ("failed", "cancelled", "aborted")  # statuses a no-op job must never end in

# The connection comes per process (the worker's argv, the producer's URL): see ``_connected``.
app = procrastinate.App(connector=procrastinate.PsycopgConnector())


@app.task(name="bench.noop")
async def noop() -> None:
    """As little as a job can do."""


@contextmanager
def _connected(url: str) -> Iterator[procrastinate.App]:
    """The module's app, on a connector to ``url`` while in the block (opened by the caller)."""
    with app.replace_connector(procrastinate.PsycopgConnector(conninfo=url)) as connected:
        yield connected


def worker(url: str, concurrency: int) -> list[str]:
    """Argv of one worker process running ``concurrency`` jobs at once."""
    return [sys.executable, "-c", WORKER_MAIN, url, str(concurrency)]


async def setup(url: str) -> None:
    """Apply procrastinate's schema to the empty database at ``url``."""
    with _connected(url) as connected:
        async with connected.open_async():
            await connected.schema_manager.apply_schema_async()


async def _succeeded(connected: procrastinate.App, queue: str) -> int:
    """How many of ``queue``'s jobs succeeded; raises if any ended otherwise."""
    rows = list(await connected.job_manager.list_queues_async(queue=queue))
    if not rows:
        return 0
    (row,) = rows
    failed = {status: row[status] for status in FAILED if row[status]}
    if failed:
        raise RuntimeError(f"procrastinate jobs of a no-op task did not succeed: {failed}")
    return int(row["succeeded"])


async def _until_all_succeeded(connected: procrastinate.App, queue: str, jobs: int, start: float) -> None:
    """Look at ``queue`` until its ``jobs`` jobs have succeeded: no notification says that a job ended."""
    while True:
        done = await _succeeded(connected, queue)
        if done >= jobs:
            return
        # Half the time the rest should take at the rate so far: few counts while many jobs remain (each one
        # reads the whole queue), and a last look soon after the last job ends.
        wait = (jobs - done) * (perf_counter() - start) / done / 2 if done else POLL_MAX
        await anyio.sleep(min(max(wait, POLL_MIN), POLL_MAX))


async def produce(url: str, jobs: int, submitters: int) -> Timing:
    """Defer ``jobs`` no-op jobs from ``submitters`` submitters; wait until every one has succeeded."""
    queue = f"bench_{uuid.uuid4().hex}"
    with _connected(url) as connected:
        async with connected.open_async():
            deferrer = noop.configure(queue=queue)
            start = perf_counter()
            await submit_all(deferrer.defer_async, jobs, submitters)
            submitted = perf_counter() - start
            await _until_all_succeeded(connected, queue, jobs, start)
            seconds = perf_counter() - start
    return Timing(seconds=seconds, submitted=submitted)


def run_worker(url: str, concurrency: str) -> None:
    """Run a worker on ``url`` with ``concurrency`` (a number) jobs at once, until SIGTERM or SIGINT."""

    async def work() -> None:
        with _connected(url) as connected:
            async with connected.open_async():
                await connected.run_worker_async(concurrency=int(concurrency))

    anyio.run(work)


SYSTEM = System(
    name="procrastinate", engine="postgres", worker=worker, setup=setup, produce=produce, module="procrastinate"
)
