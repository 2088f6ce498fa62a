"""The results as markdown: the same text is printed and written into ``benchmarks/README.md``."""

from __future__ import annotations

import statistics

from ._results import SHORT, Results, Spread
from ._targets import evaluate


def _rate(value: float) -> str:
    return f"{value / 1000:,.1f}k"


def _ratio(values: list[float]) -> str:
    spread = Spread.of(values)
    return f"{spread.median:.2f} ({spread.low:.2f}-{spread.high:.2f})"


def _table(header: list[str], align: str, rows: list[list[str]]) -> list[str]:
    """A markdown table; ``align`` holds one ``l`` or ``r`` per column."""
    rule = ["---:" if side == "r" else "---" for side in align]
    return ["| " + " | ".join(cells) + " |" for cells in [header, rule, *rows]]


def throughput_table(results: Results) -> list[str]:
    rows = []
    for series in results.throughput:
        rate = Spread.of(series.rates)
        reference = "-" if series.reference is None else SHORT.get(series.reference, series.reference)
        rows.append(
            [
                series.loop,
                f"{series.n:,}",
                series.name,
                _rate(rate.median),
                f"{_rate(rate.low)}-{_rate(rate.high)}",
                _ratio(series.ratios) if series.ratios else "1",
                reference,
                str(len(series.rates)),
            ]
        )
    header = ["loop", "N", "candidate", "tasks/s", "min-max", "x reference (min-max)", "reference", "runs"]
    return _table(header, "lrlrrrlr", rows)


def memory_table(results: Results) -> list[str]:
    rows = []
    for series in results.memory:
        size = Spread.of(series.bytes_per_task)
        rows.append(
            [
                series.loop,
                f"{series.n:,}",
                series.name,
                f"{size.median:.0f}",
                f"{size.low:.0f}-{size.high:.0f}",
                _ratio(series.ratios) if series.ratios else "1",
            ]
        )
    return _table(["loop", "queued", "pool", "bytes/task", "min-max", "x floor (min-max)"], "lrlrrr", rows)


def latency_table(results: Results) -> list[str]:
    settings = results.settings
    rows = []
    for series in results.latency:
        p99 = Spread.of(series.p99)
        rows.append(
            [
                series.loop,
                series.name,
                f"{statistics.median(series.p50) * 1e3:.3f}",
                f"{p99.median * 1e3:.3f}",
                f"{p99.low * 1e3:.3f}-{p99.high * 1e3:.3f}",
                _ratio(series.ratios) if series.ratios else "1",
            ]
        )
    lines = [
        f"Latency, submit -> result, {settings.latency_tasks:,} tasks offered open-loop at "
        f"{settings.latency_rate:,.0f}/s; medians of {settings.rounds} rounds:",
        "",
    ]
    return lines + _table(["loop", "pool", "p50 ms", "p99 ms", "p99 min-max", "p99 x floor (min-max)"], "llrrrr", rows)


def render(results: Results) -> str:
    """Tables, skip notes and target verdicts, as markdown."""
    rounds = results.settings.rounds
    lines = [
        f"Throughput, trivial task, 8 workers; median of every run (min-max); the ratio is the median over "
        f"{rounds} round(s) of candidate / reference, the two run back to back:",
        "",
        *throughput_table(results),
        "",
        "Bytes held per queued task (tracemalloc; workers held behind a gate):",
        "",
        *memory_table(results),
        "",
        *latency_table(results),
        "",
    ]
    if results.notes:
        lines += [f"- {note}" for note in results.notes] + [""]
    lines += ["Targets (informative; they never fail the run):", "", "```text"]
    lines += [str(verdict) for verdict in evaluate(results)]
    lines += ["```"]
    if results.settings.smoke:
        lines += ["", "Smoke run: tiny N and one round; these numbers only show that the suite runs."]
    return "\n".join(lines)
