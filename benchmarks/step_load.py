"""Step load: from idle to N tasks of 1 ms at once, a bursting pool against one fixed at its ceiling.

    python -m benchmarks.step_load                  # 20,000 tasks, 5 paired rounds, every loop installed
    python -m benchmarks.step_load --rounds 9 --loop asyncio
    python -m benchmarks.step_load --smoke          # tiny, one round: checks that it runs, not the ratio

Each run starts a fresh manager (not timed), lets it run idle for
``--idle`` seconds (default 0: the step comes right after start; 1.5 s
gives the rate policy a window of idle history), then times from the first
submission until every result is in. The bursting pools start with
``--workers`` workers and may grow to ``--max-workers``: one with the default
rate policy, one with the backlog policy (``burst_task_threshold``). The
reference is a pool fixed at the ceiling (``worker_count = max_worker_count``).
``on_create`` returns at once, so what is measured is how fast the
supervisor decides, not how fast resources are made. In every round each
bursting pool runs right after a run of the reference; the ratio (drain
time / the reference's) is taken within the round, and the report gives the
median over the rounds with its min-max. The target, 1.10x for both
policies, is informative: it never fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from tasker_async import AsyncManager, Config

from ._loops import LoopKind, loop_kinds, running

TARGET = 1.10
FIXED = "fixed at the ceiling"
RATE = "rate policy (default)"
BACKLOG = "backlog policy"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The load and the pools; ``smoke`` runs check that the benchmark works, not its timings."""

    tasks: int = 20_000
    task_seconds: float = 0.001
    workers: int = 4
    max_workers: int = 32
    threshold: int = 100  # burst_task_threshold of the backlog pool
    idle: float = 0.0  # seconds each manager runs idle before the step
    rounds: int = 5
    smoke: bool = False


@dataclass(slots=True)
class Series:
    """Drain times of one pool, and its ratios to the reference, one per round."""

    name: str
    seconds: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    added: list[int] = field(default_factory=list)  # burst workers added during the run


async def _sleepy(resource: int, seconds: float) -> None:
    await asyncio.sleep(seconds)


def configs(settings: Settings) -> dict[str, Callable[[], Config[int]]]:
    """A fresh ``Config`` per run for each pool, by name."""

    def build(**options: Any) -> Callable[[], Config[int]]:
        def make() -> Config[int]:
            ids = itertools.count()
            return Config(on_create=lambda: next(ids), resource_pool_size=0, **options)

        return make

    top = settings.max_workers
    return {
        FIXED: build(worker_count=top, max_worker_count=top),
        RATE: build(worker_count=settings.workers, max_worker_count=top),
        BACKLOG: build(worker_count=settings.workers, max_worker_count=top, burst_task_threshold=settings.threshold),
    }


async def drain(config: Config[int], settings: Settings) -> tuple[float, int]:
    """Seconds from the first of ``settings.tasks`` submissions to the last result, and burst workers added."""
    async with AsyncManager(config) as manager:
        if settings.idle:
            await asyncio.sleep(settings.idle)  # the supervisor's rate window fills with idle samples
        submit = manager.submit_nowait
        seconds = settings.task_seconds
        gc.collect()
        start = perf_counter()
        await asyncio.gather(*[submit(_sleepy, seconds) for _ in range(settings.tasks)])
        elapsed = perf_counter() - start
        return elapsed, manager.stats().burst_workers_added


def measure(kind: LoopKind, settings: Settings, progress: Callable[[str], None]) -> list[Series]:
    """Every pool on one loop: a warm-up run each, then ``rounds`` paired rounds."""
    build = configs(settings)
    series = {name: Series(name) for name in build}
    with running(kind) as run:
        for make in build.values():
            run(drain(make(), settings))
        for number in range(1, settings.rounds + 1):
            for name in (RATE, BACKLOG):
                reference, _ = run(drain(build[FIXED](), settings))
                seconds, added = run(drain(build[name](), settings))
                series[FIXED].seconds.append(reference)
                series[name].seconds.append(seconds)
                series[name].ratios.append(seconds / reference)
                series[name].added.append(added)
            shown = ", ".join(f"{name} {series[name].ratios[-1]:.2f}x" for name in (RATE, BACKLOG))
            progress(f"[{kind.name}] round {number}/{settings.rounds}: {shown}")
    return list(series.values())


def report(settings: Settings, results: dict[str, list[Series]]) -> str:
    """The table and one PASS/FAIL line per loop, as markdown."""
    lines = [
        f"Step load: {settings.tasks:,} tasks of {settings.task_seconds * 1e3:g} ms submitted at once to an idle "
        f"pool of {settings.workers} workers (ceiling {settings.max_workers}); backlog policy threshold "
        f"{settings.threshold}; {settings.rounds} paired round(s)"
        + (f"; each manager idle {settings.idle:g} s first." if settings.idle else "; each manager fresh."),
        "",
        "| loop | pool | drain s | min-max | x fixed (min-max) | burst workers added | runs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    for loop, series in results.items():
        for one in series:
            ratio = "1"
            if one.ratios:
                ratio = f"{statistics.median(one.ratios):.2f} ({min(one.ratios):.2f}-{max(one.ratios):.2f})"
            added = f"{statistics.median(one.added):g}" if one.added else "-"
            lines.append(
                f"| {loop} | {one.name} | {statistics.median(one.seconds):.3f} | "
                f"{min(one.seconds):.3f}-{max(one.seconds):.3f} | {ratio} | {added} | {len(one.seconds)} |"
            )
        medians = {one.name: statistics.median(one.ratios) for one in series if one.ratios}
        status = "PASS" if all(value <= TARGET for value in medians.values()) else "FAIL"
        shown = ", ".join(f"{value:.2f} ({name})" for name, value in medians.items())
        verdicts.append(f"{status}  [{loop}] step-load drain <= {TARGET:.2f}x the fixed-ceiling pool: {shown}")
    return "\n".join([*lines, "", "```text", *verdicts, "```"])


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.step_load", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=_positive, default=defaults.tasks, help="tasks submitted at once")
    parser.add_argument("--rounds", type=_positive, default=defaults.rounds, help="paired rounds")
    parser.add_argument(
        "--workers", type=_positive, default=defaults.workers, help="base workers of the bursting pools"
    )
    parser.add_argument("--max-workers", type=_positive, default=defaults.max_workers, help="the ceiling")
    parser.add_argument(
        "--threshold", type=_positive, default=defaults.threshold, help="the backlog policy's threshold"
    )
    parser.add_argument(
        "--idle", type=float, default=defaults.idle, help="seconds each manager runs idle before the step (default 0)"
    )
    parser.add_argument("--loop", choices=("all", "asyncio", "uvloop"), default="all", help="loops to measure on")
    parser.add_argument("--smoke", action="store_true", help="200 tasks, 2 -> 8 workers, one round")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.max_workers < args.workers:
        parser.error("--max-workers must be at least --workers")
    if not args.idle >= 0:
        parser.error("--idle must be >= 0")
    settings = Settings(
        tasks=args.tasks,
        workers=args.workers,
        max_workers=args.max_workers,
        threshold=args.threshold,
        rounds=args.rounds,
        idle=args.idle,
    )
    if args.smoke:
        settings = Settings(tasks=200, workers=2, max_workers=8, threshold=10, rounds=1, smoke=True)
    kinds, notes = loop_kinds()
    kinds = [kind for kind in kinds if args.loop in ("all", kind.name)]
    if not kinds:
        parser.error(f"the {args.loop} loop is not installed")

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results = {kind.name: measure(kind, settings, progress) for kind in kinds}
    print(report(settings, results))
    for note in notes if args.loop == "all" else ():
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
