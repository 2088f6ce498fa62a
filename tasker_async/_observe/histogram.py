"""A log-bucketed histogram: percentiles within 1% relative error in fixed memory.

Bucket ``i`` holds the values in ``(gamma**(i-1), gamma**i]`` with
``gamma = (1 + a) / (1 - a)``; answering a bucket's values with
``2 * gamma**i / (gamma + 1)`` is within ``a`` of any of them (the DDSketch
construction). The buckets cover 1 ns to about 3 years, so memory is one
list of a few thousand counts whatever the number of samples.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

__all__ = ("LogHistogram",)

RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_INV_LOG_GAMMA = 1.0 / math.log(_GAMMA)
_MIN_VALUE = 1e-9  # values at or below this land in bucket 0, reported as 0
_OFFSET = -math.ceil(math.log(_MIN_VALUE) * _INV_LOG_GAMMA) + 1
_BUCKETS = _OFFSET + math.ceil(math.log(1e8) * _INV_LOG_GAMMA) + 1
# The largest value each bucket holds: gamma ** (index - offset).
_UPPER_EDGES = tuple(_GAMMA ** (index - _OFFSET) for index in range(_BUCKETS))


class LogHistogram:
    """Counts of non-negative samples (seconds) in logarithmic buckets."""

    __slots__ = ("_counts", "count", "max", "min", "total")

    def __init__(self) -> None:
        """Start empty."""
        self._counts = [0] * _BUCKETS
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def add(self, value: float) -> None:
        """Record one sample; negative values count as 0, huge ones as the top bucket."""
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value <= _MIN_VALUE:
            self._counts[0] += 1
            return
        index = math.ceil(math.log(value) * _INV_LOG_GAMMA) + _OFFSET
        self._counts[index if index < _BUCKETS else _BUCKETS - 1] += 1

    def add_many(self, values: list[float]) -> None:
        """Record many samples at once, as ``add`` would each; may sort ``values`` in place.

        A batch within one bucket (say, the waits of tasks queued together)
        is one addition. Otherwise, sorted, the samples of one bucket are a
        run found by bisection at the bucket's upper edge: the cost per sample
        is the (C) sort's, and the Python-level work is per bucket touched.
        """
        if not values:
            return
        n = len(values)
        counts = self._counts
        edges = _UPPER_EDGES
        top = _BUCKETS - 1
        # One bucket? Its first and last samples tell cheaply when it cannot be.
        first, last = values[0], values[-1]
        if first > _MIN_VALUE and last > _MIN_VALUE:
            index = math.ceil(math.log(first) * _INV_LOG_GAMMA) + _OFFSET
            if index < top and edges[index - 1] < last <= edges[index]:
                low, high = min(values), max(values)
                if edges[index - 1] < low and high <= edges[index]:
                    counts[index] += n
                    self._note(n, sum(values), low, high)
                    return
        values.sort()
        self._note(n, sum(values), values[0], values[-1])
        log = math.log
        ceil = math.ceil
        i = bisect_right(values, _MIN_VALUE)
        counts[0] += i
        index = 0
        end = n - 1
        while i < n:
            value = values[i]
            if value <= edges[index + 1]:
                index += 1  # the next bucket up: no logarithm needed
            else:
                index = ceil(log(value) * _INV_LOG_GAMMA) + _OFFSET
                if index >= top:
                    counts[top] += n - i
                    return
            edge = edges[index]
            if i == end or values[i + 1] > edge:
                # Alone in its bucket (an outlier, typically): no bisection needed.
                counts[index] += 1
                i += 1
                continue
            # From i + 1: rounding may put values[i] a hair above the edge computed for it.
            stop = bisect_right(values, edge, i + 1)
            counts[index] += stop - i
            i = stop

    def _note(self, n: int, total: float, low: float, high: float) -> None:
        self.count += n
        self.total += total
        if low < self.min:
            self.min = low
        if high > self.max:
            self.max = high

    def quantiles(self, qs: Sequence[float]) -> list[float]:
        """Return the nearest-rank ``q``-quantile of the samples for each ``q`` in ``qs`` (ascending).

        Each answer is within 1% of the exact sample at rank ``ceil(q * count)``,
        and clamped to the observed min and max. 0.0 when empty.
        """
        if not self.count:
            return [0.0] * len(qs)
        ranks = [max(1, math.ceil(q * self.count)) for q in qs]
        answers: list[float] = []
        seen = 0
        want = 0
        for index, bucket in enumerate(self._counts):
            if not bucket:
                continue
            seen += bucket
            while want < len(ranks) and ranks[want] <= seen:
                # The top rank is the maximum, which is known exactly.
                answers.append(self.max if ranks[want] >= self.count else self._value(index))
                want += 1
            if want == len(ranks):
                break
        return answers

    def _value(self, index: int) -> float:
        if index == 0:
            return max(self.min, 0.0)
        estimate = 2 * _GAMMA ** (index - _OFFSET) / (_GAMMA + 1)
        return min(max(estimate, self.min), self.max)
