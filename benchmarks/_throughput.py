"""Throughput of a pool, driven the two ways a user drives one.

Each function opens a fresh pool (not timed), collects garbage, then times
from the first submission until every result is in, and returns seconds.
"""

from __future__ import annotations

import asyncio
import gc
from time import perf_counter

from ._common import OpenPool, task


async def submit_then_gather(open_pool: OpenPool, n: int) -> float:
    """Submit ``n`` tasks, keeping their futures, then gather them all."""
    async with open_pool() as pool:
        submit = pool.submit
        gc.collect()
        start = perf_counter()
        await asyncio.gather(*[submit(task) for _ in range(n)])
        return perf_counter() - start


async def per_caller(open_pool: OpenPool, n: int) -> float:
    """Run ``n`` callers under ``asyncio.gather``, each awaiting its own ``call``."""
    async with open_pool() as pool:
        call = pool.call
        gc.collect()
        start = perf_counter()
        await asyncio.gather(*[call(task) for _ in range(n)])
        return perf_counter() - start
