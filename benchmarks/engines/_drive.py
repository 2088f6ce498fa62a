"""The producer's load, the same for every system: concurrent submitters, then as many concurrent waiters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from time import perf_counter
from typing import TypeVar

import anyio

from ._system import Timing

__all__ = ("drive", "submit_all")

H = TypeVar("H")
T = TypeVar("T")


async def drive(
    submit: Callable[[], Awaitable[H]], wait: Callable[[H], Awaitable[object]], jobs: int, submitters: int
) -> Timing:
    """Submit ``jobs`` jobs, then wait for each one's result; time both from the first submission.

    ``submitters`` concurrent tasks each take the next job and ``submit()`` it until every job is
    submitted; then as many concurrent tasks each take the next handle, in submission order, and
    ``wait(handle)`` for its result. The clock starts at the first submission and stops at the last
    result; ``Timing.submitted`` is when the last submission returned.
    """
    start = perf_counter()
    handles = await submit_all(submit, jobs, submitters)
    submitted = perf_counter() - start
    await _each(wait, handles, submitters)
    return Timing(seconds=perf_counter() - start, submitted=submitted)


async def submit_all(submit: Callable[[], Awaitable[H]], jobs: int, submitters: int) -> list[H]:
    """``jobs`` calls of ``submit`` from ``submitters`` concurrent submitters, each taking the next job; the
    handles, in submission order."""
    slots: list[H | None] = [None] * jobs

    async def one(index: int) -> None:
        slots[index] = await submit()

    await _each(one, range(jobs), submitters)
    handles = [slot for slot in slots if slot is not None]
    if len(handles) != jobs:
        raise RuntimeError(f"{jobs - len(handles)} of {jobs} submissions returned no handle")
    return handles


async def _each(call: Callable[[T], Awaitable[object]], items: Iterable[T], tasks: int) -> None:
    """``call(item)`` for each of ``items``, from ``tasks`` concurrent tasks, each taking the next item."""
    shared = iter(items)

    async def worker() -> None:
        for item in shared:  # shared: each task takes the next item
            await call(item)

    async with anyio.create_task_group() as group:
        for _ in range(max(1, tasks)):
            group.start_soon(worker)
