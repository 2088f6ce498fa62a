"""Throughput of submit -> gather against a hand-written two-queue pool, in one process.

Run: python benchmarks/throughput.py [N] [ROUNDS]
Prints tasks/s for both, and their ratio per round (medians at the end).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from tasker_async import AsyncManager, Config

WORKERS = 8


async def task(resource: int) -> int:
    return resource + 1


async def floor_pool(n: int) -> float:
    """The reference: two asyncio.Queues, futures, workers preferring the priority queue."""
    loop = asyncio.get_running_loop()
    priority: asyncio.Queue[Any] = asyncio.Queue()
    main: asyncio.Queue[Any] = asyncio.Queue()

    async def worker(resource: int) -> None:
        while True:
            if not priority.empty():
                fn, fut = priority.get_nowait()
            else:
                fn, fut = await main.get()
            try:
                result = await fn(resource)
            except Exception as exc:
                if not fut.done():
                    fut.set_exception(exc)
            else:
                if not fut.done():
                    fut.set_result(result)

    workers = [asyncio.ensure_future(worker(i)) for i in range(WORKERS)]
    start = time.perf_counter()
    futures = []
    for _ in range(n):
        fut = loop.create_future()
        main.put_nowait((task, fut))
        futures.append(fut)
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - start
    for w in workers:
        w.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
    return n / elapsed


async def tasker_pool(n: int) -> float:
    counter = iter(range(10**9))
    async with AsyncManager(Config(on_create=lambda: next(counter), worker_count=WORKERS, resource_pool_size=0)) as m:
        start = time.perf_counter()
        handles = [m.submit_nowait(task) for _ in range(n)]
        await asyncio.gather(*handles)
        elapsed = time.perf_counter() - start
    return n / elapsed


async def main(n: int, rounds: int) -> None:
    ratios = []
    floors = []
    ours = []
    for _ in range(rounds):
        f = await floor_pool(n)
        t = await tasker_pool(n)
        floors.append(f)
        ours.append(t)
        ratios.append(t / f)
        print(f"floor {f:10.0f}/s  tasker_async {t:10.0f}/s  ratio {t / f:.2f}")
    print(
        f"median: floor {statistics.median(floors):.0f}/s tasker_async {statistics.median(ours):.0f}/s "
        f"ratio {statistics.median(ratios):.2f}"
    )


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    asyncio.run(main(n, rounds))
