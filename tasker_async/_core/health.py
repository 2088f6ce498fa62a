"""Pure decisions about failures: may a task run again, how long to back off, what to log.

Nothing here awaits or touches the manager; the worker applies the answers.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = (
    "AGE_JITTER",
    "LONGEST_BACKOFF",
    "STREAK_SUMMARY_INTERVAL",
    "CreationStreak",
    "RetryVerdict",
    "StreakNote",
    "creation_backoff",
    "jittered_age",
    "retry_backoff",
    "retry_verdict",
)

# An uncapped backoff stops growing here, about a hundred years (what uvloop
# treats as forever), instead of overflowing a float after ~1,000 doublings.
LONGEST_BACKOFF = 100 * 365 * 24 * 3600.0

# Below this exponent of e, ``multiplier ** steps`` is computed as such (exactly);
# above it, a power that large could overflow a float on its own.
_EXACT_POWER_LIMIT = 700.0


class RetryVerdict(enum.Enum):
    """What becomes of a task whose run hit an unhealthy error."""

    RETRY = "retry"  # re-queue it on the priority queue
    FAIL_ONCE = "fail_once"  # submitted once=True: the caller gets the task's own error
    EXHAUSTED = "exhausted"  # no retries left: MaxRetriesExceededError


def retry_verdict(*, attempts: int, max_retries: int, once: bool) -> RetryVerdict:
    """Decide the fate of a task that has run ``attempts`` times, the last one unhealthy."""
    if once:
        return RetryVerdict.FAIL_ONCE
    if attempts - 1 < max_retries:
        return RetryVerdict.RETRY
    return RetryVerdict.EXHAUSTED


def _grown(base: float, multiplier: float, steps: int, ceiling: float) -> float:
    """``min(base * multiplier ** steps, ceiling)``, never computing a power past ``ceiling``.

    For ``base >= 0``, ``multiplier >= 1``, ``steps >= 0``: the step at which
    the product reaches ``ceiling`` is found with logarithms first, so no
    number of steps can overflow.
    """
    if base <= 0 or multiplier <= 1 or steps <= 0:
        return min(base, ceiling)
    if base >= ceiling:
        return ceiling
    growth = steps * math.log(multiplier)
    if growth >= math.log(ceiling) - math.log(base):
        return ceiling
    if growth < _EXACT_POWER_LIMIT:
        return min(base * multiplier**steps, ceiling)
    # A base so small that the power alone would pass the largest float.
    return min(math.exp(math.log(base) + growth), ceiling)


def creation_backoff(failures: int, *, base: float, cap: float, draw: float) -> float:
    """Seconds to wait after the ``failures``-th ``on_create`` failure in a row (1-based).

    ``base * 2 ** (failures - 1)``, capped at ``cap``, then jittered the
    "equal" way: a point between half and all of it chosen by ``draw``
    (uniform in [0, 1)). Callers that failed together retry apart, and none
    sooner than half its backoff; a seeded random source gives an exact,
    repeatable sequence.
    """
    return _grown(base, 2.0, failures - 1, cap) * (0.5 + 0.5 * draw)


def retry_backoff(
    attempt: int, *, base: float, multiplier: float, cap: float | None, jitter: float, draw: float
) -> float:
    """Seconds before the re-run that follows the ``attempt``-th run (1-based).

    ``base * multiplier ** (attempt - 1)``, capped at ``cap`` (with no cap,
    at ``LONGEST_BACKOFF``, about a hundred years, so that no number of
    attempts overflows), then reduced by up to ``jitter`` of itself:
    ``draw`` (uniform in [0, 1)) says how much, so a seeded random source
    gives an exact, repeatable sequence.
    """
    delay = _grown(base, multiplier, attempt - 1, LONGEST_BACKOFF if cap is None else cap)
    return delay * (1.0 - jitter * draw)


# While on_create keeps failing, the log gets one summary line this often
# (seconds) rather than one line a failure.
STREAK_SUMMARY_INTERVAL = 10.0


class StreakNote(enum.Enum):
    """How loudly to log one ``on_create`` failure."""

    FIRST = "first"  # the first of a streak: in full, with its cause
    QUIET = "quiet"  # one more of the same
    SUMMARY = "summary"  # one more, and a summary of the streak is due


@dataclass(slots=True)
class CreationStreak:
    """``on_create`` failures in a row, whoever called it; a creation that succeeds ends it.

    Only bookkeeping: the caller passes the time and logs what it is told.
    """

    interval: float = STREAK_SUMMARY_INTERVAL  # seconds between two summaries
    attempts: int = 0  # failures in the streak so far
    started: float = 0.0  # when its first failure happened
    summarised: float = 0.0  # when its last summary (or first failure) was logged

    def failed(self, now: float) -> StreakNote:
        """Count a failure that happened at ``now`` and say how to log it."""
        self.attempts += 1
        if self.attempts == 1:
            self.started = self.summarised = now
            return StreakNote.FIRST
        if now - self.summarised >= self.interval:
            self.summarised = now
            return StreakNote.SUMMARY
        return StreakNote.QUIET

    def succeeded(self, now: float) -> tuple[int, float] | None:
        """End the streak: its failures and its length in seconds, or ``None`` if there was none."""
        if not self.attempts:
            return None
        ended = (self.attempts, now - self.started)
        self.attempts = 0
        return ended


# Resources of workers started together must not all expire together.
AGE_JITTER = 0.1


def jittered_age(max_age: float, draw: float) -> float:
    """A resource's lifetime: ``max_age`` within ±10%, ``draw`` uniform in [0, 1)."""
    return max_age * (1.0 - AGE_JITTER + 2 * AGE_JITTER * draw)
