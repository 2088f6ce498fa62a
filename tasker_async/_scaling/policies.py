"""Burst scaling decisions: pure functions of a snapshot, no awaiting, no clocks.

The supervisor (``_scaling.supervisor``) takes a :class:`ScalingSnapshot` every
``burst_interval``, and sooner when a backlog builds with no worker free,
asks the policy, and applies the :class:`ScalingDecision`.
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
    """Go tasker v2's policy, on windowed rates instead of lifetime averages, plus a backlog term.

    While tasks wait and there is room, it adds the larger of:

    - arrivals outpace completions: ``ceil(deficit / per-worker throughput)``;
    - the backlog: enough workers to clear the queued tasks within
      ``clear_within`` seconds at the per-worker throughput, minus the workers
      alive or starting; with no completion in the window (idle until a step
      in load, or every task stuck) that pace is unknown, and it adds a worker
      for each queued task no starting worker will take.

    Otherwise it retires idle burst workers:

    - both queues empty and nothing arrived in the window: every one;
    - completions outpace arrivals: ``floor(surplus / per-worker throughput)``.

    Args:
        cooldown: seconds after a scale-up during which nothing retires.
        idle_grace: seconds a burst worker must have been idle to retire.
        clear_within: seconds the queued tasks may take to clear at the
            observed pace before workers are added for them.
    """

    cooldown: float = 1.0
    idle_grace: float = 0.5
    clear_within: float = 1.0

    def __post_init__(self) -> None:
        """Validate the arguments."""
        _check("cooldown", self.cooldown)
        _check("idle_grace", self.idle_grace)
        _check("clear_within", self.clear_within, positive=True)

    def decide(self, snapshot: ScalingSnapshot) -> ScalingDecision:
        """Compare arrival and completion rates and the backlog; see the class docstring."""
        room = _room(snapshot)
        busy = max(snapshot.active_workers, 1)
        per_worker = snapshot.completion_rate / busy
        if snapshot.queued and room:
            wanted = self._wanted(snapshot, per_worker)
            if wanted.add > 0:
                return ScalingDecision(add=min(wanted.add, room), reason=wanted.reason)
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

    def _wanted(self, snapshot: ScalingSnapshot, per_worker: float) -> ScalingDecision:
        """Workers to add while tasks wait, before the cap on room."""
        if per_worker <= 0:
            # No pace to go by: whatever waits beyond the workers on their way waits for a worker.
            return ScalingDecision(
                add=snapshot.queued - snapshot.starting_workers,
                reason=f"{snapshot.queued} queued and nothing completed in the window",
            )
        alive = snapshot.active_workers + snapshot.starting_workers
        backlog = math.ceil(snapshot.queued / (per_worker * self.clear_within)) - alive
        deficit = snapshot.arrival_rate - snapshot.completion_rate
        rate = math.ceil(deficit / per_worker) if deficit > 0 else 0
        if rate >= backlog:
            return ScalingDecision(add=rate, reason=f"arrivals outpace completions by {deficit:.1f}/s")
        return ScalingDecision(
            add=backlog, reason=f"{snapshot.queued} queued would take over {self.clear_within:g} s to clear"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BacklogPolicy:
    """Scale on queue depth, in proportion to it; retire below half of ``threshold``.

    Above ``threshold`` queued tasks it adds ``step`` workers for every
    ``threshold`` tasks queued (``step * (queued // threshold)``), less the
    workers still starting, so a step in load is met in one decision and
    workers on their way are not asked for twice.

    Args:
        threshold: queued tasks (both queues) above which workers are added.
        step: workers added for every ``threshold`` tasks queued.
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
            wanted = self.step * (snapshot.queued // self.threshold) - snapshot.starting_workers
            if wanted > 0:
                return ScalingDecision(
                    add=min(wanted, room), reason=f"{snapshot.queued} queued > threshold {self.threshold}"
                )
            return HOLD
        if snapshot.queued < self.threshold / 2:
            retirable = _retirable(snapshot, self.cooldown, self.idle_grace)
            if retirable:
                return ScalingDecision(
                    retire=retirable, reason=f"{snapshot.queued} queued < half the threshold {self.threshold}"
                )
        return HOLD


def checked_decision(decision: object) -> ScalingDecision:
    """``decision`` if it is a :class:`ScalingDecision` with ``add`` and ``retire`` ints >= 0.

    Raises:
        TypeError: a policy answered something else; the supervisor holds.
    """
    if isinstance(decision, ScalingDecision):
        counts = (decision.add, decision.retire)
        if all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
            return decision
    raise TypeError(f"a scaling policy must return a ScalingDecision with add and retire ints >= 0, got {decision!r}")
