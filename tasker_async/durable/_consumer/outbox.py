"""The outbox: outcomes and give-backs on their way to the store, sent in batches, kept through outages.

Runs end in done callbacks, which cannot await: they leave what to record here and wake the
outbox, which sends everything pending in one ``complete`` call (and one ``release`` call per
kind of give-back). A store that is unavailable keeps it all for the next try, after a capped,
jittered backoff; the jobs stay in the book (their leases renewed) until the store has them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from .._model.errors import StoreUnavailableError
from .backoff import Backoff, Trouble
from .wakeup import Wakeup

if TYPE_CHECKING:
    from .._stores.protocol import Store
    from .._stores.records import Lease, Outcome
    from .book import Book

__all__ = ("Outbox",)


class Outbox:
    """What the store must still be told; :meth:`run` tells it.

    Args:
        store: where outcomes go.
        book: told of each outcome recorded (or refused) and each job given back.
        consumer: the consumer's id, for the log.
    """

    def __init__(self, store: Store, book: Book, consumer: str) -> None:
        """Start empty."""
        self._store = store
        self._book = book
        self._consumer = consumer
        self._outcomes: dict[Lease, Outcome] = {}
        # Leases to give back, by ``started``; dicts keep them in order and once each.
        self._returns: dict[bool, dict[Lease, None]] = {True: {}, False: {}}
        self.wake = Wakeup()
        # The claim loop, while it runs, carries the outcomes to the store with its next claim (one
        # write for both); the outbox then sends only give-backs, and outcomes once it has stopped.
        self.carrier: Wakeup | None = None
        # Set while the claim loop's call in flight is a claim alone: an outcome recorded meanwhile goes at
        # once, in a call of its own, rather than wait for that call's answer (a round trip, under load more).
        self.carrier_busy = False
        self.backoff = Backoff()
        self._trouble = Trouble("recording outcomes")

    def __len__(self) -> int:
        """Outcomes and give-backs not yet recorded."""
        return len(self._outcomes) + len(self._returns[True]) + len(self._returns[False])

    def record(self, outcome: Outcome) -> None:
        """Queue ``outcome`` for the next batch."""
        self._outcomes[outcome.lease] = outcome
        (self._carrier() or self.wake).set()

    def _carrier(self) -> Wakeup | None:
        """The claim loop's wake-up if it takes the outcomes now (see ``carrier_busy``), else None."""
        return None if self.carrier_busy else self.carrier

    def carry(self, carrier: Wakeup | None) -> None:
        """Let ``carrier``'s loop take the outcomes from now on (``None``: the outbox sends them again)."""
        self.carrier = carrier
        self.wake.set()

    def take_outcomes(self) -> list[Outcome]:
        """Hand over every outcome pending, to send now; :meth:`put_back` them if the store refuses the call."""
        outcomes = list(self._outcomes.values())
        self._outcomes.clear()
        return outcomes

    def put_back(self, outcomes: list[Outcome]) -> None:
        """Keep outcomes whose sending failed for the next try (a newer one for the same lease wins)."""
        for outcome in outcomes:
            self._outcomes.setdefault(outcome.lease, outcome)

    def settled(self, outcomes: list[Outcome], recorded: list[bool]) -> None:
        """Tell the book which outcomes the store recorded (the others' leases were lost)."""
        for outcome, done in zip(outcomes, recorded, strict=True):
            self._book.settled(outcome, done)
        # Runs that these outcomes ended (or that this process started) are told after their steps' events.
        self._book.tell_runs(self._store.take_run_events())

    def give_back(self, lease: Lease, *, started: bool) -> None:
        """Queue ``lease``'s job to go back to the store: a run cut short (``started``), or never started."""
        self._returns[started][lease] = None
        self.wake.set()

    def discard(self, lease: Lease) -> None:
        """Forget whatever was queued for ``lease`` (it is no longer held)."""
        self._outcomes.pop(lease, None)
        self._returns[True].pop(lease, None)
        self._returns[False].pop(lease, None)

    async def flush(self) -> None:
        """Send everything pending: one ``complete`` call, then one ``release`` call per kind.

        Shielded: once the store has taken an outcome, the book learns it, even when the outbox is
        cancelled meanwhile (a kill, or its consumer breaking down); an outcome sent again would be
        refused and counted lost.

        Raises:
            Exception: what the store raised; whatever it had not taken stays pending.
        """
        outcomes = self.take_outcomes() if self._carrier() is None else []
        with anyio.CancelScope(shield=True):
            if outcomes:
                try:
                    recorded = await self._store.complete(outcomes)
                except BaseException:
                    self.put_back(outcomes)
                    raise
                self.settled(outcomes, recorded)
            for started in (True, False):
                pending = self._returns[started]
                leases = list(pending)
                if leases:
                    await self._store.release(leases, started=started)
                    for lease in leases:
                        pending.pop(lease, None)
                        self._book.given_back(lease, started=started)
                    self._book.tell_runs(self._store.take_run_events())

    def _sendable(self) -> bool:
        """Whether :meth:`flush` has something to send."""
        return bool(self._returns[True] or self._returns[False] or (self._outcomes and self._carrier() is None))

    async def run(self) -> None:
        """Flush whenever something is pending, retrying while the store is unavailable; runs until cancelled.

        Raises:
            Exception: any other error of the store (retrying it would only hide it).
        """
        while True:
            self.wake.clear()
            if not self._sendable():
                await self.wake.during(anyio.sleep_forever)
                continue
            try:
                await self.flush()
            except StoreUnavailableError as exc:
                self._trouble.failed(exc, self._consumer)
                # Not cut short by new outcomes: the engine is what the outbox waits for.
                await anyio.sleep(self.backoff.next())
                continue
            self.backoff.reset()
            self._trouble.succeeded(self._consumer)
