"""Events per second over a sliding recent window, in fixed memory.

The window is cut into ``SLOTS`` equal slots kept in a ring; an event adds
one to the slot of its time, and the rate is the count of the slots inside
the window over the time they cover. Old slots are zeroed as time moves on,
so a quiet minute reads as zero, not as a lifetime average.
"""

from __future__ import annotations

__all__ = ("WindowRate",)

SLOTS = 20


class WindowRate:
    """A sliding-window event rate."""

    __slots__ = ("_counts", "_slot", "_started", "_width", "total", "window")

    def __init__(self, window: float, now: float) -> None:
        """Measure over the last ``window`` seconds, starting at time ``now``."""
        self.window = window
        self._width = window / SLOTS
        self._counts = [0] * SLOTS
        self._slot = int(now / self._width)
        self._started = now
        self.total = 0  # every event ever counted

    def _advance(self, slot: int) -> None:
        # Zero every slot the clock skipped since the last event (at most all of them).
        for skipped in range(self._slot + 1, min(slot, self._slot + SLOTS) + 1):
            self._counts[skipped % SLOTS] = 0
        self._slot = slot

    def add(self, now: float, n: int = 1) -> None:
        """Count ``n`` events at time ``now`` (times never go backwards)."""
        self.total += n
        slot = int(now / self._width)
        if slot != self._slot:
            if slot < self._slot:  # a stamp taken just before the last one
                self._counts[self._slot % SLOTS] += n
                return
            self._advance(slot)
        self._counts[slot % SLOTS] += n

    def rate(self, now: float) -> float:
        """Events per second over the window ending at ``now``.

        Read-only, so a metrics exporter on another thread cannot disturb the
        counting: slots the clock has moved past are left out, not zeroed.
        """
        slot = int(now / self._width)
        oldest = slot - SLOTS + 1  # the first slot still inside the window
        counted = sum(self._counts[s % SLOTS] for s in range(max(oldest, self._slot - SLOTS + 1), self._slot + 1))
        # The current slot is partly elapsed: cover it only as far as ``now``.
        covered = (SLOTS - 1) * self._width + (now - slot * self._width)
        covered = min(covered, now - self._started)
        if covered <= 0:
            return 0.0
        return counted / covered
