"""What a run's exception means: a pure decision, the same for the queues and for ``run_task``.

Nothing here awaits or touches the manager: the caller says what it knows
(was the run's task cancelled by its caller, is the manager killing it) and
gets a verdict; ``check_health`` is asked only for ``JUDGE``.
"""

from __future__ import annotations

import asyncio
import enum

from ..errors import PermanentError, RetryableError

__all__ = ("Verdict", "classify")


class Verdict(enum.Enum):
    """What becomes of a task whose run raised."""

    CANCELLED = "cancelled"  # its caller gave up: nothing to report but that
    ABORTED = "aborted"  # the manager is being killed: TaskAbortedError, and the worker ends
    SELF_CANCELLED = "self_cancelled"  # a CancelledError nobody here sent: the task cancelled itself
    EXIT = "exit"  # KeyboardInterrupt, SystemExit and the like: fail it, and let it go on
    PERMANENT = "permanent"  # PermanentError: fail it, ask nothing about the resource
    RETRY = "retry"  # RetryableError: run it again, the resource is fine
    JUDGE = "judge"  # any other error: check_health says whether the resource went bad


def classify(exc: BaseException, *, caller_cancelled: bool, killed: bool) -> Verdict:
    """Decide what ``exc``, raised by a run, means.

    Args:
        exc: what the run raised.
        caller_cancelled: the task's caller had given up on it.
        killed: the worker (or ``run_task`` call) is being ended by ``kill()``.
    """
    if isinstance(exc, asyncio.CancelledError):
        if caller_cancelled:
            return Verdict.CANCELLED
        if killed:
            return Verdict.ABORTED
        return Verdict.SELF_CANCELLED
    if not isinstance(exc, Exception):
        return Verdict.EXIT
    if isinstance(exc, PermanentError):
        return Verdict.PERMANENT
    if isinstance(exc, RetryableError):
        return Verdict.RETRY
    return Verdict.JUDGE
