"""Frozen records the durable layer hands out: job and queue snapshots, errors, events."""

from __future__ import annotations

import traceback as tb
from dataclasses import dataclass
from typing import Literal

__all__ = (
    "FINISHED",
    "ConsumerInfo",
    "ErrorInfo",
    "JobEvent",
    "JobEventKind",
    "JobInfo",
    "JobState",
    "QueueStats",
    "qualified_name",
)

JobState = Literal["queued", "delayed", "running", "succeeded", "failed", "cancelled", "dead"]
"""A job's state: ``queued`` and ``delayed`` wait, ``running`` is held by a consumer, the others are final."""
# The states a job never leaves by itself (``dead`` only by ``requeue_dead``).
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "dead"})
JobEventKind = Literal["delivered", "redelivered", "acked", "dead", "released"]
"""What a ``JobEvent`` tells: a first start, a later start, an outcome recorded, a dead letter, a give-back."""


def qualified_name(kind: type) -> str:
    """``module.QualName`` of a class, as ``ErrorInfo.type`` spells it."""
    return f"{kind.__module__}.{kind.__qualname__}"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What a failed job's task raised (or why a job went dead).

    Attributes:
        type: ``module.QualName`` of the exception class.
        message: ``str(exception)``.
        traceback: the formatted traceback ("" when there is none).
    """

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Describe ``exc``, with its traceback."""
        text = "".join(tb.format_exception(exc))
        return cls(qualified_name(type(exc)), str(exc), text)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobInfo:
    """A snapshot of one stored job.

    Attributes:
        id: the job's id.
        name: its task's registered name.
        queue: the queue it was submitted to.
        state: ``queued``, ``delayed``, ``running``, ``succeeded``, ``failed``, ``cancelled`` or ``dead``.
        deliveries: how many times a consumer started it.
        priority: whether it goes in the priority lane.
        key: its idempotency key, if any.
        created_at: when it was submitted (seconds since the epoch).
        started_at: when its last delivery started, if any.
        finished_at: when it finished, if it did.
        error: for ``failed`` and ``dead`` jobs, why.
        consumer: the id of the consumer that holds or last held it.
    """

    id: str
    name: str
    queue: str
    state: JobState
    deliveries: int
    priority: bool
    key: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: ErrorInfo | None
    consumer: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerInfo:
    """A consumer's heartbeat, as any client sees it.

    Attributes:
        id: the consumer's id.
        host: the machine it runs on.
        pid: its process id.
        started_at: when it started (seconds since the epoch).
        capacity: how many jobs it can run at once (its manager's workers).
        running: how many jobs it runs now.
        heartbeat_at: when it last reported (seconds since the epoch).
        queues: the queues it takes jobs from.
    """

    id: str
    host: str
    pid: int
    started_at: float
    capacity: int
    running: int
    heartbeat_at: float
    queues: tuple[str, ...] = ()

    def heartbeat_age(self, now: float) -> float:
        """Seconds since the last heartbeat, at ``now``."""
        return max(0.0, now - self.heartbeat_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    """The counts of one queue, and the live consumers.

    Attributes:
        ready_priority: ready jobs in the priority lane.
        ready_main: ready jobs in the main lane.
        delayed: jobs whose ``delay`` has not passed.
        running: jobs held by a consumer.
        dead: dead-lettered jobs.
        consumers: the consumers whose heartbeat is recent.
    """

    ready_priority: int
    ready_main: int
    delayed: int
    running: int
    dead: int
    consumers: tuple[ConsumerInfo, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEvent:
    """A durable event, told to the manager's hooks.

    Attributes:
        kind: ``delivered`` (first start), ``redelivered`` (a later start),
            ``acked`` (its outcome recorded), ``dead`` (dead-lettered),
            ``released`` (given back to the store).
        job_id: the job's id.
        name: its task name.
        queue: its queue.
        deliveries: its delivery count at the event.
    """

    kind: JobEventKind
    job_id: str
    name: str
    queue: str
    deliveries: int
