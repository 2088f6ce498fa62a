"""``ConsumerStats``: a snapshot of what one consumer holds and has done."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("ConsumerStats",)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerStats:
    """What a consumer holds now, and what it has done since it started.

    Attributes:
        claimed: jobs taken from the store so far.
        prefetched: jobs held now that have not started (``prefetch``).
        running: jobs running on the manager now.
        unrecorded: outcomes and give-backs waiting to reach the store now (the
            engine may be unreachable).
        delivered: jobs started for the first time.
        redelivered: jobs started again after an earlier delivery was cut short.
        acked: outcomes recorded: ``succeeded``, ``failed`` or ``cancelled``.
        dead: jobs recorded ``dead`` (a payload that could not be decoded).
        released: jobs given back to the store (unstarted on a stop, cut short by a kill).
        lost: jobs whose lease was lost (expired, or taken by another consumer):
            their run was cancelled and no outcome recorded.
    """

    claimed: int
    prefetched: int
    running: int
    unrecorded: int
    delivered: int
    redelivered: int
    acked: int
    dead: int
    released: int
    lost: int
