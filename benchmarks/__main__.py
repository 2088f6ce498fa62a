"""``python -m benchmarks``: measure tasker_async against the two-queue floor and its peers, print a table."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from ._readme import README, environment, write_results
from ._report import render
from ._results import MILLION, Settings
from ._suite import run_suite

FULL = Settings(sizes=(10_000, 100_000), rounds=5, memory_tasks=100_000, latency_rate=50_000, latency_tasks=50_000)
SMOKE = Settings(sizes=(200,), rounds=1, memory_tasks=200, latency_rate=50_000, latency_tasks=200, smoke=True)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny N and one round: checks that the suite runs")
    parser.add_argument("--million", action="store_true", help="also measure N=1,000,000 (takes many minutes)")
    parser.add_argument("--rounds", type=_positive, help=f"rounds per measurement (default {FULL.rounds})")
    parser.add_argument("--write-readme", action="store_true", help=f"rewrite the results section of {README.name}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.smoke and (args.million or args.write_readme):
        parser.error("--smoke measures nothing worth keeping: drop --million and --write-readme")
    settings = SMOKE if args.smoke else FULL
    if args.million:
        settings = dataclasses.replace(settings, sizes=(*settings.sizes, MILLION))
    if args.rounds is not None:
        settings = dataclasses.replace(settings, rounds=args.rounds)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results = run_suite(settings, progress)
    report = render(results)
    print(report)
    if args.write_readme:
        command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
        write_results(f"{environment(results.loops)}\n\nCommand: `{command}`\n\n{report}")
        progress(f"wrote the results into {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
