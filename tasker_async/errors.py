"""The exceptions raised by tasker_async.

Every error the library raises on its own account derives from
:class:`TaskerError`. A task's own exception is never wrapped: it reaches the
caller unchanged (except through :class:`MaxRetriesExceededError`, which keeps
it as ``__cause__``).
"""

from __future__ import annotations

__all__ = (
    "ConfigError",
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

    def __init__(self, field: str, value: object, requirement: str) -> None:
        """Build the error for ``field`` whose ``value`` breaks ``requirement``."""
        super().__init__(f"Config.{field} must be {requirement}, got {value!r}")
        self.field = field
        self.value = value


class ManagerNotRunningError(TaskerError):
    """The manager is not accepting tasks: not started yet, stopping or stopped."""


class ResourceCreationError(TaskerError):
    """``on_create`` failed; the original exception is chained as ``__cause__``."""


class MaxRetriesExceededError(TaskerError):
    """A task kept failing with unhealthy errors and has no retries left.

    Attributes:
        attempts: how many times the task ran in total.
    """

    def __init__(self, attempts: int) -> None:
        """Build the error for a task that ran ``attempts`` times."""
        super().__init__(f"task failed on an unhealthy resource {attempts} time(s); no retries left")
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
