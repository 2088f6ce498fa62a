"""The PostgreSQL peers of ``python -m benchmarks.engines``: schema, worker process and producer, on a real server."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from pathlib import Path

import anyio
import asyncpg
import pytest
from anyio.abc import Process

from benchmarks.engines import pgqueuer_peer, procrastinate_peer
from benchmarks.engines._system import System, Timing
from tests.durable.servers.postgres_server import PostgresServer, running

ROOT = Path(__file__).resolve().parent.parent
SYSTEMS = (procrastinate_peer.SYSTEM, pgqueuer_peer.SYSTEM)
STOP_LIMIT = 20.0  # seconds a worker may take to stop after SIGTERM before it is killed
_databases = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with running() as server:
        yield server


async def fresh_database(dsn: str) -> str:
    """The URL of a new, empty database on the server of ``dsn``."""
    name = f"bench_{next(_databases)}"
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f"CREATE DATABASE {name}")
    finally:
        await connection.close()
    return f"{dsn.rsplit('/', 1)[0]}/{name}"


async def stop(process: Process) -> None:
    """SIGTERM, then a kill if the worker is still there after ``STOP_LIMIT`` seconds."""
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            with anyio.move_on_after(STOP_LIMIT):
                await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.aclose()


async def produce_while_running(system: System, url: str, process: Process, jobs: int) -> Timing:
    """``system.produce`` of ``jobs`` jobs from 4 submitters; fails at once if the worker exits meanwhile."""
    timing: Timing | None = None

    async def watch() -> None:
        await process.wait()
        raise AssertionError(f"the {system.name} worker exited with {process.returncode} while jobs were due")

    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        timing = await system.produce(url, jobs, 4)
        group.cancel_scope.cancel()
    assert timing is not None
    return timing


@pytest.mark.timeout(120)
@pytest.mark.parametrize("system", SYSTEMS, ids=[system.name for system in SYSTEMS])
async def test_the_worker_process_runs_every_job_the_producer_submits(
    server: PostgresServer, system: System, tmp_path: Path
) -> None:
    assert system.engine == "postgres"
    url = await fresh_database(server.dsn)
    await system.setup(url)
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        process = await anyio.open_process(system.worker(url, 2), cwd=ROOT, stdout=output, stderr=output)
    try:
        with anyio.fail_after(60):
            # As the harness does: a few jobs to warm up, then the measured ones, on the same database.
            warm_up = await produce_while_running(system, url, process, 3)
            timing = await produce_while_running(system, url, process, 20)
    finally:
        await stop(process)
    assert 0 < warm_up.submitted <= warm_up.seconds
    assert 0 < timing.submitted <= timing.seconds
    assert process.returncode == 0, f"the worker did not stop cleanly on SIGTERM:\n{log.read_text()[-3000:]}"
