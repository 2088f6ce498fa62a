"""``Wiring``: what the loops of one consumer share, made once by the consumer and handed to each loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..._api.port import EnginePort
    from .._model.registry import Registry
    from .._stores.protocol import Store
    from .book import Book
    from .outbox import Outbox
    from .wakeup import Wakeup

__all__ = ("Wiring",)


@dataclass(frozen=True, slots=True, kw_only=True)
class Wiring:
    """The parts of one consumer that its claim loop, lease ticks and runner all use.

    Attributes:
        consumer: the consumer's id (``host:pid:random``).
        store: where jobs come from and outcomes go.
        registry: the tasks the consumer runs, by name.
        port: the manager's engine: its free workers, its backlog, its hooks.
        book: the jobs held.
        outbox: outcomes and give-backs on their way to the store.
        queues: the queues served.
        freed: set when a run ends (a worker came free): it wakes the claim loop.
        manager_gone: called once the manager no longer runs.
    """

    consumer: str
    store: Store
    registry: Registry
    port: EnginePort
    book: Book
    outbox: Outbox
    queues: tuple[str, ...]
    freed: Wakeup
    manager_gone: Callable[[], None]

    def leases(self) -> list[float]:
        """The ``lease`` of each registered task and workflow step of the served queues, in seconds."""
        leases = [task.options.lease for task in self.registry if task.queue in self.queues]
        for workflow in self.registry.workflows:
            leases += [step.options.lease for step in workflow.steps.values() if step.queue in self.queues]
        return leases
