"""``RunEventLog``: the run events of one store object's own operations, kept until the consumer takes them.

A consumer tells its manager's hooks of the runs its store object started, resumed or ended (its outcomes
end runs); a process that only starts runs never takes them, so only the newest are kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from ..._model.workflow.records import RunEvent

__all__ = ("KEPT_RUN_EVENTS", "RunEventLog")

KEPT_RUN_EVENTS = 1000
"""How many run events a store object keeps untaken (older ones are dropped)."""


class RunEventLog:
    """Run events, oldest first; adding (from any thread) and taking never lose one of the newest kept."""

    __slots__ = ("_events",)

    def __init__(self) -> None:
        self._events: deque[RunEvent] = deque(maxlen=KEPT_RUN_EVENTS)

    def add(self, events: Iterable[RunEvent]) -> None:
        """Keep ``events`` (after the operation that made them committed)."""
        self._events.extend(events)

    def take(self) -> list[RunEvent]:
        """Every event kept, oldest first; the log is empty afterwards."""
        taken = []
        # popleft one by one: an add from another thread meanwhile is kept for the next take, never lost.
        while self._events:
            taken.append(self._events.popleft())
        return taken
