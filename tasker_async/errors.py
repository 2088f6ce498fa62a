"""The exceptions raised by tasker_async.

Every error the library raises on its own account derives from
:class:`TaskerError`. A task's own exception is never wrapped: it reaches the
caller unchanged (except through :class:`MaxRetriesExceededError`, which keeps
it as ``__cause__``).
"""

from __future__ import annotations

import math

__all__ = (
    "ConfigError",
    "PermanentError",
    "RetryableError",
    "ManagerNotRunningError",
    "MaxRetriesExceededError",
    "QueueFullError",
    "ResourceCreationError",
    "TaskAbortedError",
    "TaskTimeoutError",
    "TaskerError",
)


class TaskerError(Exception):
    """Base class of every error raised by tasker_async itself."""


class ConfigError(TaskerError, ValueError):
    """A :class:`~tasker_async.Config` field holds a value it cannot take.

    Attributes:
        field: the name of the offending field.
        value: the value that was rejected.
    """

    def __init__(self, field: str, value: object = None, requirement: str | None = None) -> None:
        """Build the error for ``field`` whose ``value`` breaks ``requirement``.

        Without a ``requirement``, ``field`` is the whole message (an option
        outside ``Config``, such as a durable task's), and ``.field`` is empty.
        """
        if requirement is None:
            super().__init__(field)
            field = ""
        else:
            super().__init__(f"Config.{field} must be {requirement}, got {value!r}")
        self.field = field
        self.value = value


class ManagerNotRunningError(TaskerError):
    """The manager is not accepting tasks: not started yet, stopping or stopped."""


class ResourceCreationError(TaskerError):
    """``on_create`` failed; the original exception is chained as ``__cause__``."""


class MaxRetriesExceededError(TaskerError):
    """A task kept failing with unhealthy errors (or asking to be retried) and has no retries left.

    Attributes:
        attempts: how many times the task ran in total.
    """

    def __init__(self, attempts: int) -> None:
        """Build the error for a task that ran ``attempts`` times."""
        super().__init__(
            f"task ran {attempts} time(s), each ending in an unhealthy error or a RetryableError; no retries left"
        )
        self.attempts = attempts


class TaskTimeoutError(TaskerError, TimeoutError):
    """A task's run outlived its ``timeout`` (or ``Config.task_timeout``) and was cancelled.

    Attributes:
        timeout: the deadline, in seconds, the run exceeded.
    """

    def __init__(self, timeout: float) -> None:
        """Build the error for a run that exceeded ``timeout`` seconds."""
        super().__init__(f"task did not finish within {timeout:g} s")
        self.timeout = timeout


class TaskAbortedError(TaskerError):
    """A queued or running task was ended by ``kill()`` or by a ``stop()`` that timed out."""


class QueueFullError(TaskerError):
    """``submit_nowait`` found the queue at ``max_queue_size``."""


class RetryableError(Exception):
    """Raise it from a task to have the task run again, on the same healthy worker pool.

    The worker keeps its resource (``check_health`` is not asked). The retry
    waits ``max(retry_after, backoff)`` seconds without holding a worker and
    counts against ``max_retries``; once they are used up the caller gets
    ``MaxRetriesExceededError`` with this error as ``__cause__`` (a task
    submitted ``once=True`` gets this error itself).

    Args:
        message: what went wrong.
        retry_after: the least number of seconds to wait, e.g. from a
            ``Retry-After`` header; ``None`` for the backoff alone.

    Attributes:
        retry_after: the least number of seconds to wait before the retry.
    """

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        """Build the error; ``retry_after`` must be ``None`` or a finite number >= 0.

        Raises:
            ValueError: ``retry_after`` is negative, not finite (a task that
                waited for ever would hold up ``stop()``) or not a number;
                raised from a task, it fails the task.
        """
        if retry_after is not None and not _finite_seconds(retry_after):
            raise ValueError(f"retry_after must be a finite number of seconds >= 0 or None, got {retry_after!r}")
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Raise it from a task that must never run again: no retry, no ``check_health``.

    The caller gets this error unchanged.
    """


def _finite_seconds(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value) and value >= 0
    except OverflowError:  # an int too large for a float
        return False
