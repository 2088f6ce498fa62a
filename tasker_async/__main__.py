"""Command line: ``python -m tasker_async demo [--tasks N] [--workers N] [--seed N]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ("build_parser", "main")


def _positive_int(text: str) -> int:
    """Parse an ``int >= 1`` for argparse.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not a positive integer.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of ``python -m tasker_async`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m tasker_async",
        description="tasker_async: run async tasks through a pool of workers, each bound to its own resource.",
    )
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="a few seconds of a connection pool serving a burst of tasks, with a live status line",
        description=(
            "Run a pool of simulated connections through a burst of tasks: burst workers join while the "
            "queue grows, a few tasks lose their connection "
            "(it is replaced and the task retried), one priority task overtakes the queue, then stop() "
            "drains the rest. Exits 1 if connections opened and closed do not balance."
        ),
    )
    demo.add_argument("--tasks", type=_positive_int, default=60, metavar="N", help="tasks in the burst (default: 60)")
    demo.add_argument("--workers", type=_positive_int, default=4, metavar="N", help="base workers (default: 4)")
    demo.add_argument("--seed", type=int, default=None, metavar="N", help="make the run reproducible")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from ._demo import run

    try:
        return run(tasks=args.tasks, workers=args.workers, seed=args.seed, out=sys.stdout)
    except KeyboardInterrupt:
        sys.stdout.write("\ninterrupted: the manager was killed and its connections closed\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
