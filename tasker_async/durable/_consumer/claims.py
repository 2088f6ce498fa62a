"""The claim loop: take from the store only what the manager can start, check each job, hand it to the runner.

It claims ``free workers + prefetch - held unstarted`` jobs (``plan.claim_limit``), so idle
consumers elsewhere share the work; when nothing is ready it waits in the store's
``wait_ready``, and a run ending (a worker freed) cuts any wait short.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import anyio

from .._model.serializer import decode_call
from .backoff import Backoff, Trouble
from .outcomes import undecodable, unknown_task
from .plan import IDLE_WAIT, claim_limit, full_wait

if TYPE_CHECKING:
    from ..._api.port import EnginePort
    from .._model.registry import Registry
    from .._stores.protocol import Store
    from .._stores.records import Claim, Outcome
    from .book import Book
    from .outbox import Outbox
    from .runs import Runner
    from .wakeup import Wakeup

__all__ = ("Claimer",)


class Claimer:
    """Runs the claim loop until :meth:`close`; ``done`` is set once it has returned.

    Args:
        store: where jobs come from.
        registry: the task names this consumer runs.
        port: the manager's free workers.
        book: the jobs held.
        outbox: takes the outcomes of jobs that cannot run.
        runner: starts the jobs.
        wake: set when a run ends (a worker may be free).
        claimed: told the shortest lease of each batch claimed (the next lease tick may be due sooner).
        consumer: this consumer's id.
        queues: the queues to take from.
        prefetch: jobs to hold beyond the free workers.
        backlog: the store's last known backlog (from the lease ticks).
        manager_gone: called once the manager no longer runs.
    """

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        port: EnginePort,
        book: Book,
        outbox: Outbox,
        runner: Runner,
        wake: Wakeup,
        claimed: Callable[[float], None],
        consumer: str,
        queues: Sequence[str],
        prefetch: int,
        backlog: Callable[[], int],
        manager_gone: Callable[[], None],
    ) -> None:
        """Wire the loop; it claims nothing until :meth:`run`."""
        self._store = store
        self._registry = registry
        self._port = port
        self._book = book
        self._outbox = outbox
        self._runner = runner
        self.wake = wake
        self._claimed = claimed
        self._consumer = consumer
        self._queues = list(queues)
        self._prefetch = prefetch
        self._backlog = backlog
        self._manager_gone = manager_gone
        self.closing = False
        self.done = anyio.Event()
        self._backoff = Backoff()
        self._trouble = Trouble("claiming jobs")

    def close(self) -> None:
        """Stop claiming: the loop returns after the store call in flight, if any (a claim is never dropped)."""
        self.closing = True
        self._runner.closed = True
        self.wake.set()

    async def run(self) -> None:
        """Claim and start jobs until closed, or until the manager stops; carry the outcomes meanwhile."""
        self._outbox.carry(self.wake)
        try:
            await self._loop()
        finally:
            self._outbox.carry(None)
            self.done.set()

    async def _loop(self) -> None:
        port, book, wake = self._port, self._book, self.wake
        woken = False
        while not self.closing:
            if not port.running:
                self._manager_gone()
                return
            wake.clear()
            self._runner.start_waiting()
            limit = claim_limit(port.free_workers(), self._prefetch, len(book.waiting))
            outcomes = self._outbox.take_outcomes()
            if limit == 0 and not outcomes:
                woken = await wake.sleep(full_wait(self._backlog(), woken))
                continue
            try:
                claims = await self._exchange(outcomes, limit)
            except Exception as exc:
                await self._failed(exc)
                continue
            self._backoff.reset()
            self._trouble.succeeded(self._consumer)
            if claims:
                self._claimed(min(claim.lease for claim in claims))
                self._take(claims)
            woken = False
            if len(claims) < limit:
                # Nothing more is ready: wait for the store, or for a run to end.
                try:
                    woken = await wake.during(self._store.wait_ready, self._queues, IDLE_WAIT)
                except Exception as exc:
                    await self._failed(exc)

    async def _exchange(self, outcomes: list[Outcome], limit: int) -> list[Claim]:
        """Record ``outcomes`` and claim up to ``limit`` jobs, in one store call when there are outcomes."""
        if not outcomes:
            return await self._store.claim(self._consumer, self._queues, limit)
        try:
            recorded, claims = await self._store.complete_and_claim(outcomes, self._consumer, self._queues, limit)
        except BaseException:
            self._outbox.put_back(outcomes)
            raise
        self._outbox.settled(outcomes, recorded)
        return claims

    def _take(self, claims: list[Claim]) -> None:
        """Enter each claimed job in the book; those that cannot run get their outcome, the rest start."""
        book, outbox = self._book, self._outbox
        serializer = self._store.serializer
        for claim in claims:
            held = book.hold(claim)
            if self.closing:
                outbox.give_back(claim.hold, started=False)  # claimed while stopping: never started
                continue
            task = self._registry.get(claim.name)
            if task is None:
                outbox.record(unknown_task(claim, [known.name for known in self._registry]))
                continue
            try:
                call = decode_call(serializer, claim.payload)
            except ValueError as exc:
                outbox.record(undecodable(claim, exc, serializer))
                continue
            held.task, held.call = task, call
            book.waiting.append(held)
        self._runner.start_waiting()

    async def _failed(self, exc: Exception) -> None:
        """A store call failed: wait a backoff delay, cut short only by :meth:`close` (not by runs ending)."""
        self._trouble.failed(exc, self._consumer)
        deadline = anyio.current_time() + self._backoff.next()
        while not self.closing and (left := deadline - anyio.current_time()) > 0:
            self.wake.clear()
            await self.wake.sleep(left)
