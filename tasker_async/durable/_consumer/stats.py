"""``ConsumerStats``: a snapshot of what one consumer holds and has done."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ("REACHES_STORE_WITHIN", "ConsumerHealth", "ConsumerStats")

# A consumer whose last heartbeat reached the store longer ago than this (seconds) is cut off from it: ten ticks
# at the longest tick, yet well before the others stop listing it (``CONSUMER_STALE_AFTER``).
REACHES_STORE_WITHIN = 5.0


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


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerHealth:
    """Whether a consumer serves and reaches its store: what a liveness or readiness probe asks.

    Attributes:
        state: ``created``, ``running``, ``stopping`` (draining), ``killing`` or ``stopped``.
        heartbeat_at: when its last heartbeat reached the store (seconds since the epoch), if one did.
        heartbeat_every: seconds between its heartbeats now (a third of the shortest lease, 0.5 at most).
        running: jobs it runs now.
        capacity: jobs it can run at once (its manager's workers).
    """

    state: Literal["created", "running", "stopping", "killing", "stopped"]
    heartbeat_at: float | None
    heartbeat_every: float
    running: int
    capacity: int

    def heartbeat_age(self, now: float) -> float | None:
        """Seconds since the last heartbeat reached the store, at ``now`` (None if none did)."""
        return None if self.heartbeat_at is None else max(0.0, now - self.heartbeat_at)

    def serving(self) -> bool:
        """Whether it runs and takes jobs (not draining, killed or stopped)."""
        return self.state == "running"

    def reaches_store(self, now: float) -> bool:
        """Whether its last heartbeat reached the store within ``REACHES_STORE_WITHIN`` seconds of ``now``."""
        age = self.heartbeat_age(now)
        return age is not None and age <= REACHES_STORE_WITHIN
