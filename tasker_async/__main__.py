"""Command line: ``python -m tasker_async demo|worker|status|dashboard``.

- ``demo [--tasks N] [--workers N] [--seed N] [--durable]``: a few seconds of a pool at work (``--durable``:
  two worker processes sharing a SQLite queue, one of them killed mid-run).
- ``worker MODULE[:REGISTRY] [--store URL] [--queue Q ...] [--concurrency N] [--health-port PORT]``: serve a
  store's jobs (and answer health probes).
- ``status [--store URL] [--json]``: a store's queues and consumers.
- ``dashboard [--store URL] [--host H] [--port N] [--allow-actions] [--token T] [--interval S]``: a live web page.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

__all__ = ("build_parser", "main")

DEFAULT_STORE = "sqlite:///tasker.db"


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


def _port(text: str) -> int:
    """Parse a TCP port (0 to 65535; 0: any free one) for argparse.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not one.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    """Parse a finite number of seconds > 0 for argparse.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not one.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds > 0, got {text}")
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
        help=(
            "a few seconds of a connection pool serving a burst of tasks, with a live status line "
            "(--durable: two worker processes sharing a SQLite queue, one killed mid-run)"
        ),
        description=(
            "Run a pool of simulated connections through a burst of tasks: burst workers join while the "
            "queue grows, a few tasks lose their connection "
            "(it is replaced and the task retried), one priority task overtakes the queue, then stop() "
            "drains the rest. Exits 1 if connections opened and closed do not balance."
        ),
    )
    demo.add_argument(
        "--tasks", type=_positive_int, default=None, metavar="N", help="tasks in the burst (default: 60; 24 durable)"
    )
    demo.add_argument(
        "--workers", type=_positive_int, default=None, metavar="N", help="base workers (default: 4; 3 per process)"
    )
    demo.add_argument("--seed", type=int, default=None, metavar="N", help="make the run reproducible")
    demo.add_argument(
        "--durable",
        action="store_true",
        help=(
            "the durable flow instead, on SQLite in a temporary directory: two worker processes share a queue, one "
            "is killed (SIGKILL) mid-run and its jobs finish on the other; exits 1 unless every job succeeded once"
        ),
    )
    _add_worker(commands)
    _add_status(commands)
    _add_dashboard(commands)
    return parser


def _add_worker(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser(
        "worker",
        help="run a manager and a consumer serving a store's jobs, until SIGTERM or Ctrl-C",
        description=(
            "Import MODULE (from the current directory or the installed packages), which defines `registry` "
            "(a tasker_async.durable.Registry; MODULE:NAME names another attribute) and `config` (a tasker_async "
            "Config), then run its tasks' jobs from the store. The first SIGTERM or SIGINT drains (running jobs "
            "finish and are recorded, exit 0); a second one kills (running jobs are given back, exit 130)."
        ),
    )
    worker.add_argument("target", metavar="MODULE[:REGISTRY]", help="the module defining `registry` and `config`")
    worker.add_argument("--store", default=DEFAULT_STORE, metavar="URL", help=f"the store (default: {DEFAULT_STORE})")
    worker.add_argument(
        "--queue",
        action="append",
        default=[],
        metavar="Q",
        dest="queues",
        help="a queue to serve; repeat for more (default: `default` and the queues of the registry's tasks)",
    )
    worker.add_argument(
        "--concurrency", type=_positive_int, default=None, metavar="N", help="workers (default: config.worker_count)"
    )
    worker.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="the event loop (default: auto, which takes uvloop when it is installed)",
    )
    worker.add_argument(
        "--health-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="answer health probes over HTTP on PORT: GET /health (liveness), GET /ready (readiness); 0 picks a "
        "free port (printed)",
    )
    worker.add_argument(
        "--drain-timeout",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="how long the drain of the first SIGTERM may take before it turns into a kill, which gives the "
        "running jobs back at once (default: as long as they take)",
    )
    worker.add_argument(
        "--health-host",
        default="127.0.0.1",
        metavar="HOST",
        help="the address the health probes reach (default: 127.0.0.1; 0.0.0.0 for a pod's kubelet)",
    )


def _add_status(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser(
        "status",
        help="show a store's queues (depth per lane, running, delayed, dead) and its live consumers",
        description="Show each queue's counts and the consumers heard from lately, with their heartbeat age.",
    )
    status.add_argument("--store", default=DEFAULT_STORE, metavar="URL", help=f"the store (default: {DEFAULT_STORE})")
    status.add_argument("--json", action="store_true", help="print one JSON document instead of tables")


def _add_dashboard(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dashboard = commands.add_parser(
        "dashboard",
        help="serve a live web page of a store: queues, consumers, jobs, workflow runs (needs the dashboard extra)",
        description=(
            "Serve a page that updates itself: each queue's depth with its last minutes, the consumers, recent, "
            "failed and dead jobs, and workflow runs drawn as their graph; the same data as JSON under /api/. "
            "Read-only unless --allow-actions. SIGTERM or Ctrl-C stops it."
        ),
    )
    dashboard.add_argument(
        "--store", default=DEFAULT_STORE, metavar="URL", help=f"the store (default: {DEFAULT_STORE})"
    )
    dashboard.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for every interface)",
    )
    dashboard.add_argument(
        "--port", type=_port, default=8000, metavar="N", help="the port (default: 8000; 0 for any free one)"
    )
    dashboard.add_argument(
        "--allow-actions",
        action="store_true",
        help="offer requeue (dead jobs), cancel (jobs, runs) and resume (failed runs); read-only without it",
    )
    dashboard.add_argument(
        "--token",
        default=os.environ.get("TASKER_DASHBOARD_TOKEN") or None,
        metavar="TOKEN",
        help="actions then need the header Authorization: Bearer TOKEN (default: $TASKER_DASHBOARD_TOKEN)",
    )
    dashboard.add_argument(
        "--interval",
        type=_positive_seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds between two reads of the store, and two updates of the page (default: 1)",
    )


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
    if args.command == "worker":
        from ._cli.worker import run as run_worker

        return run_worker(
            target=args.target,
            store_url=args.store,
            queues=args.queues,
            concurrency=args.concurrency,
            out=sys.stdout,
            loop=args.loop,
            health=None if args.health_port is None else (args.health_host, args.health_port),
            drain_timeout=math.inf if args.drain_timeout is None else args.drain_timeout,
        )
    if args.command == "status":
        from ._cli.status import run as run_status

        return run_status(store_url=args.store, as_json=args.json, out=sys.stdout)
    if args.command == "dashboard":
        from ._cli.dashboard import run as run_dashboard

        return run_dashboard(
            store_url=args.store,
            host=args.host,
            port=args.port,
            allow_actions=args.allow_actions,
            token=args.token,
            interval=args.interval,
            out=sys.stdout,
        )
    if args.durable:
        from ._cli.demo_durable import run as run_durable

        return run_durable(tasks=args.tasks or 24, workers=args.workers or 3, seed=args.seed, out=sys.stdout)
    return _demo(args)


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run

    try:
        return run(tasks=args.tasks or 60, workers=args.workers or 4, seed=args.seed, out=sys.stdout)
    except KeyboardInterrupt:
        sys.stdout.write("\ninterrupted: the manager was killed and its connections closed\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
