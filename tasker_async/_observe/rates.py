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

    __slots__ = ("_counts", "_slot", "_started", "_width", "window")

    def __init__(self, window: float, now: float) -> None:
        """Measure over the last ``window`` seconds, starting at time ``now``."""
        self.window = window
        self._width = window / SLOTS
        self._counts = [0.0] * SLOTS
        self._slot = int(now / self._width)
        self._started = now

    def _advance(self, slot: int) -> None:
        # Zero every slot the clock skipped since the last event (at most all of them).
        for skipped in range(self._slot + 1, min(slot, self._slot + SLOTS) + 1):
            self._counts[skipped % SLOTS] = 0.0
        self._slot = slot

    def add(self, now: float, n: float = 1.0) -> None:
        """Count ``n`` events at time ``now`` (times never go backwards)."""
        slot = int(now / self._width)
        if slot != self._slot:
            if slot < self._slot:  # a stamp taken just before the last one
                self._counts[self._slot % SLOTS] += n
                return
            self._advance(slot)
        self._counts[slot % SLOTS] += n

    def spread(self, count: float, since: float, until: float) -> None:
        """Count ``count`` events that happened evenly between ``since`` and ``until``."""
        if count <= 0:
            return
        if until <= since or until - since < self._width:
            self.add(until, count)
            return
        since = max(since, until - self.window)  # older events fall out of the window anyway
        first = int(since / self._width)
        last = int(until / self._width)
        per_second = count / (until - since)
        for slot in range(first, last + 1):
            start = max(since, slot * self._width)
            end = min(until, (slot + 1) * self._width)
            if end > start:
                self.add(start, per_second * (end - start))

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
