"""The burst supervisor: every ``burst_interval``, snapshot, ask the policy, apply.

Applying is the only part that acts: new burst workers make their own
resources; a retiring worker is always one parked with nothing in hand,
marked ``retiring`` before its scope is cancelled, so even a worker woken in
the same instant leaves without taking a task (see ``_worker._serve``).
"""

from __future__ import annotations

import math
from collections import deque
from time import monotonic
from typing import TYPE_CHECKING, Any

import anyio

from ._events import ScalingEvent
from ._scaling import ScalingDecision, ScalingPolicy, ScalingSnapshot

if TYPE_CHECKING:
    from ._runtime import Runtime
    from ._worker import Worker

__all__ = ("RecentRates", "supervise")


class RecentRates:
    """Arrival and finish rates from running totals sampled over a sliding window."""

    def __init__(self, window: float) -> None:
        """Keep samples covering the last ``window`` seconds."""
        self.window = window
        self._samples: deque[tuple[float, int, int]] = deque()

    def sample(self, now: float, arrived: int, finished: int) -> tuple[float, float, int]:
        """Add a sample; return (arrivals/s, finishes/s, arrivals) over the window."""
        samples = self._samples
        samples.append((now, arrived, finished))
        # Keep one sample at or before the window's start, so the window is fully covered.
        while len(samples) > 2 and samples[1][0] <= now - self.window:
            samples.popleft()
        then, arrived_then, finished_then = samples[0]
        elapsed = now - then
        if elapsed <= 0:
            return 0.0, 0.0, 0
        arrivals = arrived - arrived_then
        return arrivals / elapsed, (finished - finished_then) / elapsed, arrivals


def snapshot(rt: Runtime[Any], now: float, rates: tuple[float, float, int], last_scale_up: float) -> ScalingSnapshot:
    """What the policy sees now."""
    idle_burst = tuple(
        now - worker.idle_since for worker in rt.workers if worker.burst and worker.parked and not worker.retiring
    )
    return ScalingSnapshot(
        now=now,
        queued=len(rt.queue),
        running=rt.running,
        active_workers=rt.active_workers,
        starting_workers=len(rt.workers) - rt.active_workers,
        base_workers=rt.config.worker_count,
        max_workers=rt.max_workers,
        burst_workers=rt.burst_workers,
        idle_burst=idle_burst,
        arrival_rate=rates[0],
        completion_rate=rates[1],
        arrivals_in_window=rates[2],
        last_scale_up=last_scale_up,
    )


async def supervise(rt: Runtime[Any], policy: ScalingPolicy, interval: float) -> None:
    """Make a scaling decision every ``interval`` seconds while the manager runs."""
    rates = RecentRates(max(10 * interval, 1.0))
    last_scale_up = -math.inf
    while rt.state == "running":
        await anyio.sleep(interval)
        now = monotonic()
        metrics = rt.collector.metrics()
        finished = metrics.total_tasks_completed + metrics.total_tasks_failed
        seen = snapshot(rt, now, rates.sample(now, metrics.total_tasks_arrived, finished), last_scale_up)
        try:
            decision = policy.decide(seen)
        except Exception:
            rt.log.error("scaling policy %r raised; holding", policy, exc_info=True)
            continue
        if decision.add > 0:
            if apply_add(rt, decision, seen):
                last_scale_up = now
        elif decision.retire > 0:
            apply_retire(rt, decision)


def apply_add(rt: Runtime[Any], decision: ScalingDecision, seen: ScalingSnapshot) -> int:
    """Start burst workers, never beyond ``max_worker_count``; return how many."""
    count = min(decision.add, rt.max_workers - len(rt.workers))
    for _ in range(count):
        rt.spawn_worker(burst=True, reason="burst")
    if count > 0:
        rt.burst_workers_added += count
        _report(rt, "scale_up", count, decision.reason)
    return count


def apply_retire(rt: Runtime[Any], decision: ScalingDecision) -> int:
    """Retire the longest-idle parked burst workers; return how many."""
    idle: list[Worker] = sorted(
        (w for w in rt.workers if w.burst and w.parked and not w.retiring), key=lambda w: w.idle_since
    )
    chosen = idle[: decision.retire]
    for worker in chosen:
        worker.retiring = True
        worker.scope.cancel()
    if chosen:
        rt.burst_workers_retired += len(chosen)
        _report(rt, "scale_down", len(chosen), decision.reason)
    return len(chosen)


def _report(rt: Runtime[Any], kind: str, count: int, reason: str) -> None:
    after = rt.burst_workers - (count if kind == "scale_down" else 0)
    rt.log.info("%s: %d burst worker(s) (%s); %d burst worker(s) now", kind, count, reason, after)
    if rt.hooks.active:
        rt.hooks.emit(
            ScalingEvent(
                kind="scale_up" if kind == "scale_up" else "scale_down", count=count, burst_workers=after, reason=reason
            )
        )
