"""Cancel requests told to the consumer that runs the job: its next renewal need not wait for the lease tick.

A running job is cancelled by a flag on the job, which the consumer holding it reads with its next renewal
(``Store.renew``); its lease tick comes at least every ``plan.MAX_TICK``. An engine that can push tells
the holder as well: the store object of that consumer wakes its ``wait_cancel_request``, and the consumer
renews at once. The flag stays what decides; a request told here only brings the renewal forward, so one
lost (a listener reconnecting) costs a tick's delay, never the cancel.
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio

__all__ = ("CancelRequests",)


class CancelRequests:
    """The consumers waiting here for cancel requests, each with an event set once one is told to it.

    A request told while its consumer is not waiting (it is renewing, say) is kept until its next wait,
    which then returns at once. Requests for consumers that never waited here (they run in other
    processes) are dropped: every listener hears them all.
    """

    __slots__ = ("_events",)

    def __init__(self) -> None:
        self._events: dict[str, anyio.Event] = {}

    def __repr__(self) -> str:
        return f"CancelRequests(consumers={len(self._events)})"

    def told(self, consumers: Iterable[str]) -> None:
        """A running job of each of ``consumers`` was asked to be cancelled."""
        for consumer in consumers:
            event = self._events.get(consumer)
            if event is not None:
                event.set()

    def told_all(self) -> None:
        """Requests may have been missed (the listener was away): every consumer waiting here renews."""
        for event in self._events.values():
            event.set()

    async def wait(self, consumer: str, timeout: float) -> bool:
        """Wait ``timeout`` seconds at most for a request to ``consumer``; True when one came (it is taken)."""
        event = self._events.get(consumer)
        if event is None:
            event = self._events[consumer] = anyio.Event()
        if not event.is_set():
            with anyio.move_on_after(timeout):
                await event.wait()
        if not event.is_set():
            return False
        # Taken: an anyio event cannot be cleared, so the next wait gets a fresh one. Nothing runs between the
        # wake-up and this line, so no request is lost in between.
        self._events[consumer] = anyio.Event()
        return True

    def forget(self, consumer: str) -> None:
        """``consumer`` left: stop keeping its requests."""
        self._events.pop(consumer, None)
