"""Burst scaling decisions: pure functions of a snapshot, no awaiting, no clocks.

The supervisor (``_supervisor``) takes a :class:`ScalingSnapshot` every
``burst_interval``, asks the policy, and applies the :class:`ScalingDecision`.
Both built-in policies hold back from flapping the same way: no scale-down
within ``cooldown`` seconds of a scale-up, and only burst workers idle for
at least ``idle_grace`` seconds may retire.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = (
    "BacklogPolicy",
    "RatePolicy",
    "ScalingDecision",
    "ScalingPolicy",
    "ScalingSnapshot",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingSnapshot:
    """What the supervisor sees at one decision.

    Attributes:
        now: the decision time (``time.monotonic()``).
        queued: tasks waiting in both queues.
        running: tasks being run.
        active_workers: workers holding a resource (base and burst).
        starting_workers: workers still creating their resource.
        base_workers: ``worker_count``.
        max_workers: ``max_worker_count``.
        burst_workers: burst workers alive (starting or active).
        idle_burst: for each idle burst worker, seconds it has been idle.
        arrival_rate: tasks submitted per second over the recent window.
        completion_rate: tasks finished (succeeded or failed) per second over the window.
        arrivals_in_window: tasks submitted within the window.
        last_scale_up: when workers were last added (``-inf`` if never).
    """

    now: float
    queued: int
    running: int
    active_workers: int
    starting_workers: int
    base_workers: int
    max_workers: int
    burst_workers: int
    idle_burst: tuple[float, ...]
    arrival_rate: float
    completion_rate: float
    arrivals_in_window: int
    last_scale_up: float = -math.inf


@dataclass(frozen=True, slots=True)
class ScalingDecision:
    """Workers to add, idle burst workers to retire, and why."""

    add: int = 0
    retire: int = 0
    reason: str = ""


HOLD = ScalingDecision()


@runtime_checkable
class ScalingPolicy(Protocol):
    """Decides how many burst workers to add or retire; must be pure and quick."""

    def decide(self, snapshot: ScalingSnapshot) -> ScalingDecision:
        """Return the change to make now."""
        ...


def _room(snapshot: ScalingSnapshot) -> int:
    return max(0, snapshot.max_workers - snapshot.active_workers - snapshot.starting_workers)


def _retirable(snapshot: ScalingSnapshot, cooldown: float, idle_grace: float) -> int:
    if snapshot.now - snapshot.last_scale_up < cooldown:
        return 0
    return sum(1 for idle in snapshot.idle_burst if idle >= idle_grace)


def _check(name: str, value: float, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RatePolicy:
    """Go tasker v2's policy, on windowed rates instead of lifetime averages.

    - arrivals outpace completions: add ``ceil(deficit / per-worker throughput)``;
    - nothing completes while work waits: add one;
    - completions outpace arrivals: retire ``floor(surplus / per-worker throughput)``;
    - both queues empty and nothing arrived in the window: retire every idle burst worker.

    Args:
        cooldown: seconds after a scale-up during which nothing retires.
        idle_grace: seconds a burst worker must have been idle to retire.
    """

    cooldown: float = 1.0
    idle_grace: float = 0.5

    def __post_init__(self) -> None:
        """Validate the arguments."""
        _check("cooldown", self.cooldown)
        _check("idle_grace", self.idle_grace)

    def decide(self, snapshot: ScalingSnapshot) -> ScalingDecision:
        """Compare arrival and completion rates; see the class docstring."""
        room = _room(snapshot)
        busy = max(snapshot.active_workers, 1)
        per_worker = snapshot.completion_rate / busy
        if snapshot.queued and snapshot.arrival_rate > snapshot.completion_rate and room:
            deficit = snapshot.arrival_rate - snapshot.completion_rate
            wanted = math.ceil(deficit / per_worker) if per_worker > 0 else 1
            return ScalingDecision(add=min(wanted, room), reason=f"arrivals outpace completions by {deficit:.1f}/s")
        if snapshot.queued and snapshot.completion_rate == 0 and room:
            return ScalingDecision(add=1, reason="nothing completes while work waits")
        retirable = _retirable(snapshot, self.cooldown, self.idle_grace)
        if not retirable:
            return HOLD
        if not snapshot.queued and not snapshot.arrivals_in_window:
            return ScalingDecision(retire=retirable, reason="no work and no arrivals in the window")
        if snapshot.completion_rate > snapshot.arrival_rate and per_worker > 0:
            surplus = snapshot.completion_rate - snapshot.arrival_rate
            spare = min(math.floor(surplus / per_worker), retirable)
            if spare:
                return ScalingDecision(retire=spare, reason=f"completions outpace arrivals by {surplus:.1f}/s")
        return HOLD


@dataclass(frozen=True, slots=True, kw_only=True)
class BacklogPolicy:
    """Scale on queue depth: add ``step`` workers above ``threshold``, retire below half of it.

    Args:
        threshold: queued tasks (both queues) above which workers are added.
        step: workers added per decision.
        cooldown: seconds after a scale-up during which nothing retires.
        idle_grace: seconds a burst worker must have been idle to retire.
    """

    threshold: int
    step: int = 1
    cooldown: float = 1.0
    idle_grace: float = 0.5

    def __post_init__(self) -> None:
        """Validate the arguments."""
        for name in ("threshold", "step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        _check("cooldown", self.cooldown)
        _check("idle_grace", self.idle_grace)

    def decide(self, snapshot: ScalingSnapshot) -> ScalingDecision:
        """Compare the backlog with the threshold; see the class docstring."""
        room = _room(snapshot)
        if snapshot.queued > self.threshold and room:
            return ScalingDecision(
                add=min(self.step, room), reason=f"{snapshot.queued} queued > threshold {self.threshold}"
            )
        if snapshot.queued < self.threshold / 2:
            retirable = _retirable(snapshot, self.cooldown, self.idle_grace)
            if retirable:
                return ScalingDecision(
                    retire=retirable, reason=f"{snapshot.queued} queued < half the threshold {self.threshold}"
                )
        return HOLD
