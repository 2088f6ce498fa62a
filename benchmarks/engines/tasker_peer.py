"""tasker_async on any engine: the worker command line, and one ``Client`` as the producer.

The worker is ``python -m tasker_async worker benchmarks.engines.tasker_peer --store URL --concurrency N``:
this module is its worker module (``registry`` and ``config``). ``config`` is a manager of exactly N
workers (no burst workers above them, as every peer runs at most N jobs at once), everything else the
defaults. The producer opens one store with ``open_store(URL)``, one ``Client`` on it, submits the no-op
jobs from the concurrent submitters and awaits each ``job.result()`` (see ``_drive``).
"""

from __future__ import annotations

import sys

from tasker_async import Config
from tasker_async.durable import Client, Job, Registry, open_store

from ._drive import drive
from ._system import System, Timing

__all__ = ("SYSTEMS", "config", "noop", "registry", "worker_argv")

registry = Registry()
# The worker process's manager; ``--concurrency N`` sets both counts to N (it keeps their ratio).
config = Config(on_create=int, worker_count=1, max_worker_count=1, resource_pool_size=0)


@registry.task("bench.noop")
async def noop(resource: int) -> None:
    """As little as a job can do."""


def worker_argv(url: str, concurrency: int, module: str = "benchmarks.engines.tasker_peer") -> list[str]:
    """Argv of one worker process of ``module`` (its ``registry`` and ``config``) on ``url``."""
    return [sys.executable, "-m", "tasker_async", "worker", module, "--store", url, "--concurrency", str(concurrency)]


def worker(url: str, concurrency: int) -> list[str]:
    """Argv of one worker process running ``concurrency`` no-op jobs at once."""
    return worker_argv(url, concurrency)


async def setup(url: str) -> None:
    """Open the store once: it makes what it needs (tables, schema) on first use."""
    async with open_store(url):
        pass


async def produce(url: str, jobs: int, submitters: int) -> Timing:
    """``jobs`` no-op jobs through one ``Client``; every result awaited."""
    async with open_store(url) as store, Client(store) as client:

        async def submit() -> Job[None]:
            return await client.submit(noop)

        async def wait(job: Job[None]) -> None:
            await job.result()

        return await drive(submit, wait, jobs, submitters)


def _system(engine: str) -> System:
    name = "tasker_async"
    return System(name=name, engine=engine, worker=worker, setup=setup, produce=produce, module=name)


# One system per engine: the same code on each.
SYSTEMS = {engine: _system(engine) for engine in ("redis", "postgres")}
