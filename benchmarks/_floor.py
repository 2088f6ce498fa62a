"""The floor: the smallest correct pool a user would write by hand, the reference for every ratio.

Two ``asyncio.Queue``s (priority and main) of ``(function, future)`` pairs and
8 worker tasks, each holding its resource; a worker takes from the priority
queue when it holds something, and otherwise waits on the main one. No
retries, health checks, timeouts or metrics: a pool that offers those cannot
be expected to go below this.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ._common import WORKERS, Pool, TaskFn

Job = tuple[TaskFn, "asyncio.Future[Any]"]


class FloorPool:
    """Two queues and the workers that drain them; made inside a running loop."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.priority: asyncio.Queue[Job] = asyncio.Queue()
        self.main: asyncio.Queue[Job] = asyncio.Queue()

    def submit(self, fn: TaskFn, priority: bool = False) -> asyncio.Future[Any]:
        future = self._loop.create_future()
        (self.priority if priority else self.main).put_nowait((fn, future))
        return future

    async def call(self, fn: TaskFn) -> Any:
        return await self.submit(fn)

    async def work(self, resource: int) -> None:
        priority = self.priority
        main = self.main
        while True:
            if not priority.empty():
                fn, future = priority.get_nowait()
            else:
                fn, future = await main.get()
            try:
                result = await fn(resource)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)


@asynccontextmanager
async def open_floor() -> AsyncIterator[Pool]:
    """Start a floor pool of ``WORKERS`` workers; cancel them on the way out."""
    floor = FloorPool()
    workers = [asyncio.create_task(floor.work(resource)) for resource in range(WORKERS)]
    await asyncio.sleep(0)  # every worker parks on the main queue before anything is measured
    try:
        yield Pool(submit=floor.submit, call=floor.call)
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
