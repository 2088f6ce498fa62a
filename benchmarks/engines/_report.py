"""The throughput tables, as markdown: medians of the rounds (min-max), and tasker_async over each peer."""

from __future__ import annotations

import statistics

from ._harness import EngineResult, Settings
from ._system import Timing

__all__ = ("TASKER", "render")

TASKER = "tasker_async"


def _spread(values: list[float], fmt: str) -> tuple[str, str]:
    if not values:
        return "-", "-"
    return format(statistics.median(values), fmt), f"{min(values):{fmt}}-{max(values):{fmt}}"


def _rates(runs: list[Timing | None], jobs: int) -> list[float]:
    return [jobs / run.seconds for run in runs if run is not None]


def _ratios(result: EngineResult, name: str, jobs: int) -> list[float]:
    """tasker_async's jobs/s over ``name``'s, per round where both ran."""
    ours = result.timings.get(TASKER, [])
    theirs = result.timings.get(name, [])
    pairs = zip(ours, theirs, strict=True)
    return [(jobs / a.seconds) / (jobs / b.seconds) for a, b in pairs if a is not None and b is not None]


def _row(result: EngineResult, name: str, settings: Settings) -> str:
    runs = result.timings.get(name, [])
    rate, rate_range = _spread(_rates(runs, settings.jobs), ",.0f")
    submits = [settings.jobs / run.submitted for run in runs if run is not None]
    submitted = f"{statistics.median(submits):,.0f}" if submits else "-"
    ratio, ratio_range = ("-", "-") if name == TASKER else _spread(_ratios(result, name, settings.jobs), ".2f")
    if ratio != "-":
        ratio += "x"
    return f"| {name} | {rate} | {rate_range} | {submitted} | {ratio} | {ratio_range} |"


def _gist(why: str) -> str:
    """The first line of a failure, and its last (where a worker's log ends: the error it died of)."""
    lines = [line.strip() for line in why.splitlines() if line.strip()]
    return lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"


def render_engine(result: EngineResult, settings: Settings) -> str:
    """One engine's table, then a line per system that failed or was skipped."""
    lines = [
        f"### {result.engine}: {result.server}",
        "",
        f"One worker process per system at concurrency {settings.concurrency}, {settings.submitters} "
        f"submitters, {settings.jobs:,} no-op jobs per run (after {settings.warm_up} warm-up jobs), each run on "
        f"an emptied engine with a fresh worker; systems alternate within each round; medians of "
        f"{settings.rounds} round(s) (min-max).",
        "",
        f"| system | jobs/s | min-max | submits/s | {TASKER} over it | min-max |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [_row(result, name, settings) for name in result.systems]
    notes = [
        f"- {name}: failed in {len(whys)} of {settings.rounds} round(s): {_gist(whys[0])}"
        for name, whys in result.failures.items()
    ]
    notes += [f"- {line}" for line in result.skipped]
    return "\n".join(lines + (["", *notes] if notes else []))


def render(results: list[EngineResult], settings: Settings) -> str:
    """Every engine's table."""
    header = "## Engines: end-to-end throughput (submit -> result)"
    if settings.smoke:
        header += " -- smoke run: checks that it runs, not the numbers"
    return "\n\n".join([header, *(render_engine(result, settings) for result in results)])
