"""Pure decisions about failures: may a task run again, how long to back off.

Nothing here awaits or touches the manager; the worker applies the answers.
"""

from __future__ import annotations

import enum

__all__ = (
    "AGE_JITTER",
    "CREATE_BACKOFF_CAP",
    "CREATE_BACKOFF_START",
    "RetryVerdict",
    "creation_backoff",
    "jittered_age",
    "retry_backoff",
    "retry_verdict",
)

# A replacement worker whose on_create fails waits this long before trying
# again, doubling each time up to the cap: quick recovery from a blip, and
# no hammering of a backend that is down.
CREATE_BACKOFF_START = 0.05
CREATE_BACKOFF_CAP = 5.0


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


def creation_backoff(failures: int) -> float:
    """Seconds to wait after the ``failures``-th consecutive ``on_create`` failure (1-based)."""
    return min(CREATE_BACKOFF_START * 2.0 ** (failures - 1), CREATE_BACKOFF_CAP)


def retry_backoff(
    attempt: int, *, base: float, multiplier: float, cap: float | None, jitter: float, draw: float
) -> float:
    """Seconds before the re-run that follows the ``attempt``-th run.

    ``base * multiplier ** (attempt - 1)``, capped at ``cap``, then reduced by
    up to ``jitter`` of itself: ``draw`` (uniform in [0, 1)) says how much, so
    a seeded random source gives an exact, repeatable sequence.
    """
    delay = base * multiplier ** (attempt - 1)
    if cap is not None and delay > cap:
        delay = cap
    return delay * (1.0 - jitter * draw)


# Resources of workers started together must not all expire together.
AGE_JITTER = 0.1


def jittered_age(max_age: float, draw: float) -> float:
    """A resource's lifetime: ``max_age`` within ±10%, ``draw`` uniform in [0, 1)."""
    return max_age * (1.0 - AGE_JITTER + 2 * AGE_JITTER * draw)
