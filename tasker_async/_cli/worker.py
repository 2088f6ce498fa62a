"""``python -m tasker_async worker MODULE[:REGISTRY]``: a manager and a consumer serving a store until a signal.

The first SIGTERM or SIGINT drains: the consumer stops taking jobs, gives back the ones it
took but did not start, and the running ones finish and are recorded; the process then exits 0.
A second signal kills: running jobs are cancelled and given back at once, and the process
exits 130; so does a drain that outlasts ``--drain-timeout``. A run that ignores its
cancellation cannot hold the process: ``KILL_GRACE`` seconds after a kill, it leaves without it.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import anyio
from anyio.abc import TaskGroup

from .._api.manager import AsyncManager
from .._demo import Display
from ..durable import Consumer, Registry, Store, open_store
from .failures import TOLD, tell
from .health import serve_health
from .loading import UsageError, WorkerTarget, load_target, with_concurrency
from .worker_view import WorkerView

__all__ = ("KILLED_EXIT", "run")

KILLED_EXIT = 130  # as a shell reports a process ended by SIGINT
KILL_GRACE = 5.0  # seconds a kill waits for runs to end before the process leaves without them
TICK_LIVE = 0.2  # status refresh on a terminal
TICK_PLAIN = 1.0  # how often a non-terminal output may get a line (only when something changed)


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """How the worker answers probes and ends: ``run``'s options beyond what it serves."""

    health: tuple[str, int] | None = None
    drain_timeout: float = math.inf


class Shutdown:
    """The signals received so far, and what they have set in motion.

    Args:
        consumer: what a signal drains or kills.
        display: where the process tells what it does.
        outer: a task group that lasts until the manager has exited: the last resort waits there.
        drain_timeout: seconds a drain may take before it turns into a kill.
    """

    def __init__(self, consumer: Consumer, display: Display, outer: TaskGroup, drain_timeout: float) -> None:
        self.consumer = consumer
        self.display = display
        self.outer = outer
        self.drain_timeout = drain_timeout
        self.signals = 0
        self.killed = False
        self.finished = anyio.Event()  # the drain or the kill is over: the process may leave

    @property
    def state(self) -> str:
        """``serving``, ``draining`` or ``killed``."""
        return "killed" if self.killed else "draining" if self.signals else "serving"

    async def watch(self, received: AsyncIterator[signal.Signals], group: TaskGroup) -> None:
        """Drain on the first signal, kill on the second (signals from before the start wait their turn)."""
        async for signum in received:
            self.signals += 1
            name = signal.Signals(signum).name
            if self.signals == 1:
                self.display.event(f"{name}: draining (running jobs finish; {name} again to kill)")
                group.start_soon(self._drain)
            else:
                await self._kill(f"{name} again: killing (running jobs are cancelled and given back)")
                return

    async def serve(self) -> None:
        """Serve until ``stop()`` or ``kill()``."""
        await self.consumer.serve_forever()
        if not self.signals:
            self.finished.set()  # stopped from elsewhere: nothing left to wait for

    async def outlast(self, received: AsyncIterator[signal.Signals], manager: AsyncManager[Any]) -> None:
        """While the manager exits after the consumer: a signal still kills it (a run may outlive its job)."""
        if not self.killed:
            async for signum in received:
                name = signal.Signals(signum).name
                self.display.event(f"{name}: killing (runs still going are cancelled)")
                self.killed = True
                self.outer.start_soon(self._last_resort)
                break
        await manager.kill()

    async def _drain(self) -> None:
        with anyio.move_on_after(self.drain_timeout) as deadline:
            await self.consumer.stop()
        if deadline.cancelled_caught:
            limit = f"--drain-timeout {self.drain_timeout:g} s"
            await self._kill(f"the drain took longer than {limit}: killing (running jobs are cancelled and given back)")
        self.finished.set()

    async def _kill(self, message: str) -> None:
        self.display.event(message)
        self.killed = True
        self.outer.start_soon(self._last_resort)
        await self.consumer.kill()
        self.finished.set()

    async def _last_resort(self) -> None:
        # A run that catches its cancellation and goes on would hold the process forever, though its job was
        # given back (or recorded) already: past the grace, the process leaves without it.
        await anyio.sleep(KILL_GRACE)
        self.display.event(f"runs still going {KILL_GRACE:g} s after the kill ignore their cancellation: exiting now")
        self.display.close()
        os._exit(KILLED_EXIT)


async def _tick(view: WorkerView, shutdown: Shutdown, display: Display, every: float, live: bool) -> None:
    """Refresh the status line (on a terminal), or print it when it changed (elsewhere)."""
    shown = ""
    while True:
        line = await view.line(shutdown.state)
        if live or line != shown:
            display.status(line)
            shown = line
        await anyio.sleep(every)


async def _run(
    shutdown: Shutdown,
    view: WorkerView,
    received: AsyncIterator[signal.Signals],
    live: bool,
    health: tuple[str, int] | None,
) -> None:
    """Serve, show the status, answer health probes and heed signals until the drain or the kill is over."""
    async with anyio.create_task_group() as group:
        if health is not None:
            host, port = await group.start(
                functools.partial(serve_health, shutdown.consumer, host=health[0], port=health[1])
            )
            shutdown.display.event(f"health probes: http://{_url_host(host)}:{port}/health and /ready")
        group.start_soon(shutdown.watch, received, group)
        group.start_soon(shutdown.serve)
        group.start_soon(_tick, view, shutdown, shutdown.display, TICK_LIVE if live else TICK_PLAIN, live)
        await shutdown.finished.wait()
        group.cancel_scope.cancel()
    shutdown.display.status(await view.line("killed" if shutdown.killed else "drained"))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _serve(target: WorkerTarget, store: Store, queues: Sequence[str], out: TextIO, options: Options) -> int:
    """Serve until a signal; return the exit code."""
    live = out.isatty()
    display = Display(out, live=live)
    # Installed first: a signal that comes while the store and the manager start is kept, then acted on.
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        try:
            async with store, anyio.create_task_group() as outer:
                async with (
                    AsyncManager(target.config) as manager,
                    Consumer(store, target.registry, manager, queues=queues) as consumer,
                ):
                    shutdown = Shutdown(consumer, display, outer, options.drain_timeout)
                    display.event(
                        f"worker {consumer.id} serving {', '.join(queues)} with {target.config.worker_count}"
                        f" worker(s) of {target.module} on {_loop_name()}; SIGTERM or Ctrl-C drains"
                    )
                    await _run(shutdown, WorkerView(consumer, store, queues), received, live, options.health)
                    outer.start_soon(shutdown.outlast, received, manager)
                outer.cancel_scope.cancel()  # the manager is out: no last resort needed
        finally:
            display.close()
    return KILLED_EXIT if shutdown.killed else 0


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error a task group wraps (the first, if several)."""
    first = group.exceptions[0]
    return _single(first) if isinstance(first, BaseExceptionGroup) else first


def default_queues(registry: Registry) -> list[str]:
    """``default`` and every queue a task of ``registry`` goes to."""
    return sorted({"default", *(task.queue for task in registry)})


async def _serve_or_explain(
    target: WorkerTarget, store_url: str, queues: Sequence[str], out: TextIO, options: Options
) -> int:
    """``_serve``, with bad input, an unreachable store or a health port that cannot be bound told in a line."""
    health = options.health
    try:
        store = open_store(store_url)
        try:
            return await _serve(target, store, queues, out, options)
        except BaseExceptionGroup as group:
            raise _single(group) from group
    except TOLD as exc:
        return tell(exc)
    except OSError as exc:
        if health is None:
            raise
        sys.stderr.write(f"error: --health-port {health[1]} on {health[0]}: {exc.strerror or exc}\n")
        return 2


def _loop_name() -> str:
    loop = type(asyncio.get_running_loop())
    return "uvloop" if loop.__module__.startswith("uvloop") else "asyncio"


def use_uvloop(loop: str) -> bool:
    """Whether to run on uvloop: ``auto`` takes it when it is installed (as uvicorn does).

    Raises:
        UsageError: ``uvloop`` was asked for and is not installed.
    """
    installed = importlib.util.find_spec("uvloop") is not None
    if loop == "uvloop" and not installed:
        raise UsageError("--loop uvloop: uvloop is not installed (pip install uvloop)")
    return loop == "uvloop" or (loop == "auto" and installed)


def run(
    *,
    target: str,
    store_url: str,
    queues: Sequence[str],
    concurrency: int | None,
    out: TextIO,
    loop: str = "auto",
    health: tuple[str, int] | None = None,
    drain_timeout: float = math.inf,
) -> int:
    """Run a worker; return the exit code (0 after a clean drain, 130 after a kill, 2 for bad input).

    Args:
        target: ``MODULE`` or ``MODULE:REGISTRY``.
        store_url: what ``open_store`` takes.
        queues: the queues to serve (empty: ``default_queues`` of the registry).
        concurrency: overrides the config's ``worker_count``.
        out: where the status goes.
        loop: ``auto`` (uvloop when installed), ``asyncio`` or ``uvloop``.
        health: the host and port to answer health probes on (``health.serve_health``), if any.
        drain_timeout: seconds the drain of the first signal may take before it turns into a kill.
    """
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        loaded = load_target(target)
        loaded = WorkerTarget(loaded.module, loaded.registry, with_concurrency(loaded.config, concurrency))
        backend = {"use_uvloop": use_uvloop(loop)}
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    served = list(dict.fromkeys(queues)) or default_queues(loaded.registry)
    try:
        options = Options(health=health, drain_timeout=drain_timeout)
        return anyio.run(_serve_or_explain, loaded, store_url, served, out, options, backend_options=backend)
    except KeyboardInterrupt:  # before the signal handlers were in place
        return KILLED_EXIT
