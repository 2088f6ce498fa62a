"""What the exporters add for a durable consumer: gauges of its queues' counts, a counter of job events.

The durable layer sits above this one, so nothing here imports it: a consumer is whatever has
``queue_stats()``, and a job event is told apart from the manager's own events by its shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, cast

from .exporter_table import Gauge, Metric

__all__ = ("JOB_EVENTS", "JOB_EVENT_KINDS", "QUEUE_GAUGES", "QueueGauge", "QueueSource", "job_event_kind")

JOB_EVENT_KINDS = ("delivered", "redelivered", "acked", "dead", "released")
"""The ``kind``s of a durable ``JobEvent``."""


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
