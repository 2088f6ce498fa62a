"""A consumer's calls on ``RedisStore``: claims (with the hand-off to waiting consumers), renewals, leaving; a mixin.

A claim made by a consumer that waits when it comes up short (``waits=True``) leaves an offer on the server:
jobs of its queues stored while it waits are claimed for it as they are stored, and reach it in a message
(``handed.py``). Its next claim returns those with no round trip when they are here already; any claim that
goes to the server collects the ones whose message has not come, and renews or withdraws the offer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio

from ..._model.records import ConsumerInfo
from ..records import Claim, Lease, Outcome, Renewal
from . import codec
from .handed import OFFER_TTL, Handed
from .ready import ReadyWaits
from .watch import Watch

__all__ = ("RedisClaims",)


class RedisClaims:
    """The protocol's ``claim``, ``complete_and_claim``, ``renew`` and ``leave`` on Redis; a mixin of ``RedisStore``."""

    _watch: Watch | None
    _ready_waits: ReadyWaits
    _in_flight: set[anyio.Event]
    _handed: Handed

    async def _run(self, name: str, *args: Any) -> Any:
        raise NotImplementedError

    async def _write(self, name: str, *args: Any) -> Any:
        raise NotImplementedError

    def _claim_args(self, consumer: str, queues: Sequence[str], limit: int, *, waits: bool) -> list[Any]:
        """``claim_waiting``'s arguments (handoff.lua): an offer only from a consumer that waits, heard here.

        The jobs handed that wait here count against ``limit``: the claim returns them too.
        """
        watch = self._watch
        ttl = OFFER_TTL if waits and watch is not None and watch.hears_handed(consumer) else 0
        limit = max(0, limit - self._handed.kept(consumer))
        return [consumer, limit, len(queues), *queues, self._handed.seen(consumer), ttl]

    def _claimed(self, consumer: str, args: list[Any], got: list[Claim], out: list[Claim]) -> list[Claim]:
        """What a claim returns: the jobs handed (waiting here, or collected by the reply), then those claimed."""
        handed = self._handed
        fresh = handed.collected(consumer, got)
        handed.offered(consumer, standing=bool(args[-1]) and len(got) + len(out) < args[1])
        return [*handed.take(consumer), *fresh, *out]

    async def claim(self, consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False) -> list[Claim]:
        """Take up to ``limit`` ready jobs of ``queues`` for ``consumer``, priority lane first.

        With ``waits``, the jobs handed to ``consumer`` while it waited come first, at once when their message
        is here; and what the claim leaves is offered (see the module). A claim with neither a limit nor
        ``waits`` withdraws the offer, and returns the jobs handed meanwhile.
        """
        handed = self._handed
        if waits and handed.kept(consumer):
            # Handed while it waited: no round trip. The server's offer stands (counted down as it handed), and
            # the wait that follows may skip its look as the last claim's would have.
            self._ready_waits.drained.again(queues)
            return handed.take(consumer)
        if limit <= 0 and not handed.involved(consumer):
            return []
        args = self._claim_args(consumer, queues, limit, waits=waits)
        heard = self._ready_waits.heard(self._watch)
        got, out, due_in = await self._run("claim", *args)
        self._ready_waits.drained.claimed(queues, heard, codec.due_in(due_in))
        return self._claimed(consumer, args, codec.claims(got), codec.claims(out))

    async def complete_and_claim(
        self, outcomes: Sequence[Outcome], consumer: str, queues: Sequence[str], limit: int, *, waits: bool = False
    ) -> tuple[list[bool], list[Claim]]:
        """``complete`` then ``claim`` in one script: one round trip, one write to the append-only file."""
        args = self._claim_args(consumer, queues, limit, waits=waits)
        heard = self._ready_waits.heard(self._watch)
        recorded, got, out, due_in = await self._write("complete_and_claim", codec.outcomes_arg(outcomes), *args)
        self._ready_waits.drained.claimed(queues, heard, codec.due_in(due_in))
        claims = self._claimed(consumer, args, codec.claims(got), codec.claims(out))
        return [flag == 1 for flag in recorded], claims

    async def renew(self, consumer: ConsumerInfo, leases: Sequence[Lease]) -> Renewal:
        """Record the heartbeat (at the engine's clock) and extend the leases still held.

        The leases of jobs handed to the consumer and not taken yet are renewed too: they are its own.
        """
        # Calls go out on several connections, so a renewal could overtake an outcome sent before it
        # and report that job's lease lost. It waits for the earlier writes: calls of one store object
        # then take effect in the order they were made, as on an engine with one connection.
        for earlier in list(self._in_flight):
            await earlier.wait()
        waiting = self._handed.leases(consumer.id)
        args = [*codec.consumer_args(consumer), *codec.lease_args([*leases, *waiting])]
        lost, cancelled = await self._run("renew", *args)
        lost_ids, cancelled_ids = frozenset(map(codec.text, lost)), frozenset(map(codec.text, cancelled))
        if waiting:
            self._handed.lost(consumer.id, lost_ids)
            theirs = {lease.job_id for lease in leases}
            lost_ids, cancelled_ids = lost_ids & theirs, cancelled_ids & theirs
        return Renewal(lost_ids, cancelled_ids)

    async def leave(self, consumer: str) -> None:
        """Forget ``consumer``'s heartbeat and offer; the jobs handed to it that it never took go back unstarted."""
        if self._watch is not None:
            self._watch.waiters.cancels.forget(consumer)
            self._watch.stop_hearing_handed(consumer)
        seen, waiting = self._handed.forget(consumer)
        await self._write("leave", consumer, seen, *codec.lease_args(waiting))
