"""Submit -> result latency under a steady, open-loop arrival rate.

Task ``i`` is due at ``start + i / rate``, an absolute time: the submitter
submits every task now due and yields, so a pool that falls behind delays
every later arrival instead of slowing the offered rate (a closed loop would
hide exactly the queueing we want to see). A task's latency is the moment its
result is delivered (its future's done callbacks, which is when an awaiting
caller would resume) minus its due time.

Loop timers are about a millisecond coarse (the default loop rounds its
epoll timeout up to 1 ms), far coarser than the 20 us between arrivals at
50k/s: sleeping on a timer would submit in bursts and measure the submitter's
own wait. So the submitter only yields to the loop while the next arrival is
near, and sleeps on a timer only when it is farther away than ``SPIN``.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import math
from collections.abc import Sequence
from dataclasses import dataclass
from time import monotonic

from ._common import OpenPool, task

# Time between opening the pool and the first arrival, so start-up is not measured.
LEAD = 0.01
# Below this wait the submitter yields (sleep(0)) instead of sleeping on a timer.
SPIN = 0.002


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Percentiles of one run, in seconds."""

    p50: float
    p99: float


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of sorted, non-empty ``ordered``."""
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


async def open_loop_latency(open_pool: OpenPool, rate: float, count: int) -> Percentiles:
    """Offer ``count`` tasks at ``rate`` per second and return their latency percentiles."""
    async with open_pool() as pool:
        submit = pool.submit
        latencies = [0.0] * count
        all_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        remaining = count
        gc.collect()
        start = monotonic() + LEAD

        def finished(index: int, _future: asyncio.Future[object]) -> None:
            nonlocal remaining
            latencies[index] = monotonic() - (start + index / rate)
            remaining -= 1
            if not remaining:
                all_done.set_result(None)

        sent = 0
        while sent < count:
            due = min(count, math.floor((monotonic() - start) * rate) + 1)
            while sent < due:
                submit(task).add_done_callback(functools.partial(finished, sent))
                sent += 1
            if sent < count:
                wait = start + sent / rate - monotonic()
                await asyncio.sleep(wait - SPIN if wait > SPIN else 0)
        await all_done
    latencies.sort()
    return Percentiles(p50=percentile(latencies, 0.50), p99=percentile(latencies, 0.99))
