"""The claim loop: take from the store only what the manager can start, check each job, hand it to the runner.

It claims ``free workers + prefetch - held unstarted`` jobs (``plan.claim_limit``), so idle
consumers elsewhere share the work; when nothing is ready it waits in the store's
``wait_ready``, and a run ending (a worker freed) cuts any wait short.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from .._model.errors import StoreUnavailableError
from .._model.serializer import decode_call
from .backoff import Backoff, Trouble
from .outcomes import undecodable, unknown_task
from .plan import IDLE_WAIT, claim_limit, full_wait
from .steps import step_job

if TYPE_CHECKING:
    from .._stores.records import Claim, Outcome
    from .leases import Leaser
    from .runs import Runner
    from .wiring import Wiring

__all__ = ("Claimer",)


class Claimer:
    """Runs the claim loop until :meth:`close`; ``done`` is set once it has returned.

    A store that is unavailable is retried after a backoff; any other error of the store ends
    the loop (and the consumer): retrying it would only hide it.

    Args:
        wiring: the parts of the consumer; ``wiring.freed`` wakes the loop.
        runner: starts the jobs.
        leaser: told the shortest lease of each batch claimed (the next tick may be due sooner);
            tells the store's last known backlog.
        prefetch: jobs to hold beyond the free workers.
    """

    def __init__(self, wiring: Wiring, runner: Runner, leaser: Leaser, *, prefetch: int) -> None:
        """Wire the loop; it claims nothing until :meth:`run`."""
        self._wiring = wiring
        self._runner = runner
        self._leaser = leaser
        self._prefetch = prefetch
        self.wake = wiring.freed
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
        outbox = self._wiring.outbox
        outbox.carry(self.wake)
        try:
            await self._loop()
            await self._withdraw()
        finally:
            outbox.carry(None)
            self.done.set()

    async def _withdraw(self) -> None:
        """End the offer the last claim may have left (``waits``): a job stored from now on is not handed here.

        The jobs handed meanwhile land in the book, given back unstarted (the claimer is closed). If the store
        is away (or the loop broke down, and this is not reached), ``leave`` sees to them.
        """
        wiring = self._wiring
        self.closing = True
        with anyio.CancelScope(shield=True):
            try:
                claims = await wiring.store.claim(wiring.consumer, wiring.queues, 0)
            except StoreUnavailableError:
                return
        self._take(claims)

    async def _loop(self) -> None:
        wiring, wake = self._wiring, self.wake
        port, book = wiring.port, wiring.book
        woken = False
        while not self.closing:
            if not port.running:
                wiring.manager_gone()
                return
            wake.clear()
            self._runner.start_waiting()
            limit = claim_limit(port.free_workers(), self._prefetch, len(book.waiting))
            outcomes = wiring.outbox.take_outcomes()
            if limit == 0 and not outcomes:
                woken = await wake.sleep(full_wait(self._leaser.backlog, woken))
                continue
            try:
                claims = await self._exchange(outcomes, limit)
            except StoreUnavailableError as exc:
                await self._failed(exc)
                continue
            self._backoff.reset()
            self._trouble.succeeded(wiring.consumer)
            if claims:
                self._leaser.claimed(min(claim.lease for claim in claims))
                self._take(claims)
            woken = False
            if len(claims) < limit:
                # Nothing more is ready: wait for the store, or for a run to end.
                try:
                    woken = await wake.during(wiring.store.wait_ready, wiring.queues, IDLE_WAIT)
                except StoreUnavailableError as exc:
                    await self._failed(exc)

    async def _exchange(self, outcomes: list[Outcome], limit: int) -> list[Claim]:
        """Record ``outcomes`` and claim up to ``limit`` jobs, in one store call when there are outcomes.

        Shielded, like every call to the store whose answer changes the book: once the store has
        done it, the book learns it, even when the loop is cancelled meanwhile (its consumer broke
        down). The jobs claimed then land in the book, to be given back on the way out, rather than
        stay running in the store until their leases expire.
        """
        wiring = self._wiring
        with anyio.CancelScope(shield=True):
            if not outcomes:
                wiring.outbox.carrier_busy = True  # a run ending meanwhile has its outcome sent at once
                try:
                    claims = await wiring.store.claim(wiring.consumer, wiring.queues, limit, waits=True)
                finally:
                    wiring.outbox.carrier_busy = False
            else:
                try:
                    recorded, claims = await wiring.store.complete_and_claim(
                        outcomes, wiring.consumer, wiring.queues, limit, waits=True
                    )
                except BaseException:
                    wiring.outbox.put_back(outcomes)
                    raise
                wiring.outbox.settled(outcomes, recorded)
        return claims

    def _take(self, claims: list[Claim]) -> None:
        """Enter each claimed job in the book; those that cannot run get their outcome, the rest start."""
        book, outbox, registry = self._wiring.book, self._wiring.outbox, self._wiring.registry
        serializer = self._wiring.store.serializer
        for claim in claims:
            held = book.hold(claim)
            if self.closing:
                outbox.give_back(claim.hold, started=False)  # claimed while stopping: never started
                continue
            task = registry.get(claim.name)
            step = registry.step_task(claim.name) if task is None else None
            if task is None and step is None:
                outbox.record(unknown_task(claim, [known.name for known in registry]))
                continue
            try:
                if step is not None:
                    job = step_job(step, claim.payload, serializer)
                    held.task, held.call, held.split, held.step = job.task, job.call, job.split, job.tag
                else:
                    held.task, held.call = task, decode_call(serializer, claim.payload)
            except ValueError as exc:
                outbox.record(undecodable(claim, exc, serializer))
                continue
            book.waiting.append(held)
        self._runner.start_waiting()

    async def _failed(self, exc: StoreUnavailableError) -> None:
        """The store was unavailable: wait a backoff delay, cut short only by :meth:`close` (not by runs ending)."""
        self._trouble.failed(exc, self._wiring.consumer)
        deadline = anyio.current_time() + self._backoff.next()
        while not self.closing and (left := deadline - anyio.current_time()) > 0:
            self.wake.clear()
            await self.wake.sleep(left)
