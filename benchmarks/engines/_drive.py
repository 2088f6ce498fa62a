"""The producer's load, the same for every system: concurrent submitters, then as many concurrent waiters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TypeVar

import anyio

from ._system import Timing

__all__ = ("drive",)

H = TypeVar("H")


async def drive(
    submit: Callable[[], Awaitable[H]], wait: Callable[[H], Awaitable[object]], jobs: int, submitters: int
) -> Timing:
    """Submit ``jobs`` jobs, then wait for each one's result; time both from the first submission.

    ``submitters`` concurrent tasks each take the next job and ``submit()`` it until every job is
    submitted; then as many concurrent tasks each take the next handle, in submission order, and
    ``wait(handle)`` for its result. The clock starts at the first submission and stops at the last
    result; ``Timing.submitted`` is when the last submission returned.
    """
    slots: list[H | None] = [None] * jobs
    indices = iter(range(jobs))

    async def submitter() -> None:
        for index in indices:  # shared: each submitter takes the next job
            slots[index] = await submit()

    async def waiter() -> None:
        for handle in pending:  # shared likewise, in submission order
            await wait(handle)

    tasks = max(1, min(submitters, jobs))
    start = perf_counter()
    async with anyio.create_task_group() as group:
        for _ in range(tasks):
            group.start_soon(submitter)
    submitted = perf_counter() - start
    handles = [slot for slot in slots if slot is not None]
    if len(handles) != jobs:
        raise RuntimeError(f"{jobs - len(handles)} of {jobs} submissions returned no handle")
    pending = iter(handles)
    async with anyio.create_task_group() as group:
        for _ in range(tasks):
            group.start_soon(waiter)
    return Timing(seconds=perf_counter() - start, submitted=submitted)
