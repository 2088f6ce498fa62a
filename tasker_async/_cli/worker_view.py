"""A worker's status line: the store's queue depths, and what this process's consumer holds and has done."""

from __future__ import annotations

from collections.abc import Sequence

from ..durable import Consumer, Store

__all__ = ("WorkerView",)


class WorkerView:
    """Builds the status line of one worker process."""

    def __init__(self, consumer: Consumer, store: Store, queues: Sequence[str]) -> None:
        self._consumer = consumer
        self._store = store
        self._queues = tuple(queues)

    async def queued(self) -> str:
        """Jobs waiting in the served queues (ready and delayed), or why the store did not say."""
        try:
            total = 0
            for queue in self._queues:
                stats = await self._store.stats(queue)
                total += stats.ready_priority + stats.ready_main + stats.delayed
        except Exception as exc:
            # The status line must outlive an engine outage; the consumer rides it out by itself.
            return f"? ({type(exc).__name__})"
        return str(total)

    async def line(self, state: str) -> str:
        """``state``, then queued (store-wide), then running, done and redelivered in this process."""
        stats = self._consumer.stats()
        extra = "".join(
            f" {name}={count}"
            for name, count in (("dead", stats.dead), ("lost", stats.lost), ("unrecorded", stats.unrecorded))
            if count
        )
        return (
            f"worker {self._consumer.id} {state:<8} queued={await self.queued()} running={stats.running}"
            f" done={stats.acked} redelivered={stats.redelivered} released={stats.released}{extra}"
        )
