"""Each queue's counts over the last minutes, for the page's sparklines: a bounded, pure ring buffer.

One owner appends (the sampler task of the application); readers take ``as_dict()``. Samples come at the
sampler's interval, but the buffer keeps about ``capacity`` of them over ``window`` seconds: a sample that
comes sooner than ``spacing`` after the one before replaces it, so the newest point is always now
and a short interval does not shrink the window the page shows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ("FIELDS", "Counts", "History", "Sample")

# The counts a queue has at each sample, as ``status --json`` names them.
FIELDS = ("ready_priority", "ready_main", "delayed", "running", "dead")

Counts = Mapping[str, int]
"""One queue's counts at one sample, by ``FIELDS`` name."""


@dataclass(frozen=True, slots=True)
class Sample:
    """Every queue's counts at one instant (a queue not listed held no job)."""

    at: float
    queues: Mapping[str, Counts]


class History:
    """The samples of the last ``window`` seconds, about ``capacity`` of them (two more at most), oldest first."""

    def __init__(self, *, window: float = 600.0, capacity: int = 300) -> None:
        if not window > 0:
            raise ValueError(f"window must be a number of seconds > 0, got {window!r}")
        if capacity < 2:
            raise ValueError(f"capacity must be 2 or more, got {capacity!r}")
        self.window = float(window)
        self.capacity = capacity
        # Spacing and window keep ``capacity`` samples and the newest at most (one more across the window's
        # edge): the bound is a safety net.
        self._samples: deque[Sample] = deque(maxlen=capacity + 2)

    @property
    def spacing(self) -> float:
        """The least time between two kept samples but the newest."""
        return self.window / self.capacity

    def __len__(self) -> int:
        return len(self._samples)

    def samples(self) -> list[Sample]:
        """The kept samples, oldest first."""
        return list(self._samples)

    def append(self, at: float, queues: Mapping[str, Counts]) -> None:
        """Add the counts read at ``at``; forget those older than the window.

        The newest sample replaces the one before while that one is closer than ``spacing`` to its own
        predecessor (so the last point always shows the newest counts). A sample older than the newest kept
        (the clock stepped back) replaces every kept sample after it.
        """
        kept = {name: {field: int(counts.get(field, 0)) for field in FIELDS} for name, counts in queues.items()}
        sample = Sample(at, kept)
        while self._samples and self._samples[-1].at > at:
            self._samples.pop()
        if len(self._samples) >= 2 and self._samples[-1].at - self._samples[-2].at < self.spacing:
            self._samples[-1] = sample
        else:
            self._samples.append(sample)
        while self._samples and self._samples[0].at < at - self.window:
            self._samples.popleft()

    def as_dict(self) -> dict[str, Any]:
        """``{"window", "at": [...], "queues": {NAME: {FIELD: [...]}}}``: one list per count, aligned with ``at``.

        A queue seen in any kept sample has a value at every sample (0 where it held no job).
        """
        samples = list(self._samples)
        names = sorted({name for sample in samples for name in sample.queues})
        empty: Counts = dict.fromkeys(FIELDS, 0)
        return {
            "window": self.window,
            "at": [round(sample.at, 3) for sample in samples],
            "queues": {
                name: {field: [sample.queues.get(name, empty)[field] for sample in samples] for field in FIELDS}
                for name in names
            },
        }
