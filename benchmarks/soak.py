"""Soak: a million tasks through one manager with faults everywhere; nothing may be lost or leaked.

    python benchmarks/soak.py                      # 1,000,000 tasks
    python benchmarks/soak.py --tasks 20000        # a smoke run: a second or two
    python benchmarks/soak.py --seconds 60         # stop submitting after 60 s (or --tasks, if sooner)

Every task waits one loop turn, then: 5% break their resource on the first run
(``check_health`` says False: the worker is replaced, the task retried on a
fresh resource), 5% fail with an error of their own (a healthy one), the rest
succeed. 2% of callers give up at a random point (0-3 loop turns after
submitting: queued, running or being retried). ``on_create`` and
``on_destroy`` are async and 1% of creations fail (the replacement backs
off). Bursting is on: work arrives in waves, thousands in flight then a
handful, so burst workers come and go all through the run. At most
``--window`` tasks are in flight at once, so memory stays bounded.

The report is a table on stdout (progress goes to stderr). The run fails
(exit status 1) if a task is lost (submitted minus succeeded, failed,
cancelled and aborted is not 0), a resource leaks (created minus destroyed
after ``stop()`` is not 0), a task ends in an unexpected way, asyncio reports
an error, or, for runs of at least 100k tasks, RSS grows more than
``--max-rss-growth`` between the warm-up point (10% of the run) and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tasker_async import AsyncManager, BacklogPolicy, Config, MaxRetriesExceededError, TaskAbortedError, TaskHandle

WORKERS = 8
MAX_WORKERS = 16
OK, UNHEALTHY, FAILS = 0, 1, 2
RSS_CHECKED_FROM = 100_000  # shorter runs are mostly warm-up: their RSS is reported, not judged


class Broken(Exception):
    """The connection went bad."""


class Connection:
    __slots__ = ("id",)

    def __init__(self, ident: int) -> None:
        self.id = ident


@dataclass
class Backend:
    """Async ``on_create``/``on_destroy`` that count every resource; a fraction of creations fail."""

    rng: random.Random
    failure_rate: float
    created: int = 0
    destroyed: int = 0
    creation_failures: int = 0

    async def create(self) -> Connection:
        await asyncio.sleep(0)
        if self.rng.random() < self.failure_rate:
            self.creation_failures += 1
            raise ConnectionError("backend unavailable")
        self.created += 1
        return Connection(self.created)

    async def destroy(self, connection: Connection) -> None:
        await asyncio.sleep(0)
        self.destroyed += 1


def healthy(exc: BaseException) -> bool:
    return not isinstance(exc, Broken)


async def job(connection: Connection, kind: int, runs: list[int] | None) -> int:
    await asyncio.sleep(0)  # a suspension point: a caller's cancellation can land mid-run
    if kind == UNHEALTHY and runs is not None and not runs:
        runs.append(1)
        raise Broken("connection reset")
    if kind == FAILS:
        raise LookupError("no such row")
    return connection.id


def rss_bytes() -> tuple[int, str]:
    """Resident memory now (``/proc/self/statm``), or the peak where that is missing."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"), "current"
    except (OSError, ValueError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return (peak if sys.platform == "darwin" else peak * 1024), "peak"


@dataclass
class Soak:
    """The run's counters, and the done callback that keeps them."""

    window: int
    limit: int = 0
    in_flight: int = 0
    submitted: int = 0
    ends: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    room: asyncio.Event = field(default_factory=asyncio.Event)
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    peak_active: int = 0

    def on_done(self, handle: TaskHandle[Any]) -> None:
        self.ends += 1
        if handle.cancelled():
            self.outcomes["cancelled"] += 1
        else:
            exc = handle.exception()  # retrieved: asyncio would complain about it otherwise
            if exc is None:
                self.outcomes["succeeded"] += 1
            elif isinstance(exc, TaskAbortedError):
                self.outcomes["aborted"] += 1
            elif isinstance(exc, (LookupError, MaxRetriesExceededError)):
                self.outcomes["failed"] += 1
            else:
                self.unexpected[type(exc).__name__] += 1
        self.in_flight -= 1
        if self.in_flight < self.limit:
            self.room.set()
        if not self.in_flight:
            self.drained.set()


class CountingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.levels: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.levels[record.levelname] += 1


async def soak(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    backend = Backend(random.Random(args.seed + 1), args.create_failure_rate)
    log = CountingHandler()
    logger = logging.getLogger("tasker_async")
    logger.addHandler(log)
    logger.propagate = False
    loop = asyncio.get_running_loop()
    loop_errors: list[str] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(str(context.get("message"))))

    manager = AsyncManager(
        Config(
            on_create=backend.create,
            on_destroy=backend.destroy,
            worker_count=WORKERS,
            max_worker_count=MAX_WORKERS,
            resource_pool_size=0,
            check_health=healthy,
            max_retries=3,
            burst_interval=0.01,
            scaling_policy=BacklogPolicy(threshold=256, step=2, cooldown=0.05, idle_grace=0.02),
        )
    )
    run = Soak(window=args.window)
    high, low = args.window, WORKERS
    wave = max(args.tasks // 40, 1000)

    def cancel_after(turns: int, handle: TaskHandle[Any]) -> None:
        if turns:
            loop.call_soon(cancel_after, turns - 1, handle)
        else:
            handle.cancel()

    await manager.start()
    gc.collect()
    rss_start, rss_kind = rss_bytes()
    rss: dict[str, int] = {}
    started = time.perf_counter()
    deadline = None if args.seconds is None else started + args.seconds
    marks = {"warm": 0.10, "middle": 0.50}
    next_report = 0.1
    for i in range(args.tasks):
        if i % wave == 0:
            run.limit = high if (i // wave) % 2 == 0 else low
        while run.in_flight >= run.limit:
            run.room.clear()
            await run.room.wait()
        now = time.perf_counter()
        if deadline is not None and now >= deadline:
            break
        progress = i / args.tasks if deadline is None else max(i / args.tasks, (now - started) / args.seconds)
        for name, at in list(marks.items()):
            if progress >= at:
                gc.collect()
                rss[name] = rss_bytes()[0]
                del marks[name]
        if progress >= next_report:
            print(f"soak: {progress:.0%} ({i:,} tasks, {now - started:.1f} s)", file=sys.stderr, flush=True)
            next_report += 0.1
        draw = rng.random()
        kind = UNHEALTHY if draw < 0.05 else FAILS if draw < 0.10 else OK
        handle = manager.submit_nowait(job, kind, [] if kind == UNHEALTHY else None)
        run.submitted += 1
        run.in_flight += 1
        run.drained.clear()
        handle.add_done_callback(run.on_done)
        if rng.random() < args.cancel_rate:
            cancel_after(rng.randrange(4), handle)
        if not i % 256:
            run.peak_active = max(run.peak_active, manager.stats().active_workers)
    if run.in_flight:
        await run.drained.wait()
    elapsed = time.perf_counter() - started
    for name in marks:  # a run cut short by --seconds before a mark
        rss[name] = rss_bytes()[0]
    gc.collect()
    rss["end"] = rss_bytes()[0]
    stats = manager.stats()
    metrics = manager.metrics()
    await manager.stop()
    await asyncio.sleep(0)  # done callbacks of anything that ended during stop()
    gc.collect()
    rss_after_stop = rss_bytes()[0]

    done = sum(run.outcomes.values()) + sum(run.unexpected.values())
    lost = run.submitted - done
    leaked = backend.created - backend.destroyed
    growth = (rss["end"] - rss["warm"]) / rss["warm"]
    rss_judged = run.submitted >= RSS_CHECKED_FROM
    problems = []
    if lost:
        problems.append(f"{lost} task(s) lost")
    if run.ends != run.submitted:
        problems.append(f"{run.ends} task endings for {run.submitted} tasks")
    if leaked:
        problems.append(f"{leaked} resource(s) leaked")
    if run.unexpected:
        problems.append(f"unexpected outcomes: {dict(run.unexpected)}")
    if loop_errors:
        problems.append(f"{len(loop_errors)} asyncio error(s), first: {loop_errors[0]}")
    if run.outcomes["succeeded"] != metrics.total_tasks_completed:
        problems.append(
            f"metrics count {metrics.total_tasks_completed} successes, the callers {run.outcomes['succeeded']}"
        )
    if rss_judged and growth > args.max_rss_growth:
        problems.append(f"RSS grew {growth:+.1%} after warm-up (limit {args.max_rss_growth:.0%})")

    def mib(n: int) -> str:
        return f"{n / 2**20:.1f} MiB"

    rows = [
        ("tasks submitted", f"{run.submitted:,}"),
        ("succeeded", f"{run.outcomes['succeeded']:,}"),
        ("failed (own error or retries used up)", f"{run.outcomes['failed']:,}"),
        ("cancelled by their callers", f"{run.outcomes['cancelled']:,}"),
        ("aborted", f"{run.outcomes['aborted']:,}"),
        ("tasks lost", f"{lost:,}"),
        ("retries after an unhealthy error", f"{metrics.total_tasks_retried:,}"),
        ("resources created / destroyed", f"{backend.created:,} / {backend.destroyed:,}"),
        ("resources leaked", f"{leaked:,}"),
        ("on_create failures (backed off)", f"{backend.creation_failures:,}"),
        ("burst workers added / retired", f"{stats.burst_workers_added:,} / {stats.burst_workers_retired:,}"),
        ("peak active workers (sampled; ceiling)", f"{run.peak_active} ({MAX_WORKERS})"),
        ("log records", ", ".join(f"{k} {v:,}" for k, v in sorted(log.levels.items())) or "none"),
        (
            f"RSS ({rss_kind}) start / warm (10%) / middle / end",
            " / ".join(mib(n) for n in (rss_start, rss["warm"], rss["middle"], rss["end"])),
        ),
        ("RSS after stop()", mib(rss_after_stop)),
        (
            "RSS growth after warm-up",
            f"{growth:+.1%}" + ("" if rss_judged else f" (not judged: under {RSS_CHECKED_FROM:,} tasks)"),
        ),
        ("elapsed (first submission to last outcome)", f"{elapsed:.1f} s"),
        ("throughput", f"{run.submitted / elapsed:,.0f} tasks/s"),
    ]
    print(
        f"Soak: {args.tasks:,} tasks"
        + (f" or {args.seconds:g} s" if args.seconds is not None else "")
        + f", seed {args.seed}, window {args.window:,}, {WORKERS}-{MAX_WORKERS} workers;"
        f" CPython {platform.python_version()} on {platform.system()} {platform.machine()}, {os.cpu_count()} cores,"
        f" {type(loop).__module__.split('.')[0]} loop"
    )
    print()
    print("| measure | value |")
    print("| --- | ---: |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print()
    print("verdict: " + ("PASS" if not problems else "FAIL: " + "; ".join(problems)))
    # Scaling misbehaviour is shown, not judged: the verdict is about losing and leaking.
    if run.peak_active > MAX_WORKERS:
        print(f"note: {run.peak_active} workers held a resource at once, above max_worker_count={MAX_WORKERS}")
    if stats.burst_workers_added and not stats.burst_workers_retired:
        print(f"note: {stats.burst_workers_added} burst workers were added and none retired in the quiet waves")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000, help="tasks to submit (default 1,000,000)")
    parser.add_argument("--seconds", type=float, default=None, help="stop submitting after this many seconds")
    parser.add_argument("--window", type=int, default=4096, help="most tasks in flight at once (default 4096)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cancel-rate", type=float, default=0.02, help="fraction of callers that give up")
    parser.add_argument("--create-failure-rate", type=float, default=0.01, help="fraction of on_create calls that fail")
    parser.add_argument("--max-rss-growth", type=float, default=0.10, help="allowed RSS growth after warm-up")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    args = parser.parse_args(argv)
    if args.tasks < 1 or (args.seconds is not None and args.seconds <= 0) or args.window < WORKERS:
        parser.error(f"--tasks must be >= 1, --seconds > 0, --window >= {WORKERS}")
    if args.uvloop:
        import uvloop

        return uvloop.run(soak(args))
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
