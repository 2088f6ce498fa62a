"""Cost of the built-in metrics collector per task, against a no-op collector in the same run.

Run: python benchmarks/collector_cost.py [N] [ROUNDS]

Two measures, each the median of ROUNDS rounds:
- direct: ns per task of record_arrival + record_completion, minus the same calls on a no-op collector;
- through the manager: ns per task of submit -> gather with the default collector, minus with a no-op one.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import sys
import time

from tasker_async import AsyncManager, Config, DefaultCollector, TaskLifecycleTimestamps, TaskMetrics


class NoopCollector:
    def record_arrival(self) -> None:
        pass

    def record_completion(self, stamps: TaskLifecycleTimestamps) -> None:
        pass

    def record_failure(self, stamps: TaskLifecycleTimestamps) -> None:
        pass

    def record_retry(self) -> None:
        pass

    def metrics(self) -> TaskMetrics:
        return TaskMetrics()


def direct(collector: DefaultCollector | NoopCollector, n: int) -> float:
    now = time.monotonic()
    stamps = [TaskLifecycleTimestamps(now, now + (i % 97) * 1e-5, now + (i % 89) * 1e-4) for i in range(n)]
    start = time.perf_counter()
    for s in stamps:
        collector.record_arrival()
        collector.record_completion(s)
    return (time.perf_counter() - start) / n * 1e9


async def task(resource: int) -> int:
    return resource + 1


async def through_manager(collector: DefaultCollector | NoopCollector, n: int) -> float:
    ids = itertools.count()
    config = Config(on_create=lambda: next(ids), worker_count=8, resource_pool_size=0, collector=collector)
    async with AsyncManager(config) as manager:
        start = time.perf_counter()
        await asyncio.gather(*[manager.submit_nowait(task) for _ in range(n)])
        return (time.perf_counter() - start) / n * 1e9


def main(n: int, rounds: int) -> None:
    direct_costs = []
    manager_costs = []
    for _ in range(rounds):
        direct_costs.append(direct(DefaultCollector(), n) - direct(NoopCollector(), n))
        default = asyncio.run(through_manager(DefaultCollector(), n))
        noop = asyncio.run(through_manager(NoopCollector(), n))
        manager_costs.append(default - noop)
    print(f"N={n}, {rounds} rounds, Python {sys.version.split()[0]}")
    print(
        f"direct:          {statistics.median(direct_costs):6.0f} ns/task "
        f"(min {min(direct_costs):.0f}, max {max(direct_costs):.0f})"
    )
    print(
        f"through manager: {statistics.median(manager_costs):6.0f} ns/task "
        f"(min {min(manager_costs):.0f}, max {max(manager_costs):.0f})"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000, int(sys.argv[2]) if len(sys.argv) > 2 else 7)
