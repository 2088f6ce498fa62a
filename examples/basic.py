"""Basic usage: two workers, each holding a CalculatorResource, run two tasks at once.

The Python take on the Go library's ``examples/basic``: the manager lives in an
``async with`` block (leaving it stops the manager gracefully), the two tasks
are queued concurrently with ``asyncio.gather``, and each caller awaits its own
result instead of sleeping "long enough".

Run: python examples/basic.py [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tasker_async import AsyncManager, Config

_ids = itertools.count(1)


@dataclass
class CalculatorResource:
    """A stand-in for an expensive resource, say a connection to a math service."""

    id: int


def create_calculator() -> CalculatorResource:
    calculator = CalculatorResource(next(_ids))
    print(f"INFO: Creating CalculatorResource {calculator.id}")
    return calculator


def destroy_calculator(calculator: CalculatorResource) -> None:
    print(f"INFO: Destroying CalculatorResource {calculator.id}")


async def add(calculator: CalculatorResource, a: int, b: int) -> int:
    await asyncio.sleep(0.05)  # simulate some work
    print(f"Worker {calculator.id} processing: {a} + {b}")
    return a + b


async def subtract(calculator: CalculatorResource, a: int, b: int) -> int:
    await asyncio.sleep(0.07)  # simulate some work
    print(f"Worker {calculator.id} processing: {a} - {b}")
    return a - b


async def queue_and_report(
    manager: AsyncManager[CalculatorResource],
    label: str,
    fn: Callable[[CalculatorResource, int, int], Awaitable[int]],
    a: int,
    b: int,
) -> None:
    """Queue ``fn(resource, a, b)``, wait for its result and print it with the time it took."""
    started = time.perf_counter()
    try:
        result = await manager.queue_task(fn, a, b)
    except Exception as exc:
        print(f"{label} failed: {exc!r}")
    else:
        took_ms = (time.perf_counter() - started) * 1000
        print(f"{label} result: {result} (took {took_ms:.0f} ms)")


async def main() -> None:
    print("--- Basic usage: simple calculator ---")
    config = Config(
        on_create=create_calculator,
        on_destroy=destroy_calculator,
        worker_count=2,  # two base workers
        max_worker_count=2,  # no burst workers, as in the Go example
        # No health check: every error a task raises is just that task's error.
    )
    async with AsyncManager(config) as manager:
        print("Queuing an addition task and a subtraction task...")
        await asyncio.gather(
            queue_and_report(manager, "Task 1 (addition)", add, 10, 25),
            queue_and_report(manager, "Task 2 (subtraction)", subtract, 100, 40),
        )

        stats = manager.stats()
        print("--- Current stats ---")
        print(f"Active workers: {stats.active_workers}")
        print(f"Queued tasks: {stats.queued_tasks}")
        print(f"Available resources: {stats.available_resources}")
        print("---------------------")
    # Leaving the block stopped the manager: every resource is destroyed by now.
    print("Basic usage example finished.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="seed the random module (this example draws nothing)")
    args = parser.parse_args()
    random.seed(args.seed)
    asyncio.run(main())
