"""``python -m tasker_async worker MODULE[:REGISTRY]``: a manager and a consumer serving a store until a signal.

The first SIGTERM or SIGINT drains: the consumer stops taking jobs, gives back the ones it
took but did not start, and the running ones finish and are recorded; the process then exits 0.
A second signal kills: running jobs are cancelled and given back at once, and the process
exits 130.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from typing import TextIO

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
TICK_LIVE = 0.2  # status refresh on a terminal
TICK_PLAIN = 1.0  # how often a non-terminal output may get a line (only when something changed)


class Shutdown:
    """The signals received so far, and what they have set in motion."""

    def __init__(self, consumer: Consumer, display: Display) -> None:
        self.consumer = consumer
        self.display = display
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
                self.display.event(f"{name} again: killing (running jobs are cancelled and given back)")
                self.killed = True
                await self.consumer.kill()
                self.finished.set()
                return

    async def serve(self) -> None:
        """Serve until ``stop()`` or ``kill()``."""
        await self.consumer.serve_forever()
        if not self.signals:
            self.finished.set()  # stopped from elsewhere: nothing left to wait for

    async def _drain(self) -> None:
        await self.consumer.stop()
        self.finished.set()


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


async def _serve(
    target: WorkerTarget, store: Store, queues: Sequence[str], out: TextIO, health: tuple[str, int] | None
) -> int:
    """Serve until a signal; return the exit code."""
    live = out.isatty()
    display = Display(out, live=live)
    # Installed first: a signal that comes while the store and the manager start is kept, then acted on.
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
        try:
            async with (
                store,
                AsyncManager(target.config) as manager,
                Consumer(store, target.registry, manager, queues=queues) as consumer,
            ):
                shutdown = Shutdown(consumer, display)
                display.event(
                    f"worker {consumer.id} serving {', '.join(queues)} with {target.config.worker_count}"
                    f" worker(s) of {target.module} on {_loop_name()}; SIGTERM or Ctrl-C drains"
                )
                await _run(shutdown, WorkerView(consumer, store, queues), received, live, health)
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
    target: WorkerTarget, store_url: str, queues: Sequence[str], out: TextIO, health: tuple[str, int] | None
) -> int:
    """``_serve``, with bad input, an unreachable store or a health port that cannot be bound told in a line."""
    try:
        store = open_store(store_url)
        try:
            return await _serve(target, store, queues, out, health)
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
    """
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        loaded = load_target(target)
        loaded = WorkerTarget(loaded.module, loaded.registry, with_concurrency(loaded.config, concurrency))
        options = {"use_uvloop": use_uvloop(loop)}
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    served = list(dict.fromkeys(queues)) or default_queues(loaded.registry)
    try:
        return anyio.run(_serve_or_explain, loaded, store_url, served, out, health, backend_options=options)
    except KeyboardInterrupt:  # before the signal handlers were in place
        return KILLED_EXIT
