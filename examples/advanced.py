"""Advanced usage: burst workers rise with a backlog of heavy tasks and fall once it is gone.

The Python take on the Go library's ``examples/advanced``. Two base workers
each hold a HeavyComputeResource; 20 heavy tasks (100-400 ms each, 10% of
them failing with a healthy error) arrive at once. With
``burst_task_threshold=5`` and ``burst_worker_count=2`` the supervisor adds
two burst workers for every five tasks waiting, up to
``max_worker_count=6``, and retires them once the queue has drained. A
high-priority task arrives mid-burst and overtakes the queue. Stats are
printed every 250 ms; the manager then stops gracefully and prints its final
stats.

Run: python examples/advanced.py [--seed N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
from dataclasses import dataclass

from tasker_async import AsyncManager, Config, LifecycleEvent, ScalingEvent


@dataclass
class HeavyComputeResource:
    """A stand-in for an allocated CPU/GPU slot."""

    id: int


class ComputationError(Exception):
    """A task's computation failed; the resource is fine."""


async def main(seed: int | None) -> None:
    rng = random.Random(seed)
    ids = random.Random(rng.random())
    durations = [0.1 + rng.random() * 0.3 for _ in range(20)]
    failing = {i for i in range(20) if rng.randrange(10) == 0}

    def create() -> HeavyComputeResource:
        resource = HeavyComputeResource(ids.randrange(1000))
        print(f"INFO: Creating HeavyComputeResource {resource.id}")
        return resource

    def destroy(resource: HeavyComputeResource) -> None:
        print(f"INFO: Destroying HeavyComputeResource {resource.id}")

    scaled_up = asyncio.Event()
    all_retired = asyncio.Event()

    def on_event(event: LifecycleEvent) -> None:
        if isinstance(event, ScalingEvent):
            verb = "adds" if event.kind == "scale_up" else "retires"
            print(f"SCALING: the supervisor {verb} {event.count} burst worker(s) ({event.reason})")
            if event.kind == "scale_up":
                scaled_up.set()
            elif event.burst_workers == 0:
                all_retired.set()

    config = Config(
        on_create=create,
        on_destroy=destroy,
        worker_count=2,
        max_worker_count=6,
        burst_task_threshold=5,
        burst_worker_count=2,
        burst_interval=0.2,
        max_retries=0,
        resource_pool_size=0,
        hooks=[on_event],
    )
    print("\n--- Advanced usage: dynamic scaling (bursting) ---")
    completed = 0
    submitted = 0

    async def heavy(resource: HeavyComputeResource, task_id: int) -> str:
        print(f"Worker {resource.id} processing Task {task_id} for {durations[task_id] * 1000:.0f} ms")
        await asyncio.sleep(durations[task_id])
        if task_id in failing:
            raise ComputationError(f"computation_error_task_{task_id}")
        return f"Task {task_id} completed"

    async def urgent(resource: HeavyComputeResource) -> str:
        print(f"Worker {resource.id} processing HIGH PRIORITY urgent report!")
        await asyncio.sleep(0.05)
        return "Urgent report generated!"

    async def report(label: str, call: asyncio.Future[str]) -> None:
        nonlocal completed
        try:
            result = await call
        except ComputationError as exc:
            print(f"{label} failed: {exc}")
        else:
            print(f"{label} result: {result}")
            completed += 1

    manager = AsyncManager(config)
    await manager.start()

    async def monitor() -> None:
        while True:
            stats = manager.stats()
            print(
                f"Stats: Active={stats.active_workers} (Base={stats.base_workers}, Burst={stats.burst_workers}), "
                f"Queued={stats.queued_tasks + stats.priority_tasks} (Main={stats.queued_tasks}, "
                f"Prio={stats.priority_tasks}), AvailRes={stats.available_resources}, Comp={completed}/{submitted}"
            )
            await asyncio.sleep(0.25)

    print("\nAggressively queuing 20 heavy computation tasks...")
    print("\nMonitoring stats (watch for Burst)...")
    monitoring = asyncio.ensure_future(monitor())
    reports = []
    for task_id in range(20):
        submitted += 1
        reports.append(report(f"Task {task_id}", await manager.submit(heavy, task_id)))
    await scaled_up.wait()
    print("\nQueueing a high priority task during active bursting...")
    submitted += 1
    reports.append(report("Urgent task", await manager.submit(urgent, priority=True)))
    await asyncio.gather(*reports)

    print("\nAll tasks done; waiting for the burst workers to retire...")
    await all_retired.wait()
    monitoring.cancel()

    print("\nInitiating graceful shutdown...")
    await manager.stop()
    print("Task manager gracefully shut down.")

    stats = manager.stats()
    print("\n--- Final stats after shutdown ---")
    print(f"Active workers: {stats.active_workers}")
    print(f"Burst workers: {stats.burst_workers}")
    print(f"Burst workers added / retired: {stats.burst_workers_added} / {stats.burst_workers_retired}")
    print(f"Queued tasks: {stats.queued_tasks}")
    print(f"Priority tasks: {stats.priority_tasks}")
    print(f"Available resources: {stats.available_resources}")
    print(f"Tasks completed: {completed} / {submitted}")
    print("---------------------------------")
    print("Advanced usage example finished.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="make the random choices reproducible")
    asyncio.run(main(parser.parse_args().seed))
