"""The lease tick: one batched renewal of every lease held, which is also the heartbeat, and the store's chores.

Each tick (a third of the shortest lease held, at most ``plan.MAX_TICK``, or at once when the store
tells of a cancel request to this consumer) renews every lease in one ``renew`` call, cancels the
runs the store was asked to cancel, gives up the runs whose lease was lost, then takes back expired
leases of dead consumers (``reclaim``), tells the manager's scaling policy the shared backlog, reads
the queues' counts for exporters (at most once a second), and now and then purges expired results.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .._model.errors import StoreUnavailableError
from .._stores.records import Outcome
from .backoff import Trouble, log
from .gauges import QueueCounts
from .plan import PURGE_EVERY, lease_tick
from .wakeup import Wakeup

if TYPE_CHECKING:
    from .._model.records import ConsumerInfo
    from .._stores.records import Lease, Renewal
    from .runs import Runner
    from .wiring import Wiring

__all__ = ("Leaser",)


class Leaser:
    """Runs the lease ticks until cancelled; ``backlog`` and ``counts`` are what the store last told of the queues.

    Tell :meth:`claimed` the leases of jobs claimed: the next tick may be due sooner.

    Args:
        wiring: the parts of the consumer (the manager is told the backlog through its port;
            pending outcomes of a lost lease are dropped from the outbox).
        runner: cancels runs.
        heartbeat: this consumer's info, as of now.
    """

    def __init__(self, wiring: Wiring, runner: Runner, *, heartbeat: Callable[[], ConsumerInfo]) -> None:
        """Wire the ticks; nothing happens until :meth:`tick` or :meth:`run`."""
        self._wiring = wiring
        self._runner = runner
        self._heartbeat = heartbeat
        self.wake = Wakeup()
        self.backlog = 0
        self.counts = QueueCounts(wiring.store, wiring.queues)
        self._next_purge = 0.0
        self._last_tick = -math.inf
        self._trouble = Trouble("renewing leases")
        self.heartbeat_at: float | None = None  # when the last heartbeat reached the store
        self._asked = False  # whether the store told of a cancel request during the last wait

    async def run(self) -> None:
        """Tick until cancelled; at once when the store tells of a cancel request to this consumer."""
        while True:
            # A job claimed meanwhile may have a shorter lease than any held so far: woken, look again.
            while (left := self._due() - anyio.current_time()) > 0:
                self.wake.clear()
                self._asked = False
                await self.wake.during(self._cancel_request, left)
                if self._asked:
                    break  # the renewal tells which run to cancel: it need not wait for the tick
            await self.tick()

    async def _cancel_request(self, seconds: float) -> None:
        wiring = self._wiring
        try:
            self._asked = await wiring.store.wait_cancel_request(wiring.consumer, seconds)
        except StoreUnavailableError:
            await anyio.sleep(seconds)  # no word of requests for now: the tick brings them

    def claimed(self, lease: float) -> None:
        """Jobs with leases of ``lease`` seconds (or more) were claimed: tick sooner if they need it."""
        if self._last_tick + lease_tick([lease]) < self._due():
            self.wake.set()

    def _due(self) -> float:
        return self._last_tick + self._interval()

    def every(self) -> float:
        """Seconds between ticks now."""
        return self._interval()

    def _interval(self) -> float:
        # The registry's leases count too: the jobs of a consumer that died are taken back by
        # the others' ticks, which must come often enough for the shortest lease they may hold.
        return lease_tick([*self._wiring.book.lease_times(), *self._wiring.leases()])

    async def tick(self) -> None:
        """Renew, heartbeat and do the chores once.

        Raises:
            Exception: what the store raised, but for ``StoreUnavailableError`` (logged: the next
                tick tries again).
        """
        self._last_tick = anyio.current_time()
        consumer = self._heartbeat()
        try:
            await self._tick(consumer)
        except StoreUnavailableError as exc:
            self._trouble.failed(exc, consumer.id)
        else:
            self.heartbeat_at = consumer.heartbeat_at
            self._trouble.succeeded(consumer.id)
        if not self._wiring.port.running:
            self._wiring.manager_gone()

    async def _tick(self, consumer: ConsumerInfo) -> None:
        store = self._wiring.store
        sent = self._wiring.book.leases()
        renewal = await store.renew(consumer, sent)
        self._apply(renewal, sent, consumer.id)
        # After our own renewal, so a slow tick never takes back a lease of ours.
        await store.reclaim()
        self.backlog = await store.backlog(self._wiring.queues)
        self._wiring.port.set_backlog(self.backlog)
        await self.counts.refresh()
        now = time.monotonic()
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY
            await store.purge()

    def _apply(self, renewal: Renewal, sent: list[Lease], consumer: str) -> None:
        """Give up the runs whose lease was lost; cancel those asked to be cancelled."""
        if not renewal.lost and not renewal.cancelled:
            return
        # Only the leases this renewal was about: a job lost and claimed again meanwhile holds a new one.
        by_id = {lease.job_id: lease for lease in sent}
        book, outbox, runner = self._wiring.book, self._wiring.outbox, self._runner
        for job_id in renewal.lost:
            lease = by_id.get(job_id)
            entry = None if lease is None else book.entry(lease)
            if lease is None or entry is None or (entry.handle is not None and entry.handle.done()):
                # Its run has ended: its outcome, maybe already recorded by a call that reached the engine
                # before this renewal, learns from its own answer whether the lease still held.
                continue
            held = book.lose(lease)
            if held is None:
                continue
            outbox.discard(lease)
            runner.cancel(held, "lost")
            log.warning(
                "consumer %s lost its lease on job %s (%s): its run is given up", consumer, job_id, held.claim.name
            )
        for job_id in renewal.cancelled:
            lease = by_id.get(job_id)
            held = None if lease is None else book.entry(lease)
            if lease is None or held is None:
                continue
            if held in book.waiting:
                book.unstart(held)  # never started: it ends cancelled without a run
                outbox.record(Outcome(lease=lease, state="cancelled"))
            elif runner.cancel(held, "cancel") and log.isEnabledFor(logging.DEBUG):
                log.debug("consumer %s cancelled the run of job %s on request", consumer, job_id)
