"""The floor of a durable queue on Redis: the least a job submitted, run and answered can cost this machine.

A queue written by hand for the latency runs (``--latency``), no library: the producer ``LPUSH``es a job's
id (one write), a worker process moves it onto its processing list with ``BLMOVE`` (one write: the job is
held, and a dead worker's jobs are still there), then removes it and ``PUBLISH``es the id in one ``MULTI``
(one write); the producer, subscribed, wakes the job's waiter. Three writes a job, each synced under
``appendfsync always``, as tasker_async's submit, claim and outcome are; three round trips, two of them
the worker's. No lease, no key, no retry, no result kept, no count: what is left is the machine, the
server and redis-py. Its latency at the same offered load, in the same run, is what any durable queue on
this machine could reach; tasker_async's row sits next to it.

The worker: ``python -m benchmarks.engines.floor URL LOOPS`` (each loop a connection of its own, as
``BLMOVE`` holds it).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

import anyio
from redis.asyncio import Redis

__all__ = ("LOOPS", "floor_jobs", "worker")

LOOPS = 8  # the worker's concurrent loops: at 500 jobs/s each takes a job every 16 ms
_QUEUE, _PROCESSING, _DONE = "floor:queue", "floor:processing", "floor:done"


def worker(url: str) -> list[str]:
    """Argv of the floor's worker process."""
    return [sys.executable, "-m", "benchmarks.engines.floor", url, str(LOOPS)]


async def _serve(url: str, loops: int) -> None:
    client = Redis.from_url(url)

    async def loop() -> None:
        while True:
            job = await client.blmove(_QUEUE, _PROCESSING, 1, "RIGHT", "LEFT")
            if job is None:
                continue
            async with client.pipeline(transaction=True) as pipe:
                pipe.lrem(_PROCESSING, 1, job if isinstance(job, str) else job.decode())
                pipe.publish(_DONE, job)
                await pipe.execute()

    async with anyio.create_task_group() as group:
        for _ in range(loops):
            group.start_soon(loop)


async def floor_jobs(url: str, use: Callable[[Callable[[int], Awaitable[None]]], Awaitable[None]]) -> None:
    """Run ``use(job)``, where ``await job(index)`` submits job ``index`` and returns once it was answered."""
    client = Redis.from_url(url)
    pubsub = client.pubsub()
    waiters: dict[bytes, anyio.Event] = {}

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "message":
                event = waiters.pop(message["data"], None)
                if event is not None:
                    event.set()

    async def job(index: int) -> None:
        key = b"%d" % index
        done = waiters[key] = anyio.Event()  # registered before it is queued: its answer cannot come first
        await client.lpush(_QUEUE, key)
        await done.wait()

    try:
        await pubsub.subscribe(_DONE)
        async with anyio.create_task_group() as group:
            group.start_soon(listen)
            await use(job)
            group.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            await client.aclose()


if __name__ == "__main__":
    anyio.run(_serve, sys.argv[1], int(sys.argv[2]))
