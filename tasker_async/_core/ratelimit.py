"""Spacing task starts: a generic cell rate algorithm (GCRA) over the whole pool.

One number of state, the theoretical arrival time (TAT) of the next start:
a start at ``now`` may go at ``max(now, tat - tolerance)``, and pushes the
TAT one interval further. ``burst`` starts may go at once; after that they are
spaced ``1 / rate`` apart. Reserving is pure arithmetic, so workers wait out
their turn with a sleep and nothing is ever dropped.
"""

from __future__ import annotations

import math

__all__ = ("StartLimiter",)


class StartLimiter:
    """At most ``rate`` starts per second on average, ``burst`` at once."""

    __slots__ = ("_interval", "_tat", "_tolerance", "throttled")

    def __init__(self, rate: float, burst: int = 1) -> None:
        """Allow ``rate`` starts per second, ``burst`` of them back to back."""
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._tat = -math.inf
        self.throttled = 0.0  # seconds starts have been held back, in all

    def reserve(self, now: float) -> float:
        """Book the next start; return how many seconds from ``now`` it must wait."""
        start = max(now, self._tat - self._tolerance)
        self._tat = max(self._tat, start) + self._interval
        wait = start - now
        self.throttled += wait
        return wait
