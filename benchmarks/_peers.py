"""The other ways to run N tasks 8 at a time, each as its documentation shows it.

Each function imports its library when called (aiojobs and aiometer come from
the ``bench`` extra), times from the first submission until every result is
in, and returns seconds; garbage is collected just before the clock starts.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
from time import perf_counter

import anyio

from ._common import RESOURCE, WORKERS, task


def importable(module: str) -> bool:
    """Whether ``module`` imports; a peer whose library does not is skipped."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


async def aiojobs_scheduler(n: int) -> float:
    """``Scheduler(limit=8)``: spawn every job, then gather ``job.wait()``, the public way to get results."""
    import aiojobs

    # pending_limit=0 queues without bound, as every other candidate does; the
    # default (10,000) would make spawn() wait, measuring back-pressure instead.
    async with aiojobs.Scheduler(limit=WORKERS, pending_limit=0) as scheduler:
        gc.collect()
        start = perf_counter()
        jobs = [await scheduler.spawn(task(RESOURCE)) for _ in range(n)]
        await asyncio.gather(*[job.wait() for job in jobs])
        return perf_counter() - start


async def aiometer_run_all(n: int) -> float:
    """``aiometer.run_all(max_at_once=8)`` over ``n`` partials."""
    import aiometer

    jobs = [functools.partial(task, RESOURCE)] * n
    gc.collect()
    start = perf_counter()
    await aiometer.run_all(jobs, max_at_once=WORKERS)
    return perf_counter() - start


async def anyio_task_group(n: int) -> float:
    """An anyio task group starting ``n`` tasks, each entering a ``CapacityLimiter(8)``."""
    limiter = anyio.CapacityLimiter(WORKERS)
    results = [0] * n

    async def one(index: int) -> None:
        async with limiter:
            results[index] = await task(RESOURCE)

    gc.collect()
    start = perf_counter()
    async with anyio.create_task_group() as tg:
        for index in range(n):
            tg.start_soon(one, index)
    return perf_counter() - start


async def gather_semaphore(n: int) -> float:
    """``asyncio.gather`` over ``n`` coroutines, each entering an ``asyncio.Semaphore(8)``."""
    semaphore = asyncio.Semaphore(WORKERS)

    async def one() -> int:
        async with semaphore:
            return await task(RESOURCE)

    gc.collect()
    start = perf_counter()
    await asyncio.gather(*[one() for _ in range(n)])
    return perf_counter() - start
