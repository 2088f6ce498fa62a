"""``python -m tasker_async demo --durable``: two worker processes share a SQLite queue; one is killed mid-run.

The demo submits a batch of jobs to a SQLite store in a temporary directory, starts two worker
processes (``python -m tasker_async worker tasker_async._cli.demo_tasks``), and SIGKILLs the
first while it runs jobs. Their leases run out, the second worker takes them over and finishes
them. A status line follows every job through the store: queued, and per process running, done
and redelivered. The run ends with a balance line: every job submitted succeeded, none was lost,
none ran to completion twice.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

import anyio

from .._demo import Display
from ..durable import Client, Job, JobInfo, QueueStats, Store, open_store
from . import demo_tasks
from .demo_view import Balance, Process, balance, fair_kill, status_line, tally

__all__ = ("demo", "run")

TASK_SECONDS = (0.4, 1.0)  # each job's simulated work is drawn from this range
TICK_LIVE = 0.1
TICK_PLAIN = 0.5
POLL = 0.05  # seconds between two looks at the jobs: a fair moment to kill is not missed
DEADLINE = 60.0  # seconds the jobs may take in all before the demo gives up on them
STOP_WAIT = 10.0  # seconds a worker may take to drain after SIGTERM


def _package_path() -> str:
    """The directory holding the ``tasker_async`` package, for the worker processes' import path."""
    return str(Path(__file__).resolve().parent.parent.parent)


def _start_worker(url: str, workers: int, folder: Path, label: str, stack: ExitStack) -> subprocess.Popen[bytes]:
    """Start one worker process; its output goes to ``worker-LABEL.log`` in ``folder``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_path(), env.get("PYTHONPATH")]))
    log = stack.enter_context(open(folder / f"worker-{label}.log", "wb"))  # noqa: SIM115 -- closed by the stack
    command = [sys.executable, "-m", "tasker_async", "worker", demo_tasks.__name__, "--store", url]
    command += ["--concurrency", str(workers)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=env)
    stack.callback(_reap, process)
    return process


def _reap(process: subprocess.Popen[bytes]) -> None:
    """Make sure a worker is gone: SIGTERM, then SIGKILL if it does not drain in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


class DemoError(Exception):
    """The demo could not run its scenario; the message says why."""


class Run:
    """One run of the demo: the jobs, the worker processes, the display."""

    def __init__(self, workers: int, display: Display) -> None:
        self.jobs: list[Job[Any]] = []
        self.workers = workers  # in each process
        self.seconds: dict[str, float] = {}  # each job's planned work, by job id
        self.index: dict[str, int] = {}
        self.display = display
        self.processes: list[Process] = []
        self.popen: list[subprocess.Popen[bytes]] = []
        self.began = time.monotonic()
        self.cut_short: dict[str, float] = {}  # job id -> when its worker was killed
        self.taken_over: set[str] = set()

    def add(self, job: Job[Any], seconds: float) -> None:
        """Follow ``job``, planned to work ``seconds``."""
        self.index[job.id] = len(self.jobs)
        self.jobs.append(job)
        self.seconds[job.id] = seconds

    async def infos(self) -> list[JobInfo]:
        return [await job.info() for job in self.jobs]

    def names(self, job_ids: Sequence[str]) -> str:
        return ", ".join(f"#{self.index[job_id]}" for job_id in job_ids)

    def observe(self, infos: Sequence[JobInfo]) -> None:
        """Note worker exits and the killed worker's jobs starting again elsewhere."""
        for process, popen in zip(self.processes, self.popen, strict=True):
            if process.exit_code is None and popen.poll() is not None:
                process.exit_code = popen.returncode
        for info in infos:
            if info.id in self.cut_short and info.id not in self.taken_over and info.deliveries > 1:
                self.taken_over.add(info.id)
                waited = time.monotonic() - self.cut_short[info.id]
                self.display.event(
                    f"job #{self.index[info.id]} started again on another worker {waited:.1f} s after the kill"
                    f" (delivery {info.deliveries})"
                )

    def maybe_kill(self, infos: Sequence[JobInfo]) -> None:
        """Kill worker A while it runs jobs mid-run, once the queue is nearly empty.

        With the queue nearly empty, worker B is free to take A's jobs as soon as their leases expire.
        """
        victim, popen = self.processes[0], self.popen[0]
        counts = tally(infos)
        if victim.killed or victim.exit_code is not None:
            return
        if counts.queued > self.workers:
            return
        held = fair_kill(infos, victim.pid, self.seconds, time.time())
        if not held:
            return
        popen.kill()
        victim.killed = True
        now = time.monotonic()
        self.cut_short.update(dict.fromkeys(held, now))
        self.display.event(
            f"SIGKILL worker A (pid {victim.pid}) while it runs {len(held)} job(s): {self.names(held)};"
            f" their leases ({demo_tasks.LEASE:g} s) run out and worker B takes them over"
        )

    async def follow(self, store: Store, every: float) -> None:
        """Watch every job until all are finished (or the deadline passes); show the status every ``every`` s."""
        shown = -every
        with anyio.move_on_after(DEADLINE):
            while True:
                infos = await self.infos()
                self.observe(infos)
                self.announce(await store.stats("default"))
                self.maybe_kill(infos)
                counts = tally(infos)
                elapsed = time.monotonic() - self.began
                if elapsed - shown >= every or counts.finished == len(self.jobs):
                    self.display.status(status_line(elapsed, counts, self.processes))
                    shown = elapsed
                if counts.finished == len(self.jobs):
                    if not self.processes[0].killed:
                        self.display.event("worker A was never caught mid-run: every job finished before")
                    return
                await anyio.sleep(POLL)
        self.display.event(f"gave up waiting after {DEADLINE:g} s")

    async def wait_serving(self, store: Store) -> None:
        """Wait until every worker process serves (their consumers heartbeat into the store).

        Raises:
            DemoError: a worker exited first, or they took longer than ``DEADLINE``.
        """
        with anyio.move_on_after(DEADLINE):
            while not all(process.serving for process in self.processes):
                self.observe([])
                for process in self.processes:
                    if process.exit_code is not None:
                        raise DemoError(f"worker {process.label} exited ({process.exit_code}) before serving")
                self.announce(await store.stats("default"))
                await anyio.sleep(POLL)
            return
        raise DemoError(f"the workers did not serve within {DEADLINE:g} s")

    def announce(self, stats: QueueStats) -> None:
        """Tell when a worker process's consumer first heartbeats: it is serving."""
        for process in self.processes:
            if not process.serving and any(consumer.pid == process.pid for consumer in stats.consumers):
                process.serving = True
                waited = time.monotonic() - self.began
                self.display.event(f"worker {process.label} (pid {process.pid}) is serving after {waited:.1f} s")

    async def books(self, completions: Path) -> Balance:
        """Check every job through the store: succeeded, with its own result."""
        succeeded = 0
        infos = await self.infos()
        for job, info in zip(self.jobs, infos, strict=True):
            if info.state == "succeeded" and (await job.result())["index"] == self.index[job.id]:
                succeeded += 1
        redelivered = sum(1 for info in infos if info.deliveries > 1)
        path = anyio.Path(completions)
        text = await path.read_text(encoding="utf-8") if await path.exists() else ""
        return balance(len(self.jobs), succeeded, redelivered, text)


async def _submit(client: Client, tasks: int, seed: int | None, completions: Path, run: Run) -> None:
    """Submit the jobs, each with its simulated duration drawn from ``seed``."""
    rng = random.Random(seed)
    for index in range(tasks):
        duration = round(rng.uniform(*TASK_SECONDS), 3)
        job = await client.submit(demo_tasks.render, index, duration, str(completions))
        run.add(job, duration)


def _stop_survivors(run: Run) -> None:
    for process, popen in zip(run.processes, run.popen, strict=True):
        if popen.poll() is None:
            run.display.event(f"SIGTERM worker {process.label} (pid {process.pid}): it drains and exits")
            _reap(popen)
        process.exit_code = popen.returncode


async def demo(*, tasks: int, workers: int, seed: int | None, folder: Path, out: TextIO) -> Balance:
    """Run the demo in ``folder`` (its store, completions and worker logs), writing to ``out``."""
    display = Display(out, live=out.isatty())
    url = f"sqlite:///{folder / 'tasker.db'}"
    every = TICK_LIVE if out.isatty() else TICK_PLAIN
    display.event(f"demo: {tasks} jobs for two worker processes, A and B, sharing {url}; A is killed (SIGKILL) mid-run")
    completions = folder / "completions.log"
    try:
        async with open_store(url) as store, Client(store) as client:
            run = Run(workers, display)
            with ExitStack() as stack:
                for label in "AB":
                    popen = _start_worker(url, workers, folder, label, stack)
                    run.processes.append(Process(label, popen.pid))
                    run.popen.append(popen)
                    display.event(f"worker {label} started (pid {popen.pid}, {workers} workers)")
                # Both serve before any job goes in, so that both get a share however long each took to start.
                await run.wait_serving(store)
                await _submit(client, tasks, seed, completions, run)
                display.event(f"{tasks} jobs submitted")
                await run.follow(store, every)
                _stop_survivors(run)
            infos = await run.infos()
            display.status(status_line(time.monotonic() - run.began, tally(infos), run.processes))
            return await run.books(completions)
    finally:
        display.close()


def _show_logs(folder: Path, out: TextIO) -> None:
    """The tail of each worker's output, to see why a run did not balance."""
    for log in sorted(folder.glob("worker-*.log")):
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        out.write(f"--- {log.name} (last lines)\n" + "".join(f"  {line}\n" for line in lines))


def run(*, tasks: int, workers: int, seed: int | None, out: TextIO) -> int:
    """Run the durable demo; return the exit code (0 if it balances, 1 if not, 130 if interrupted).

    Args:
        tasks: jobs to submit.
        workers: workers in each of the two processes.
        seed: makes the jobs' durations reproducible.
        out: where to write; a terminal gets a live status line.
    """
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tasker-demo-") as name:
        folder = Path(name)
        try:
            books = anyio.run(lambda: demo(tasks=tasks, workers=workers, seed=seed, folder=folder, out=out))
        except KeyboardInterrupt:
            out.write("\ninterrupted: the worker processes were stopped\n")
            return 130
        except DemoError as exc:
            out.write(f"demo failed: {exc}\n")
            _show_logs(folder, out)
            return 1
        out.write(f"summary: {tasks} jobs in {time.monotonic() - began:.1f} s\n{books.line()}\n")
        if not books.balanced:
            _show_logs(folder, out)
        out.flush()
    return 0 if books.balanced else 1
