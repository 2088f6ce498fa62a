"""The burst supervisor: every ``burst_interval``, or early on a backlog, snapshot, ask the policy, apply.

Applying is the only part that acts: new burst workers make their own
resources; a retiring worker is always one parked with nothing in hand,
marked ``retiring`` before its scope is cancelled, so even a worker woken in
the same instant leaves without taking a task (see ``_core.worker._serve``).
"""

from __future__ import annotations

import math
from collections import deque
from time import monotonic
from typing import TYPE_CHECKING, Any

import anyio

from .._core.ledger import NEVER
from .._observe.events import ScalingEvent
from .policies import BacklogPolicy, ScalingDecision, ScalingPolicy, ScalingSnapshot, checked_decision

if TYPE_CHECKING:
    from .._core.runtime import Runtime

__all__ = ("EARLY_GAP", "NEVER", "RecentRates", "supervise", "wake_backlog")

# The least time between a decision and an early one that ``accept`` asked for: a
# decision reads the metrics and every worker, so a flood of submissions must not
# run one per task, while a step in load is met within a few milliseconds. An early
# decision that added no worker is not followed by another before the next tick.
EARLY_GAP = 0.01


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
    idle_burst = tuple(now - worker.idle_since for worker in rt.workers.idle_burst())
    return ScalingSnapshot(
        now=now,
        queued=len(rt.queue) + rt.ledger.outside_backlog,
        running=rt.ledger.running,
        active_workers=rt.workers.active,
        starting_workers=len(rt.workers) - rt.workers.active,
        base_workers=rt.config.worker_count,
        max_workers=rt.workers.max_workers,
        burst_workers=rt.workers.burst,
        idle_burst=idle_burst,
        arrival_rate=rates[0],
        completion_rate=rates[1],
        arrivals_in_window=rates[2],
        last_scale_up=last_scale_up,
    )


async def supervise(rt: Runtime[Any], policy: ScalingPolicy, interval: float) -> None:
    """Make a scaling decision every ``interval`` seconds, and early when ``accept`` asks, while the manager runs."""
    rates = RecentRates(max(10 * interval, 1.0))
    last_scale_up = -math.inf
    backlog = wake_backlog(policy, rt.config.worker_count)
    gap = min(interval, EARLY_GAP)
    decided = -math.inf
    arm = True
    try:
        while rt.state == "running":
            early = await _next_turn(rt, backlog if arm else None, decided + gap, interval)
            decided = now = monotonic()
            # An early decision that adds nothing is not repeated before the next tick: a
            # backlog the policy is content with must not cost a decision every EARLY_GAP.
            arm = not early
            try:
                # A custom collector or policy that raises or answers nonsense costs one
                # decision, never the manager.
                metrics = rt.collector.metrics()
                finished = metrics.total_tasks_completed + metrics.total_tasks_failed
                seen = snapshot(rt, now, rates.sample(now, metrics.total_tasks_arrived, finished), last_scale_up)
                decision = checked_decision(policy.decide(seen))
            except Exception:
                rt.log.error("scaling policy %r could not decide; holding", policy, exc_info=True)
                continue
            if decision.add > 0:
                if apply_add(rt, decision, seen):
                    last_scale_up = now
                    arm = True
            elif decision.retire > 0:
                apply_retire(rt, decision)
    finally:
        rt.ledger.arm_scale_wake(NEVER)


def wake_backlog(policy: ScalingPolicy, worker_count: int) -> int:
    """Queued tasks beyond which ``accept`` wakes the supervisor: where the policy would add workers.

    The backlog policy's threshold; for any other policy, more tasks waiting
    than there are base workers: a step in load, not the jitter of a steady one.
    """
    return policy.threshold if isinstance(policy, BacklogPolicy) else worker_count


async def _next_turn(rt: Runtime[Any], backlog: int | None, earliest: float, interval: float) -> bool:
    """Wait ``interval`` seconds, or less once a backlog builds (not before ``earliest``); return whether early.

    ``accept`` checks ``unfinished > scale_wake_at`` when no worker is parked.
    Every worker holds at most one task and delayed tasks count too, so the
    mark is passed only once more than ``backlog`` tasks are queued (or due
    back from a retry delay). It is armed only with a ``backlog`` and room to
    add a worker, and ``accept`` disarms it as it wakes the supervisor: a
    flood of submissions wakes it once, and an early decision comes no
    sooner than ``earliest``.
    """
    ledger = rt.ledger
    wake = ledger.scale_wake
    if backlog is not None and rt.workers.room > 0:
        mark = len(rt.workers) + len(ledger.delayed) + backlog
        ledger.arm_scale_wake(mark)
        queue = ledger.queue
        if ledger.unfinished > mark and not (queue.takers or queue.spare_takers):
            # The backlog built while the mark was down (during the last decision, say).
            ledger.arm_scale_wake(NEVER)
            wake.set()
    early = False
    with anyio.move_on_after(interval):
        await wake.wait()
        early = True
        wait = earliest - monotonic()
        if wait > 0:
            await anyio.sleep(wait)
    ledger.arm_scale_wake(NEVER)
    wake.clear()
    return early


def apply_add(rt: Runtime[Any], decision: ScalingDecision, seen: ScalingSnapshot) -> int:
    """Start burst workers, never beyond ``max_worker_count``; return how many."""
    count = min(decision.add, rt.workers.room)
    for _ in range(count):
        rt.workers.spawn(burst=True, reason="burst")
    if count > 0:
        rt.workers.added_burst(count)
        _report(rt, "scale_up", count, decision.reason)
    return count


def apply_retire(rt: Runtime[Any], decision: ScalingDecision) -> int:
    """Retire the longest-idle parked burst workers; return how many."""
    chosen = rt.workers.idle_burst()[: decision.retire]
    if chosen:
        rt.workers.retire(chosen)
        _report(rt, "scale_down", len(chosen), decision.reason)
    return len(chosen)


def _report(rt: Runtime[Any], kind: str, count: int, reason: str) -> None:
    after = rt.workers.burst - (count if kind == "scale_down" else 0)
    rt.log.info("%s: %d burst worker(s) (%s); %d burst worker(s) now", kind, count, reason, after)
    if rt.hooks.active:
        rt.hooks.emit(
            ScalingEvent(
                kind="scale_up" if kind == "scale_up" else "scale_down", count=count, burst_workers=after, reason=reason
            )
        )
