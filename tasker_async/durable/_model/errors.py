"""The errors of the durable layer, all ``TaskerError``s."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import ConfigError, TaskerError

if TYPE_CHECKING:
    from .records import ErrorInfo

__all__ = (
    "DeadLetterError",
    "JobCancelledError",
    "JobFailedError",
    "JobLostError",
    "RunFailedError",
    "StoreUnavailableError",
    "UnknownTaskError",
    "WorkflowError",
)


class JobFailedError(TaskerError):
    """The job ended ``failed``; ``.error`` says what its task raised.

    Attributes:
        error: the type, message and traceback of the failure.
    """

    def __init__(self, message: str, error: ErrorInfo) -> None:
        super().__init__(message)
        self.error = error


class JobLostError(JobFailedError):
    """A ``once=True`` job whose run was cut short (its process died, or a kill): it is never run again."""


class UnknownTaskError(JobFailedError):
    """No registry of the consumer that took the job knows its task name."""


class JobCancelledError(TaskerError):
    """The job (or workflow run) was cancelled."""


class DeadLetterError(TaskerError):
    """The job was delivered ``max_deliveries`` times without an outcome, or its payload could not be decoded."""


class StoreUnavailableError(TaskerError):
    """The store's engine could not be reached (in time)."""


class WorkflowError(ConfigError):
    """A workflow definition is wrong, or a run was started without one of its inputs."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class RunFailedError(TaskerError):
    """A workflow run failed; ``.steps`` maps each failed step's name to its error.

    Attributes:
        steps: failed step name to ``ErrorInfo``.
    """

    def __init__(self, message: str, steps: dict[str, ErrorInfo]) -> None:
        super().__init__(message)
        self.steps = steps
