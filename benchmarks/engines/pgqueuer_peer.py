"""pgqueuer on PostgreSQL: the same no-op entrypoint, enqueued one job per call, run by one worker process.

The worker process calls ``run_worker(URL, CONCURRENCY)`` of this module (through ``python -c``):
``pgqueuer.run``, which runs a factory the way ``pgq run`` does, with ``pgq run``'s defaults (batches of
10, LISTEN/NOTIFY wake-ups). (``pgq run`` itself fails here while setting up its logging with typer
0.29.) The factory ``create`` builds a ``PgQueuer`` on one asyncpg connection (``AsyncpgDriver``) with the
no-op entrypoint registered with ``concurrency_limit=CONCURRENCY``. SIGTERM stops it gracefully.

The producer enqueues each job with ``Queries.enqueue`` (one call per job, from concurrent submitters)
over an asyncpg pool of ``POOL`` connections plus one for listening, and waits the way pgqueuer documents
for completion tracking: a ``CompletionWatcher`` on that pool, one ``wait_for(job_id)`` future per job
registered as its enqueue returns. The watcher listens to pgqueuer's table-change notifications and, at
most once per 50 ms window (its default debounce), reads the log's latest status of every job still
awaited in one query, with its 5 s poll as a safety net. Every job must end ``successful``.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from time import perf_counter

import asyncpg
import pgqueuer
from pgqueuer.core.completion import CompletionWatcher
from pgqueuer.domain.types import JOB_STATUS

from benchmarks.engines._drive import submit_all
from benchmarks.engines._system import System, Timing

__all__ = ("SYSTEM", "create", "run_worker")

WORKER_MAIN = "import sys; from benchmarks.engines.pgqueuer_peer import run_worker; run_worker(*sys.argv[1:])"
ENTRYPOINT = "bench.noop"
POOL = 4  # the producer's connections, as tasker_async's client has by default (the listener's comes on top)


def create(args: list[str]) -> AbstractAsyncContextManager[pgqueuer.PgQueuer]:
    """A factory as ``pgq run`` takes (its arguments after ``--``): ``args`` are the URL and the concurrency."""
    url, concurrency = args

    @asynccontextmanager
    async def connected() -> AsyncIterator[pgqueuer.PgQueuer]:
        connection = await asyncpg.connect(url)
        try:
            pgq = pgqueuer.PgQueuer(pgqueuer.AsyncpgDriver(connection))

            @pgq.entrypoint(ENTRYPOINT, concurrency_limit=int(concurrency))
            async def noop(job: pgqueuer.Job) -> None:
                """As little as a job can do."""

            yield pgq
        finally:
            await connection.close()

    return connected()


def run_worker(url: str, concurrency: str) -> None:
    """Run a worker on ``url`` with ``concurrency`` (a number) jobs at once, until SIGTERM or SIGINT."""
    asyncio.run(pgqueuer.run(functools.partial(create, [url, concurrency])))


def worker(url: str, concurrency: int) -> list[str]:
    """Argv of one worker process running ``concurrency`` jobs at once."""
    return [sys.executable, "-c", WORKER_MAIN, url, str(concurrency)]


async def setup(url: str) -> None:
    """Install pgqueuer's schema (tables, trigger, functions; durable tables) in the empty database at ``url``."""
    connection = await asyncpg.connect(url)
    try:
        await pgqueuer.Queries(pgqueuer.AsyncpgDriver(connection)).install()
    finally:
        await connection.close()


async def produce(url: str, jobs: int, submitters: int) -> Timing:
    """Enqueue ``jobs`` no-op jobs from ``submitters`` submitters; wait until every one has succeeded."""
    async with asyncpg.create_pool(url, min_size=POOL + 1, max_size=POOL + 1) as pool:
        driver = pgqueuer.AsyncpgPoolDriver(pool)
        queries = pgqueuer.Queries(driver)
        # The driver gives the listener's connection back to the pool on its way out.
        async with driver, CompletionWatcher(driver, queries=queries) as watcher:

            async def submit() -> asyncio.Future[JOB_STATUS]:
                (job_id,) = await queries.enqueue(ENTRYPOINT, None)
                return watcher.wait_for(job_id)

            start = perf_counter()
            waiting = await submit_all(submit, jobs, submitters)
            submitted = perf_counter() - start
            statuses = await asyncio.gather(*waiting)
            seconds = perf_counter() - start
    failed = {status for status in statuses if status != "successful"}
    if failed:
        raise RuntimeError(f"pgqueuer jobs of a no-op entrypoint did not succeed: {sorted(failed)}")
    return Timing(seconds=seconds, submitted=submitted)


SYSTEM = System(name="pgqueuer", engine="postgres", worker=worker, setup=setup, produce=produce, module="pgqueuer")
