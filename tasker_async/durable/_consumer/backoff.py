"""Retrying store calls through an outage: capped, jittered delays, and one warning per outage, not per try."""

from __future__ import annotations

import logging
import random

__all__ = ("Backoff", "Trouble", "log")

log = logging.getLogger("tasker_async.durable")


class Backoff:
    """Delays that double from ``base`` up to ``cap`` seconds, each drawn from its upper half.

    The jitter keeps consumers that lost the engine at the same moment from all coming back at
    the same moment; the cap keeps the first try after the engine is back close to it.
    """

    __slots__ = ("_rng", "base", "cap", "failures")

    def __init__(self, *, base: float = 0.05, cap: float = 1.0, rng: random.Random | None = None) -> None:
        """Start with no failure."""
        self.base = base
        self.cap = cap
        self.failures = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """Count one more failure and return the seconds to wait before the next try."""
        ceiling = min(self.cap, self.base * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return ceiling / 2 + self._rng.random() * ceiling / 2

    def reset(self) -> None:
        """A try succeeded: start again from ``base``."""
        self.failures = 0


class Trouble:
    """Tells the log of a store call that keeps failing once when it starts failing and once when it recovers."""

    __slots__ = ("_what", "failing")

    def __init__(self, what: str) -> None:
        """``what`` names the calls, e.g. ``"recording outcomes"``."""
        self._what = what
        self.failing = False

    def failed(self, exc: BaseException, consumer: str) -> None:
        """A try failed with ``exc``."""
        if not self.failing:
            self.failing = True
            log.warning("consumer %s: %s failed, retrying: %r", consumer, self._what, exc)
        else:
            log.debug("consumer %s: %s failed again: %r", consumer, self._what, exc)

    def succeeded(self, consumer: str) -> None:
        """A try succeeded."""
        if self.failing:
            self.failing = False
            # As loud as the warning it ends: a log kept at WARNING tells how long the outage lasted.
            log.warning("consumer %s: %s works again", consumer, self._what)
