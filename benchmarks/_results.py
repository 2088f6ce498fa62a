"""What a run of the suite produces: raw samples per candidate, and the names the report and targets use."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

MILLION = 1_000_000  # the size --million adds; only the pools run at it

FLOOR = "two-queue floor (submit->gather)"
FLOOR_PER_CALLER = "two-queue floor per caller"
TASKER_GATHER = "tasker_async submit->gather"
TASKER_PER_CALLER = "tasker_async queue_task per caller"
AIOJOBS = "aiojobs Scheduler(limit=8)"
AIOMETER = "aiometer.run_all(max_at_once=8)"
ANYIO = "anyio task group + CapacityLimiter(8)"
GATHER_SEMAPHORE = "asyncio.gather + Semaphore(8)"

# The two pools measured for memory and latency.
FLOOR_POOL = "two-queue floor"
TASKER_POOL = "tasker_async"

# Short names for the reference column.
SHORT = {FLOOR: "floor", FLOOR_PER_CALLER: "per-caller floor"}


@dataclass(frozen=True, slots=True)
class Spread:
    """Median, minimum and maximum of some samples."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What to measure; ``smoke`` runs check that the suite works, not its timings."""

    sizes: tuple[int, ...]
    rounds: int
    memory_tasks: int
    latency_rate: float
    latency_tasks: int
    smoke: bool = False
    # Sizes from this one up run the pools only (a peer would take minutes a run), and their
    # ratios are checked against the smallest size's.
    large: int = MILLION


@dataclass(frozen=True, slots=True, kw_only=True)
class Throughput:
    """Tasks per second of one candidate at one N; ``ratios`` to its reference, one per round."""

    loop: str
    n: int
    name: str
    reference: str | None
    rates: list[float]
    ratios: list[float]


@dataclass(frozen=True, slots=True, kw_only=True)
class Memory:
    """Bytes per queued task, one sample per round; ``ratios`` to the floor's, one per round."""

    loop: str
    n: int
    name: str
    bytes_per_task: list[float]
    ratios: list[float]


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    """Latency percentiles in seconds, one sample per round; ``ratios`` of p99 to the floor's."""

    loop: str
    name: str
    p50: list[float]
    p99: list[float]
    ratios: list[float]


@dataclass(slots=True, kw_only=True)
class Results:
    """Everything one run of the suite measured, and what it skipped."""

    settings: Settings
    loops: list[str] = field(default_factory=list)
    throughput: list[Throughput] = field(default_factory=list)
    memory: list[Memory] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def find(self, loop: str, n: int, name: str) -> Throughput | None:
        for series in self.throughput:
            if (series.loop, series.n, series.name) == (loop, n, name):
                return series
        return None
