"""Checks of the values a caller passes to the client."""

from __future__ import annotations

import math

__all__ = ("is_seconds",)


def is_seconds(value: object, *, allow_zero: bool) -> bool:
    """Whether ``value`` is a finite number of seconds, >= 0 (or > 0 without ``allow_zero``); bools are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False
    return finite and (value > 0 or (allow_zero and value == 0))
