"""The issue's targets, judged from the numbers alone; informative, they never fail a run."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from ._results import AIOJOBS, TASKER_GATHER, TASKER_PER_CALLER, TASKER_POOL, Results


@dataclass(frozen=True, slots=True)
class Verdict:
    """One target: PASS, FAIL, or SKIP when what it needs was not measured."""

    status: str
    text: str

    def __str__(self) -> str:
        return f"{self.status}  {self.text}"


def judge(label: str, measured: dict[str, float | None], ok: Callable[[float], bool]) -> Verdict:
    """PASS when every measured value is ``ok``; SKIP when any is missing."""
    if not measured or any(value is None for value in measured.values()):
        return Verdict("SKIP", f"{label}: not measured")
    shown = ", ".join(f"{value:.2f} ({where})" for where, value in measured.items())
    passed = all(ok(value) for value in measured.values() if value is not None)
    return Verdict("PASS" if passed else "FAIL", f"{label}: {shown}")


def median_ratio(results: Results, loop: str, n: int, name: str) -> float | None:
    """Median of ``name``'s per-round ratios to its reference, or ``None``."""
    series = results.find(loop, n, name)
    return statistics.median(series.ratios) if series is not None and series.ratios else None


def times_faster(results: Results, loop: str, n: int, ours: str, theirs: str) -> float | None:
    """How many times faster ``ours`` is than ``theirs``: median over rounds of their floor ratios' quotient.

    Both were measured against a floor run of the same round, so the quotient
    is immune to the machine drifting between rounds.
    """
    a, b = results.find(loop, n, ours), results.find(loop, n, theirs)
    if a is None or b is None or not a.ratios:
        return None
    return statistics.median(x / y for x, y in zip(a.ratios, b.ratios, strict=True))


def evaluate(results: Results) -> list[Verdict]:
    """Every target, on every loop measured."""
    verdicts = []
    sizes = results.settings.sizes
    for loop in results.loops:
        verdicts.append(
            judge(
                f"[{loop}] submit->gather >= 0.75x the two-queue floor",
                {f"N={n:,}": median_ratio(results, loop, n, TASKER_GATHER) for n in sizes},
                lambda ratio: ratio >= 0.75,
            )
        )
        verdicts.append(
            judge(
                f"[{loop}] queue_task per caller >= 0.85x the per-caller floor",
                {f"N={n:,}": median_ratio(results, loop, n, TASKER_PER_CALLER) for n in sizes},
                lambda ratio: ratio >= 0.85,
            )
        )
        verdicts.append(
            judge(
                f"[{loop}] submit->gather >= 8x aiojobs",
                # Over the sizes aiojobs ran at (not the large ones, see _suite).
                {
                    f"N={n:,}": times_faster(results, loop, n, TASKER_GATHER, AIOJOBS)
                    for n in sizes
                    if n < results.settings.large
                },
                lambda ratio: ratio >= 8,
            )
        )
        memory = [m for m in results.memory if m.loop == loop and m.name == TASKER_POOL and m.ratios]
        verdicts.append(
            judge(
                f"[{loop}] bytes per queued task <= 2x the floor's",
                {f"N={m.n:,}": statistics.median(m.ratios) for m in memory},
                lambda ratio: ratio <= 2,
            )
        )
        latency = next((s for s in results.latency if s.loop == loop and s.name == TASKER_POOL and s.ratios), None)
        verdicts.append(
            judge(
                f"[{loop}] p99 latency at {results.settings.latency_rate:,.0f}/s offered <= 1.5x the floor's",
                {"p99": statistics.median(latency.ratios) if latency is not None else None},
                lambda ratio: ratio <= 1.5,
            )
        )
        base = min(sizes)
        for large in (n for n in sizes if n >= results.settings.large and base < results.settings.large):
            for name, what in ((TASKER_GATHER, "submit->gather"), (TASKER_PER_CALLER, "queue_task per caller")):
                verdicts.append(_stability(results, loop, name, f"[{loop}] {what} ratio", large, base))
    return verdicts


def _stability(results: Results, loop: str, name: str, label: str, large: int, base: int) -> Verdict:
    label = f"{label} at N={large:,} within 15% of N={base:,}"
    at_large = median_ratio(results, loop, large, name)
    at_base = median_ratio(results, loop, base, name)
    if at_large is None or at_base is None:
        return Verdict("SKIP", f"{label}: not measured")
    change = at_large / at_base - 1
    status = "PASS" if abs(change) <= 0.15 else "FAIL"
    return Verdict(status, f"{label}: {at_large:.2f} vs {at_base:.2f} ({change:+.0%})")
