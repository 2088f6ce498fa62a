"""Cancelling many queued tasks in random order, against queueing them, in the same run.

Run: python -m benchmarks.cancel_storm [N] [ROUNDS]

Each round queues N tasks behind a held worker, then cancels them all in a
random order. The ratio (cancel time / queue time) stays flat as N grows when
each cancellation is O(1); a scan per cancellation makes it grow with N.
Prints the median ratio of ROUNDS rounds for N/10 and N, and PASS when the
larger size's ratio is within 3x of the smaller's.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time

from tasker_async import AsyncManager, Config


async def one_round(n: int, seed: int) -> float:
    gate = asyncio.Event()

    async def hold(resource: object) -> None:
        await gate.wait()

    async def noop(resource: object) -> None:
        pass

    async with AsyncManager(Config(on_create=object, worker_count=1, max_worker_count=1)) as manager:
        held = await manager.submit(hold)
        await asyncio.sleep(0)
        start = time.perf_counter()
        handles = [manager.submit_nowait(noop) for _ in range(n)]
        queued = time.perf_counter() - start
        random.Random(seed).shuffle(handles)
        start = time.perf_counter()
        for handle in handles:
            handle.cancel()
        cancelled = time.perf_counter() - start
        gate.set()
        await held
    return cancelled / queued


def measure(n: int, rounds: int) -> float:
    return statistics.median(asyncio.run(one_round(n, seed)) for seed in range(rounds))


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 50_000
    rounds = int(argv[1]) if len(argv) > 1 else 5
    small, large = measure(max(n // 10, 1), rounds), measure(n, rounds)
    print("| N | cancel time / queue time (median) |")
    print("|---|---|")
    print(f"| {max(n // 10, 1)} | {small:.2f} |")
    print(f"| {n} | {large:.2f} |")
    verdict = "PASS" if large <= 3 * small else "FAIL"
    print(f"cancel cost per task flat in N (ratio at N within 3x of N/10): {large / small:.2f}x {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
