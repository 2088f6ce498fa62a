"""What a manager's workers, pool and public methods share: its state, its ledger, its workers.

Everything here runs on the event loop's thread. The tasks themselves are
the ledger's (``_core.ledger``): it alone accepts, re-queues and finishes them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Generic, TypeVar

from anyio.abc import TaskGroup

from .._observe.collector import DefaultCollector
from .._observe.events import EventHooks
from .._observe.metrics import MetricsCollector
from .._observe.stats import ManagerState
from ..errors import ManagerNotRunningError, TaskAbortedError
from .cancel import cancel_running
from .ledger import TaskLedger
from .ratelimit import StartLimiter
from .resources import ResourceCallbacks
from .worker import run_worker
from .workers import Worker, WorkerSet

if TYPE_CHECKING:
    from .config import Config, LoggerProtocol

__all__ = ("Runtime",)

R = TypeVar("R")


class Runtime(Generic[R]):
    """Counters, queues and resource lifecycle of one manager."""

    def __init__(self, config: Config[R]) -> None:
        """Take the settings out of ``config`` once, so the hot path reads plain attributes."""
        self.config = config
        self.log: logging.Logger | LoggerProtocol = config.logger or logging.getLogger("tasker_async")
        self.collector: MetricsCollector = config.collector or DefaultCollector()
        self.hooks = EventHooks(tuple(config.hooks), self.log)
        self.ledger = TaskLedger(
            queue_size=config.max_queue_size,
            collector=self.collector,
            hooks=self.hooks,
            default_timeout=config.task_timeout,
            cancel_run=lambda job: cancel_running(self, job),
            refusal=self._retry_refusal,
            drained=self.check_drained,
        )
        self.queue = self.ledger.queue  # read-only here: the ledger owns the lanes
        self.bounded = config.max_queue_size > 0
        self.max_retries = config.max_retries
        self.rng = config.rng or random.Random()
        self.limiter = StartLimiter(config.max_per_second, config.rate_limit_burst) if config.max_per_second else None
        self.resources: ResourceCallbacks[R] = ResourceCallbacks(
            config,
            self.log,
            self.hooks,
            self.rng,
            alive_workers=lambda: self.workers.active,
            running=lambda: self.state == "running",
            breaker_changed=self._breaker_changed,
        )
        self.state: ManagerState = "created"
        self.accepting = False
        self.side_runs = 0  # run_task calls in flight
        assert config.max_worker_count is not None
        self.workers = WorkerSet(max_workers=config.max_worker_count, start=self._start_worker)
        self.tg: TaskGroup | None = None  # the host's task group, while it is open
        self.loop: asyncio.AbstractEventLoop | None = None  # set by start()
        # Set once the host task should cancel the workers: drained while stopping, or killed.
        self.closing = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------

    def run_on(self, loop: asyncio.AbstractEventLoop) -> None:
        """The manager runs on ``loop`` from now on, and accepts tasks."""
        self.loop = loop
        self.set_state("running")

    def host_opened(self, tg: TaskGroup) -> None:
        """Workers start in ``tg``, the host's task group, from now on."""
        self.tg = tg

    def host_closed(self) -> None:
        """The host's task group is closed: the manager is stopping or killed by now, and starts no worker."""
        self.tg = None

    def close(self) -> None:
        """Let the host cancel the workers now (``kill()``)."""
        self.closing.set()

    # -- tasks -------------------------------------------------------------

    def check_drained(self) -> None:
        """Let the host close the workers once a stopping manager has nothing left to do."""
        if self.state == "stopping" and not self.ledger.unfinished and not self.side_runs:
            self.closing.set()

    def side_run_started(self) -> None:
        """A ``run_task`` call is in flight: a stopping manager waits for it."""
        self.side_runs += 1

    def side_run_ended(self) -> bool:
        """A ``run_task`` call ended; returns whether none is left in flight (then see ``check_drained``)."""
        self.side_runs -= 1
        if self.side_runs:
            return False
        self.check_drained()
        return True

    def _retry_refusal(self) -> BaseException | None:
        return self.refusal() if self.resources.breaker_open else None

    def abort_waiting(self) -> None:
        """End every queued and delayed task with ``TaskAbortedError`` (``kill()``)."""
        self.ledger.fail_waiting(TaskAbortedError("the manager was killed before the task ran"), kind="aborted")

    def refusal(self) -> Exception:
        """The error a submission gets while the manager does not accept tasks."""
        if self.resources.breaker_open and self.state == "running":
            return self.resources.breaker_error()
        if self.state == "created":
            return ManagerNotRunningError("the manager is not started: call start() or use 'async with'")
        return ManagerNotRunningError(f"the manager is {self.state} and accepts no new tasks")

    def set_state(self, state: ManagerState) -> None:
        """Move the manager to ``state``; whether it accepts tasks follows from it."""
        self.state = state
        self._derive_accepting()

    def _derive_accepting(self) -> None:
        # Tasks are accepted only while running, and not while the creation breaker is open.
        self.accepting = self.state == "running" and not self.resources.breaker_open

    def _breaker_changed(self, opened: bool) -> None:
        self._derive_accepting()
        if not opened:
            return
        error = self.refusal()
        self.ledger.fail_waiting(error)
        # Submitters waiting for room would wait for good: the queue was just emptied
        # without waking them. They re-check, and get the refusal.
        self.queue.wake_putters()

    # -- workers -------------------------------------------------------------

    def _start_worker(self, worker: Worker) -> None:
        assert self.tg is not None, "workers are only started while the host task group is open"
        self.tg.start_soon(run_worker, self, worker)
