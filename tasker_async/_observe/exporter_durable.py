"""What the exporters add for a durable consumer: gauges of its queues' counts, a counter of job events.

The durable layer sits above this one, so nothing here imports it: a consumer is whatever has
``queue_stats()``, and a job event is told apart from the manager's own events by its shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, cast

from .exporter_table import Gauge, Metric

__all__ = (
    "FLOW_EVENT_KINDS",
    "JOB_EVENTS",
    "JOB_EVENT_KINDS",
    "QUEUE_GAUGES",
    "RUN_EVENTS",
    "STEP_EVENTS",
    "QueueGauge",
    "QueueSource",
    "flow_event",
    "job_event_kind",
)

JOB_EVENT_KINDS = ("delivered", "redelivered", "acked", "dead", "released")
"""The ``kind``s of a durable ``JobEvent``."""
FLOW_EVENT_KINDS = ("started", "succeeded", "failed", "cancelled")
"""The ``kind``s of a workflow's ``StepEvent`` and ``RunEvent``."""


class QueueSource(Protocol):
    """What an exporter reads of a durable consumer."""

    def queue_stats(self) -> Mapping[str, object]:
        """Each served queue's last counts (a ``QueueStats``), by queue name; no I/O."""
        ...


@dataclass(frozen=True, slots=True, eq=False)
class QueueGauge(Gauge):
    """A gauge with a series per queue a consumer serves (and per value of ``label``, if any).

    It reads the mapping ``consumer.queue_stats()`` returns: each series' labels start with ``queue``.
    """

    @property
    def labels(self) -> tuple[str, ...]:
        """``queue``, then ``label`` if there is one."""
        return ("queue",) if self.label is None else ("queue", self.label)

    def read(self, snapshot: object) -> list[tuple[tuple[str, ...], float]]:
        """Each series' label values and reading in ``snapshot``, a ``QueueStats`` by queue name."""
        counts = cast("Mapping[str, object]", snapshot)
        # Gauge.read by name: a slotted dataclass's methods cannot call super() without arguments.
        return [
            ((queue, *values), reading)
            for queue, stats in counts.items()
            for values, reading in Gauge.read(self, stats)
        ]


_JOBS = "{job}"

# Read from consumer.queue_stats(), in the order they are exported. The counts are the store's, shared by
# every consumer of a queue: each process exporting them shows the same numbers.
QUEUE_GAUGES = (
    QueueGauge(
        "durable_ready_jobs",
        "durable.jobs.ready",
        _JOBS,
        "Ready jobs of each queue served, by lane.",
        ("ready_priority", "ready_main"),
        label="lane",
        values=("priority", "main"),
    ),
    QueueGauge(
        "durable_delayed_jobs", "durable.jobs.delayed", _JOBS, "Jobs of each queue served still delayed.", ("delayed",)
    ),
    QueueGauge(
        "durable_running_jobs",
        "durable.jobs.running",
        _JOBS,
        "Jobs of each queue served held by a consumer, in any process.",
        ("running",),
    ),
    QueueGauge("durable_dead_jobs", "durable.jobs.dead", _JOBS, "Dead-lettered jobs of each queue served.", ("dead",)),
)

JOB_EVENTS = Metric(
    "durable_jobs",
    "durable.job.events",
    "{event}",
    "Durable job events in this process, by kind: redelivered counts redeliveries.",
    label="event",
    values=JOB_EVENT_KINDS,
)


def job_event_kind(event: object) -> str | None:
    """The ``kind`` of a durable ``JobEvent``; ``None`` for any other event.

    Told apart by its shape: a ``job_id`` and one of :data:`JOB_EVENT_KINDS` (no event of the
    manager's has both).
    """
    kind = getattr(event, "kind", None)
    return kind if isinstance(kind, str) and kind in JOB_EVENT_KINDS and hasattr(event, "job_id") else None


STEP_EVENTS = Metric(
    "durable_workflow_steps",
    "durable.workflow.step.events",
    "{event}",
    "Workflow step jobs in this process, by what happened: started, or ended succeeded, failed or cancelled.",
    label="event",
    values=FLOW_EVENT_KINDS,
)

RUN_EVENTS = Metric(
    "durable_workflow_runs",
    "durable.workflow.run.events",
    "{event}",
    "Workflow runs this process started (or resumed) or ended, by what happened.",
    label="event",
    values=FLOW_EVENT_KINDS,
)


def flow_event(event: object) -> tuple[Metric, str] | None:
    """The counter and ``kind`` of a workflow's ``StepEvent`` or ``RunEvent``; ``None`` for any other event.

    Told apart by shape: a ``run_id``, and a ``step`` for a step event.
    """
    kind = getattr(event, "kind", None)
    if not isinstance(kind, str) or kind not in FLOW_EVENT_KINDS or not hasattr(event, "run_id"):
        return None
    return (STEP_EVENTS if hasattr(event, "step") else RUN_EVENTS), kind
