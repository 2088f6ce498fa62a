"""``python -m benchmarks.engines``: tasker_async against its peers on Redis and PostgreSQL; print the tables.

    python -m benchmarks.engines                      # Redis: 20,000 no-op jobs, concurrency 32, 5 rounds
    python -m benchmarks.engines all                  # Redis, then PostgreSQL
    python -m benchmarks.engines redis --fsync everysec
    python -m benchmarks.engines postgres --latency   # tasker_async's latency at 500 jobs/s offered
    python -m benchmarks.engines redis --recovery     # tasker_async's recovery after SIGKILL of a worker
    python -m benchmarks.engines sqlite --fanout      # a 1,000-way workflow fan-out next to plain jobs
    python -m benchmarks.engines --smoke              # tiny, one round, both engines: checks it runs

The report goes to stdout, progress to stderr. The exit code is 1 when a run failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from typing import TypeVar

from ._harness import Settings, measure_engine
from ._process import progress
from ._report import render
from ._servers import FSYNC, EngineServer, start_engine

ENGINES = ("redis", "postgres")
T = TypeVar("T")
SMOKE = Settings(engines=ENGINES, jobs=50, concurrency=4, submitters=8, rounds=1, smoke=True)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.engines",
        description=(__doc__ or "").split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    engines = (*ENGINES, "sqlite", "all")
    parser.add_argument("engine", nargs="?", choices=engines, help="the engine(s): redis, or all with --smoke")
    parser.add_argument("--jobs", type=_positive, default=defaults.jobs, help="no-op jobs per timed run")
    parser.add_argument("--concurrency", type=_positive, default=defaults.concurrency, help="jobs run at once")
    parser.add_argument("--submitters", type=_positive, default=defaults.submitters, help="concurrent submitters")
    parser.add_argument("--rounds", type=_positive, default=defaults.rounds, help="rounds; tables give medians")
    parser.add_argument("--fsync", choices=FSYNC, default=defaults.fsync, help="Redis appendfsync policy")
    parser.add_argument("--smoke", action="store_true", help="50 jobs, one round, every engine: checks it runs")
    parser.add_argument("--latency", action="store_true", help="tasker_async's submit->result latency instead")
    parser.add_argument("--recovery", action="store_true", help="tasker_async's recovery after SIGKILL instead")
    parser.add_argument("--fanout", action="store_true", help="a 1,000-way workflow fan-out (sqlite too)")
    parser.add_argument("--kills", type=_positive, default=3, help="--recovery: how many workers to kill")
    parser.add_argument("--lease", type=_seconds, default=2.0, help="--recovery: the jobs' lease in seconds")
    return parser


def _each(settings: Settings, measure: Callable[[EngineServer], T]) -> list[T]:
    """``measure`` of each engine's server in turn, each server started for it and stopped after it."""
    found = []
    for engine in settings.engines:
        progress(f"starting {engine}")
        with start_engine(engine, fsync=settings.fsync) as server:
            found.append(measure(server))
    return found


def _settings(args: argparse.Namespace) -> Settings:
    engines: tuple[str, ...]
    if args.smoke:
        engines = ENGINES if args.engine in (None, "all") else (args.engine,)
        if args.fanout and args.engine in (None, "all"):
            engines = ("sqlite", *ENGINES)
        return dataclasses.replace(SMOKE, engines=engines, fsync=args.fsync)
    engines = ENGINES if args.engine == "all" else (args.engine or "redis",)
    if args.fanout and args.engine == "all":
        engines = ("sqlite", *ENGINES)
    return Settings(
        engines=engines,
        jobs=args.jobs,
        concurrency=args.concurrency,
        submitters=args.submitters,
        rounds=args.rounds,
        fsync=args.fsync,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    if args.latency:
        from .latency import measure_latency, render_latency

        latencies = _each(settings, lambda server: measure_latency(server, settings, progress))
        print(render_latency([one for engine in latencies for one in engine], settings))
        return 0
    if args.fanout:
        from .fanout import WIDTH, measure_fanout, render_fanout

        width = 50 if args.smoke else WIDTH
        fanouts = _each(settings, lambda server: measure_fanout(server, settings, progress, width))
        print(render_fanout(fanouts, settings, width))
        return 0
    if "sqlite" in settings.engines:
        raise SystemExit("the sqlite engine is for --fanout only (its peers run on Redis and PostgreSQL)")
    if args.recovery:
        from .recovery import measure_recovery, render_recovery

        kills, lease = (1, 0.5) if args.smoke else (args.kills, args.lease)
        recoveries = _each(settings, lambda server: measure_recovery(server, kills, lease, progress))
        print(render_recovery(recoveries, kills, lease))
        return 0
    results = _each(settings, lambda server: measure_engine(server, settings, progress))
    print(render(results, settings))
    return 1 if any(result.failures for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
