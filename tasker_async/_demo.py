"""``python -m tasker_async demo``: a few seconds of a connection pool serving a burst of work.

A pool of simulated connections serves a burst of tasks with random short
durations; burst workers join while the queue grows. A few tasks lose their
connection (an unhealthy error: the connection is replaced and the task
retried), a few fail on their own (a healthy error: the task fails, the
connection stays), and one priority task, submitted halfway, overtakes
everything queued before it. Then ``stop()`` drains the queue. A status line built from ``stats()`` and ``metrics()``
follows it all: rewritten in place on a terminal, printed every half second
otherwise.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, TextIO

from ._api.manager import AsyncManager
from ._core.config import Config
from ._core.handle import TaskHandle
from ._observe.events import LifecycleEvent, ScalingEvent

__all__ = ("DemoSummary", "demo", "run")

TASK_SECONDS = (0.15, 0.55)  # each task's simulated duration is drawn from this range
CONNECT_SECONDS = (0.02, 0.06)
ARRIVAL_GAP_SECONDS = (0.0, 0.03)  # between two submissions: the burst outpaces the pool
TICK_LIVE = 0.1  # status refresh on a terminal
TICK_PLAIN = 0.5  # one status line this often when stdout is not a terminal


class ConnectionLost(Exception):
    """The simulated connection broke; ``check_health`` says to replace it."""


class QueryRejected(Exception):
    """The query failed on its own; the connection is fine."""


@dataclass
class Connection:
    """A simulated connection; the id tells replacements apart."""

    id: int


@dataclass(frozen=True)
class DemoSummary:
    """What the demo did, from the manager's metrics and the connection counts."""

    tasks: int
    completed: int
    failed: int
    retried: int
    created: int
    destroyed: int
    elapsed: float

    @property
    def balanced(self) -> bool:
        """Whether every connection opened was closed."""
        return self.created == self.destroyed


class Display:
    """Event lines, under one status line that a terminal rewrites in place."""

    def __init__(self, out: TextIO, live: bool) -> None:
        """Write to ``out``; ``live`` rewrites the status line in place (carriage return)."""
        self._out = out
        self._live = live
        self._status = ""  # the status line now on screen (live mode)

    def event(self, text: str) -> None:
        """Print one event line; on a terminal, above the status line."""
        if self._live and self._status:
            self._out.write("\r" + " " * len(self._status) + "\r" + text + "\n" + self._status)
        else:
            self._out.write(text + "\n")
        self._out.flush()

    def status(self, text: str) -> None:
        """Show the status: rewrite it on a terminal, else print it as a line."""
        if self._live:
            self._out.write("\r" + text.ljust(len(self._status)))
            self._status = text
        else:
            self._out.write(text + "\n")
        self._out.flush()

    def close(self) -> None:
        """Leave the last status line on screen and move below it."""
        if self._live and self._status:
            self._out.write("\n")
            self._out.flush()
        self._status = ""


class Scenario:
    """The simulated backend: connections, task bodies, and the random plan of the run."""

    def __init__(self, *, tasks: int, seed: int | None, display: Display) -> None:
        """Draw the whole plan up front, so ``seed`` reproduces it whatever the scheduling."""
        rng = random.Random(seed)
        self.display = display
        self.durations = [rng.uniform(*TASK_SECONDS) for _ in range(tasks)]
        self.gaps = [rng.uniform(*ARRIVAL_GAP_SECONDS) for _ in range(tasks)]
        losing = min(tasks, max(1, tasks // 20))
        rejected = min(tasks - losing, tasks // 30)
        picks = rng.sample(range(tasks), losing + rejected)
        self.losing = set(picks[:losing])  # lose their connection on their first run
        self.lost: set[int] = set()
        self.rejected = set(picks[losing:])  # fail with a healthy error
        self._latency = random.Random(rng.random())
        self._ids = itertools.count(1)
        self.created = 0
        self.destroyed = 0
        self.started: set[int] = set()
        self.urgent_at = 0.0
        self.urgent_behind = 0  # tasks submitted before the priority task

    async def connect(self) -> Connection:
        """``on_create``: open a connection after a short simulated handshake."""
        await asyncio.sleep(self._latency.uniform(*CONNECT_SECONDS))
        connection = Connection(next(self._ids))
        self.created += 1
        self.display.event(f"connection #{connection.id} opened")
        return connection

    def close(self, connection: Connection) -> None:
        """``on_destroy``: close a connection."""
        self.destroyed += 1
        self.display.event(f"connection #{connection.id} closed")

    def on_event(self, event: LifecycleEvent) -> None:
        """A lifecycle hook: narrate the burst supervisor's decisions."""
        if isinstance(event, ScalingEvent):
            sign = "+" if event.kind == "scale_up" else "-"
            self.display.event(
                f"scaling: {sign}{event.count} burst worker(s), {event.burst_workers} now ({event.reason})"
            )

    def check_health(self, exc: BaseException) -> bool:
        """``check_health``: a lost connection is unhealthy, any other error is the task's own."""
        return not isinstance(exc, ConnectionLost)

    async def query(self, connection: Connection, task_id: int, seconds: float) -> int:
        """A task: simulated work on ``connection``; may lose it or be rejected."""
        self.started.add(task_id)
        if task_id in self.lost:
            self.display.event(f"task {task_id} retried on connection #{connection.id}")
        await asyncio.sleep(seconds)
        if task_id in self.losing:
            self.losing.discard(task_id)
            self.lost.add(task_id)
            self.display.event(f"task {task_id} lost connection #{connection.id}: unhealthy, so it is replaced")
            raise ConnectionLost(f"connection #{connection.id} lost")
        if task_id in self.rejected:
            self.display.event(f"task {task_id} rejected: a healthy error, the task fails and #{connection.id} stays")
            raise QueryRejected(f"task {task_id} rejected")
        return task_id

    async def urgent(self, connection: Connection) -> None:
        """The priority task: report how many earlier tasks it overtook."""
        waited = time.monotonic() - self.urgent_at
        overtaken = sum(1 for task_id in range(self.urgent_behind) if task_id not in self.started)
        self.display.event(
            f"priority task started on connection #{connection.id} after {waited * 1000:.0f} ms,"
            f" ahead of {overtaken} task(s) queued before it"
        )
        await asyncio.sleep(0.05)


def _status(manager: AsyncManager[Any], max_workers: int, began: float) -> str:
    """One status line from ``stats()`` and ``metrics()``."""
    stats = manager.stats()
    metrics = manager.metrics()
    return (
        f"status t={time.monotonic() - began:4.1f}s state={stats.state:<8}"
        f" workers={stats.active_workers}/{max_workers} burst={stats.burst_workers}"
        f" queued={stats.queued_tasks}+{stats.priority_tasks} running={stats.running_tasks}"
        f" completed={metrics.total_tasks_completed} failed={metrics.total_tasks_failed}"
        f" retried={metrics.total_tasks_retried}"
    )


async def _tick(manager: AsyncManager[Any], display: Display, max_workers: int, began: float, every: float) -> None:
    """Refresh the status line until cancelled."""
    while True:
        display.status(_status(manager, max_workers, began))
        await asyncio.sleep(every)


def _quiet_logger() -> logging.Logger:
    """A logger that drops the manager's records: the demo narrates events itself."""
    logger = logging.getLogger("tasker_async.demo")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


async def _submit_and_drain(
    manager: AsyncManager[Connection], scenario: Scenario, display: Display, tasks: int, handles: list[TaskHandle[Any]]
) -> None:
    """Submit the burst, the priority task halfway through it, then drain the queue with ``stop()``.

    Each handle goes into ``handles`` as soon as it exists, so that an interrupted run still reads its outcome.
    """
    for task_id in range(tasks):
        if task_id == tasks // 2:
            scenario.urgent_at = time.monotonic()
            scenario.urgent_behind = task_id
            queued = manager.stats().queued_tasks
            display.event(f"priority task submitted behind {queued} queued task(s)")
            handles.append(await manager.submit(scenario.urgent, priority=True))
        handles.append(await manager.submit(scenario.query, task_id, scenario.durations[task_id]))
        await asyncio.sleep(scenario.gaps[task_id])
    stats = manager.stats()
    display.event(f"all tasks submitted; stop() drains the {stats.queued_tasks + stats.priority_tasks} still queued")
    await manager.stop()


async def demo(*, tasks: int = 60, workers: int = 4, seed: int | None = None, out: TextIO) -> DemoSummary:
    """Run the demo, writing to ``out``; return what it did.

    Args:
        tasks: tasks in the burst (plus one priority task).
        workers: base workers, one connection each; ``max_worker_count`` is twice that.
        seed: makes the durations and the failing tasks reproducible.
        out: where to write; a terminal gets a live status line.
    """
    display = Display(out, live=out.isatty())
    scenario = Scenario(tasks=tasks, seed=seed, display=display)
    config: Config[Connection] = Config(
        on_create=scenario.connect,
        on_destroy=scenario.close,
        worker_count=workers,
        max_worker_count=2 * workers,
        check_health=scenario.check_health,
        resource_pool_size=0,
        logger=_quiet_logger(),
        hooks=(scenario.on_event,),
    )
    display.event(f"demo: {tasks} tasks + 1 priority task on {workers} connections (seed {seed})")
    began = time.monotonic()
    handles: list[TaskHandle[Any]] = []
    try:
        async with AsyncManager(config) as manager:
            every = TICK_LIVE if out.isatty() else TICK_PLAIN
            ticker = asyncio.ensure_future(_tick(manager, display, 2 * workers, began, every))
            try:
                await _submit_and_drain(manager, scenario, display, tasks, handles)
            finally:
                ticker.cancel()
                await asyncio.wait({ticker})
            display.status(_status(manager, 2 * workers, began))
            metrics = manager.metrics()
    finally:
        display.close()
        # The outcomes are counted in the metrics; reading them keeps asyncio from
        # reporting a never-retrieved exception (after an interrupt, say).
        for handle in handles:
            if handle.done() and not handle.cancelled():
                handle.exception()
    return DemoSummary(
        tasks=len(handles),
        completed=metrics.total_tasks_completed,
        failed=metrics.total_tasks_failed,
        retried=metrics.total_tasks_retried,
        created=scenario.created,
        destroyed=scenario.destroyed,
        elapsed=time.monotonic() - began,
    )


def run(*, tasks: int, workers: int, seed: int | None, out: TextIO) -> int:
    """Run the demo and print its summary; return the exit code (0 if connections balance).

    Args:
        tasks: tasks in the burst.
        workers: base workers.
        seed: the random seed, or ``None``.
        out: where to write.
    """
    summary = asyncio.run(demo(tasks=tasks, workers=workers, seed=seed, out=out))
    balance = "balanced" if summary.balanced else "NOT balanced"
    out.write(
        f"summary: {summary.tasks} tasks in {summary.elapsed:.1f} s\n"
        f"  tasks: completed {summary.completed}, failed {summary.failed}, retried {summary.retried}\n"
        f"  connections: created {summary.created}, destroyed {summary.destroyed} ({balance})\n"
    )
    out.flush()
    return 0 if summary.balanced else 1
