"""The last counts of the queues a consumer serves, read now and then so exporters can read them at scrape time.

An exporter's gauges are read synchronously, at a scrape, where no store call can be made; the
lease tick refreshes these counts instead, at most every ``STATS_EVERY`` seconds, so however
often the ticks come (a short lease makes them frequent) the store answers one ``stats`` call
per queue per second at the most.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING

from .backoff import log

if TYPE_CHECKING:
    from .._model.records import QueueStats
    from .._stores.protocol import Store

__all__ = ("STATS_EVERY", "QueueCounts")

# Seconds between two reads of the queues' counts: gauges a second old are fresh enough to scrape.
STATS_EVERY = 1.0


class QueueCounts:
    """The counts of ``queues`` as last read from ``store``; ``snapshot`` is empty until the first read."""

    def __init__(self, store: Store, queues: Sequence[str]) -> None:
        """Read nothing yet."""
        self._store = store
        self._queues = tuple(queues)
        self._next = -math.inf  # monotonic time of the next read due
        self.snapshot: Mapping[str, QueueStats] = MappingProxyType({})

    async def refresh(self) -> None:
        """Read every queue's counts if ``STATS_EVERY`` has passed since the last try.

        A failed read keeps the last snapshot, and waits out ``STATS_EVERY`` too: an engine in
        trouble gets no extra calls. It is logged at DEBUG only: an outage fails the tick's own
        calls first, and those are reported.
        """
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + STATS_EVERY
        try:
            fresh = {queue: await self._store.stats(queue) for queue in self._queues}
        except Exception as exc:
            log.debug("queue counts not read, the last ones stay: %r", exc)
            return
        # Replaced whole, never updated in place: a scrape sees one read, all queues of the same moment.
        self.snapshot = MappingProxyType(fresh)
