"""Jobs handed to this store object's waiting consumers: heard in messages, kept until their claims take them.

A consumer whose claim came up short, and that then waits for jobs, leaves an offer on the server; a job of
its queues stored meanwhile is claimed for it by the script that stores it (``handoff.lua``), which publishes
the claim row. The listener keeps the rows here and wakes the consumer's wait, and its next claim returns them
with no round trip: the job starts one round trip, and one sync of the server's append-only file, earlier.

The server also lists each job handed until the consumer's next claim collects the list, so a message lost
(the listener was reconnecting) costs a wait, never the job. A job may then arrive twice, in a message and in
a claim's reply, in either order (they come on different connections). Tokens tell: each claim takes a fresh
one from one counter, so the messages for a consumer come in the order of their tokens; a claim's reply leaves
out what was heard up to the token it sent, and this side drops a collected row already heard, and a message's
row already collected.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterable

from ..records import Claim, Lease
from . import codec

__all__ = ("OFFER_TTL", "Handed")

# Seconds an offer stands without a claim renewing it: a consumer waits ``IDLE_WAIT`` (one second) at most
# between claims, so only a consumer that stopped claiming (one that died) lets it lapse.
OFFER_TTL = 3.0

_LENGTH = struct.Struct("<I")
_FIELDS = 10  # a claim row's (jobs.lua, take)


def _rows(data: bytes) -> list[list[bytes]]:
    """The claim rows of a message's body: frames, ten per row."""
    values, pos, end = [], 0, len(data)
    while pos < end:
        (size,) = _LENGTH.unpack_from(data, pos)
        values.append(data[pos + 4 : pos + 4 + size])
        pos += 4 + size
    return [values[k : k + _FIELDS] for k in range(0, len(values), _FIELDS)]


class Handed:
    """The consumers of this store object that took part in the hand-off, and the jobs handed to them not yet taken.

    One owner: the store object; the listener calls :meth:`heard`, the claims the rest.
    """

    __slots__ = ("_collected", "_heard", "_kept", "_offering")

    def __init__(self) -> None:
        # The highest token heard in a message per consumer: a consumer is known here once it made an offer,
        # and messages for others (other processes' consumers) are ignored.
        self._heard: dict[str, int] = {}
        # The tokens of the rows a claim collected whose message has not come (it may come, or have been lost).
        self._collected: dict[str, set[int]] = {}
        self._kept: dict[str, list[Claim]] = {}
        self._offering: set[str] = set()

    def heard(self, data: bytes) -> Collection[str]:
        """Keep the rows of a ``handed`` message for a consumer known here; the queues of those kept."""
        consumer_bytes, _, body = data.partition(b"\n")
        consumer = consumer_bytes.decode()
        last = self._heard.get(consumer)
        if last is None:
            return ()
        claims = codec.claims(_rows(body))
        if not claims:
            return ()
        collected = self._collected.get(consumer, set())
        fresh = [claim for claim in claims if int(claim.token) > last and int(claim.token) not in collected]
        last = self._heard[consumer] = max(last, *(int(claim.token) for claim in claims))
        if collected:
            # Messages come in the order of their tokens: one up to ``last`` that has not come never will.
            collected.difference_update([token for token in collected if token <= last])
        if not fresh:
            return ()
        self._kept.setdefault(consumer, []).extend(fresh)
        return {claim.queue for claim in fresh}

    def pending(self, queues: Iterable[str] | None) -> bool:
        """Whether a job of ``queues`` (any, if None) was handed here and not taken yet."""
        wanted = None if queues is None else set(queues)
        return any(wanted is None or claim.queue in wanted for kept in self._kept.values() for claim in kept)

    def kept(self, consumer: str) -> int:
        """How many jobs handed to ``consumer`` wait here for its claim."""
        return len(self._kept.get(consumer, ()))

    def take(self, consumer: str) -> list[Claim]:
        """The jobs handed to ``consumer`` that wait here, now its claim's."""
        return self._kept.pop(consumer, [])

    def seen(self, consumer: str) -> int:
        """The highest token heard for ``consumer`` (0: none): a claim's reply leaves out the handed jobs up to it."""
        return self._heard.get(consumer, 0)

    def collected(self, consumer: str, claims: list[Claim]) -> list[Claim]:
        """The handed jobs a claim's reply collected, but those whose message came first."""
        last = self._heard.get(consumer, 0)
        fresh = [claim for claim in claims if int(claim.token) > last]
        if fresh and consumer in self._heard:
            self._collected.setdefault(consumer, set()).update(int(claim.token) for claim in fresh)
        return fresh

    def offered(self, consumer: str, *, standing: bool) -> None:
        """``consumer``'s claim left an offer (``standing``), or withdrew it."""
        if standing:
            self._offering.add(consumer)
            self._heard.setdefault(consumer, 0)
        else:
            self._offering.discard(consumer)

    def involved(self, consumer: str) -> bool:
        """Whether ``consumer`` may have an offer standing, or jobs handed: its leaving must see to them."""
        return consumer in self._offering or bool(self._kept.get(consumer))

    def leases(self, consumer: str) -> list[Lease]:
        """The leases of the jobs handed to ``consumer`` that wait here (renewed with its own)."""
        return [claim.hold for claim in self._kept.get(consumer, ())]

    def lost(self, consumer: str, job_ids: Collection[str]) -> None:
        """Drop the waiting jobs whose leases a renewal found lost (taken back, cancelled before they started)."""
        kept = self._kept.get(consumer)
        if kept:
            kept[:] = [claim for claim in kept if claim.id not in job_ids]

    def forget(self, consumer: str) -> tuple[int, list[Lease]]:
        """``consumer`` leaves: its highest token heard, and the leases of its jobs still waiting here."""
        self._offering.discard(consumer)
        self._collected.pop(consumer, None)
        leases = [claim.hold for claim in self._kept.pop(consumer, [])]
        return self._heard.pop(consumer, 0), leases
