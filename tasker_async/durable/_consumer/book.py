"""The book of a consumer: every job it holds, from its claim until the store has its outcome, and the counts.

A job stays in the book (and its lease is renewed) until its outcome or its give-back is
recorded, not merely until its run ends: an outcome waiting out an engine outage must not
lose its lease meanwhile. Each entry is matched by its lease token as well as its id: a
job lost and claimed again by the same consumer is a new entry.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

from .._model.records import ErrorInfo, JobEvent, JobEventKind
from .._model.workflow.records import RunEvent, StepEvent, StepEventKind
from .stats import ConsumerStats
from .wakeup import Wakeup

if TYPE_CHECKING:
    from ..._api.port import EnginePort
    from ..._core.handle import TaskHandle
    from .._model.registry import DurableTask
    from .._model.serializer import Call
    from .._stores.records import Claim, Lease, Outcome
    from .steps import StepTag

__all__ = ("Book", "Fate", "Held")

# The step event an outcome recorded tells: a dead step job failed its step.
_STEP_KINDS: dict[str, StepEventKind] = {
    "succeeded": "succeeded",
    "failed": "failed",
    "dead": "failed",
    "cancelled": "cancelled",
}

# Why a run was cancelled by the consumer itself: a cancellation request from the store
# (record ``cancelled``), a lost lease (record nothing), or a kill (give it back).
Fate = Literal["cancel", "lost", "kill"]


class Held:
    """One claimed job: what to run, and its run once started."""

    __slots__ = ("call", "claim", "fate", "handle", "split", "step", "task")

    def __init__(self, claim: Claim) -> None:
        """Hold ``claim``; the task and its decoded call come once checked."""
        self.claim = claim
        self.task: DurableTask[Any, Any, Any] | None = None
        self.call: Call | None = None
        self.handle: TaskHandle[Any] | None = None  # set when submitted to the manager
        self.fate: Fate | None = None
        self.split = False  # a run step that some step maps over: its result goes to the store element by element
        self.step: StepTag | None = None  # a run step's job: which run, step and item

    @property
    def running(self) -> bool:
        """Whether its run is on the manager and not over."""
        return self.handle is not None and not self.handle.done()


class Book:
    """The jobs a consumer holds and what it has done with them; ``changed`` is set whenever one leaves."""

    def __init__(self, port: EnginePort) -> None:
        """Start empty; ``port`` carries the job events to the manager's hooks."""
        self._port = port
        self.held: dict[str, Held] = {}
        self.waiting: deque[Held] = deque()  # claimed, checked, not started (prefetch)
        self.running = 0
        self.changed = Wakeup()
        self.claimed = self.delivered = self.redelivered = 0
        self.acked = self.dead = self.released = self.lost = 0

    def __len__(self) -> int:
        """Jobs held."""
        return len(self.held)

    def hold(self, claim: Claim) -> Held:
        """Enter a job just claimed."""
        held = self.held[claim.id] = Held(claim)
        self.claimed += 1
        return held

    def entry(self, lease: Lease) -> Held | None:
        """The entry holding ``lease`` (id and token), if it is still held."""
        held = self.held.get(lease.job_id)
        return held if held is not None and held.claim.token == lease.token else None

    def leases(self) -> list[Lease]:
        """Every lease held."""
        return [held.claim.hold for held in self.held.values()]

    def lease_times(self) -> list[float]:
        """The ``lease`` of every job held, in seconds."""
        return [held.claim.lease for held in self.held.values()]

    def started(self, held: Held, handle: TaskHandle[Any]) -> None:
        """``held`` was submitted to the manager: a delivery starts."""
        held.handle = handle
        self.running += 1
        first = held.claim.deliveries <= 1
        if first:
            self.delivered += 1
        else:
            self.redelivered += 1
        self._tell("delivered" if first else "redelivered", held.claim, held.claim.deliveries)
        if held.step is not None:
            self._tell_step("started", held, None)

    def ended(self) -> None:
        """A run ended (its outcome may still wait to be recorded)."""
        self.running -= 1

    def settled(self, outcome: Outcome, recorded: bool) -> None:
        """The store took ``outcome`` (``recorded``), or refused it: the lease was lost meanwhile."""
        held = self._forget(outcome.lease)
        if held is None:
            return
        if not recorded:
            self.lost += 1
        elif outcome.state == "dead":
            self.dead += 1
            self._tell("dead", held.claim, held.claim.deliveries)
        else:
            self.acked += 1
            self._tell("acked", held.claim, held.claim.deliveries)
        if recorded and held.step is not None:
            self._tell_step(_STEP_KINDS[outcome.state], held, outcome.error)

    def tell_runs(self, events: list[RunEvent]) -> None:
        """Tell the hooks of the runs the store object started, resumed or ended."""
        if events and self._port.listening:
            for event in events:
                self._port.emit(event)

    def given_back(self, lease: Lease, *, started: bool) -> None:
        """The store took ``lease``'s job back; an unstarted one has its delivery taken back."""
        held = self._forget(lease)
        if held is not None:
            self.released += 1
            deliveries = held.claim.deliveries if started else held.claim.deliveries - 1
            self._tell("released", held.claim, deliveries)

    def lose(self, lease: Lease) -> Held | None:
        """The lease is no longer ours: forget the job (its caller cancels its run) and return its entry."""
        held = self._forget(lease)
        if held is not None:
            self.lost += 1
        return held

    def unstart(self, held: Held) -> None:
        """Take ``held`` out of the prefetched jobs (it will be given back or settled without a run)."""
        if held in self.waiting:
            self.waiting.remove(held)

    def _forget(self, lease: Lease) -> Held | None:
        held = self.entry(lease)
        if held is None:
            return None
        del self.held[lease.job_id]
        self.unstart(held)
        self.changed.set()
        return held

    def _tell(self, kind: JobEventKind, claim: Claim, deliveries: int) -> None:
        port = self._port
        if port.listening:
            event = JobEvent(kind=kind, job_id=claim.id, name=claim.name, queue=claim.queue, deliveries=deliveries)
            port.emit(event)

    def _tell_step(self, kind: StepEventKind, held: Held, error: ErrorInfo | None) -> None:
        port, tag = self._port, held.step
        if port.listening and tag is not None:
            event = StepEvent(
                kind=kind,
                run_id=tag.run_id,
                workflow=tag.workflow,
                step=tag.step,
                job_id=held.claim.id,
                item=tag.item,
                attempt=held.claim.deliveries,
                at=time.time(),
                error=error,
            )
            port.emit(event)

    def stats(self, unrecorded: int) -> ConsumerStats:
        """A snapshot of the counts; ``unrecorded`` is the outbox's."""
        return ConsumerStats(
            claimed=self.claimed,
            prefetched=len(self.waiting),
            running=self.running,
            unrecorded=unrecorded,
            delivered=self.delivered,
            redelivered=self.redelivered,
            acked=self.acked,
            dead=self.dead,
            released=self.released,
            lost=self.lost,
        )
