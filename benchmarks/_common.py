"""What every benchmark shares: the trivial task, the worker count, and how a pool is driven."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

WORKERS = 8
# The resource handed to the task by the runners that have no resources of their own.
RESOURCE = 0

TaskFn = Callable[[int], Awaitable[Any]]


async def task(resource: int) -> int:
    """The task every candidate runs: as little work as a task can do."""
    return resource + 1


@dataclass(frozen=True, slots=True)
class Pool:
    """The two ways the benchmarks drive a worker pool.

    ``submit(fn)`` queues ``fn`` and returns a future at once; ``call(fn)``
    queues it and waits for its result. Both are the pool's own bound methods,
    so a benchmark pays no wrapper frame on either.
    """

    submit: Callable[[TaskFn], asyncio.Future[Any]]
    call: Callable[[TaskFn], Awaitable[Any]]


# Opens a started pool (workers parked, nothing queued) and closes it afterwards.
OpenPool = Callable[[], AbstractAsyncContextManager[Pool]]
