"""Pure decisions of the consumer: how many jobs to claim, how long to wait, how often to renew.

No ``await`` here: the loops ask, then do.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = (
    "BUSY_POLL",
    "FULL_WAIT",
    "IDLE_WAIT",
    "MAX_TICK",
    "PURGE_EVERY",
    "claim_limit",
    "full_wait",
    "lease_tick",
)

# Seconds to poll for a free worker while the manager has none but the shared queue has a
# backlog: burst workers may join at any moment, and a job ending wakes the loop anyway.
BUSY_POLL = 0.025
# Seconds to wait for a free worker with no backlog seen (a job ending still wakes the loop).
FULL_WAIT = 0.25
# Seconds a store's ``wait_ready`` may take before the loop looks again (the manager may have stopped).
IDLE_WAIT = 1.0
# The longest gap between two lease ticks: cancellation requests reach a run within about that.
MAX_TICK = 0.5
# Seconds between two purges of expired results.
PURGE_EVERY = 60.0


def claim_limit(free_workers: int, prefetch: int, unstarted: int) -> int:
    """How many jobs to claim now: what the manager can start, plus ``prefetch``, less what is held unstarted."""
    return max(0, free_workers + prefetch - unstarted)


def full_wait(backlog: int, woken: bool) -> float:
    """Seconds to wait for a worker to come free when the manager has none.

    Poll briskly while the store has a backlog (burst workers may join), or right after a
    job ended (its worker frees in a moment); otherwise wait longer, as a job ending wakes
    the loop at once.
    """
    return BUSY_POLL if backlog > 0 or woken else FULL_WAIT


def lease_tick(leases: Iterable[float]) -> float:
    """Seconds between two renewals: a third of the shortest lease held, at most ``MAX_TICK``.

    A third leaves two more tries before a lease runs out when one renewal fails.
    """
    return min([MAX_TICK, *(lease / 3 for lease in leases)])
