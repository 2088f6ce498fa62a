"""Bytes held per queued task: what N submitted-but-not-started tasks cost a pool.

Every worker is first held behind a gate, so what is submitted next can only
wait in the queue. tracemalloc then counts the bytes still allocated after N
submissions: the queue entries, the futures, whatever else the pool keeps per
task, and the caller's list of futures (about 8 bytes a task, the same for
every pool).
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from ._common import WORKERS, OpenPool, task


class Gate:
    """Holds each worker that runs ``hold`` until ``open()``; ``all_held`` is set once every worker is held."""

    def __init__(self, workers: int) -> None:
        self._free = workers
        self.all_held = asyncio.Event()
        self._opened = asyncio.Event()

    async def hold(self, resource: int) -> None:
        self._free -= 1
        if not self._free:
            self.all_held.set()
        await self._opened.wait()

    def open(self) -> None:
        self._opened.set()


async def bytes_per_queued_task(open_pool: OpenPool, n: int) -> float:
    """Queue ``n`` tasks behind busy workers and return the bytes they hold, per task."""
    async with open_pool() as pool:
        gate = Gate(WORKERS)
        holding = [pool.submit(gate.hold) for _ in range(WORKERS)]
        await gate.all_held.wait()
        submit = pool.submit
        gc.collect()
        tracemalloc.start()
        try:
            # No await from here to the reading: nothing else runs meanwhile.
            before = tracemalloc.get_traced_memory()[0]
            queued = [submit(task) for _ in range(n)]
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        gate.open()
        await asyncio.gather(*holding, *queued)
    return held / n
