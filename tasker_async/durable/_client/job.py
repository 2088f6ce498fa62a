"""``Job[T]``: a handle on one stored job, by id; and how a finished job becomes a result or an error."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Generic, TypeVar, cast

from .._model.errors import (
    DeadLetterError,
    JobCancelledError,
    JobFailedError,
    JobLostError,
    UnknownTaskError,
)
from .._model.records import ErrorInfo, JobInfo, qualified_name
from .._model.serializer import Serializer
from .._stores.protocol import Store
from .._stores.records import Finished
from .checks import is_seconds
from .retry import call_store, wait_riding_out

__all__ = ("Job", "outcome")

T = TypeVar("T")

# The failures that have their own subclass of JobFailedError, by ErrorInfo.type.
_FAILURES: dict[str, type[JobFailedError]] = {
    qualified_name(JobLostError): JobLostError,
    qualified_name(UnknownTaskError): UnknownTaskError,
}


def outcome(finished: Finished, serializer: Serializer) -> Any:
    """The result of a finished job, decoded; or the error its final state stands for.

    Raises:
        JobFailedError: it failed (``JobLostError`` or ``UnknownTaskError`` when its error is one of those).
        JobCancelledError: it was cancelled.
        DeadLetterError: it is dead.
        ValueError: it succeeded, but ``serializer`` cannot decode its result.
    """
    info = finished.info
    label = f"job {info.id!r} ({info.name})"
    if info.state == "succeeded":
        return None if finished.result is None else _decoded(finished.result, serializer, label)
    if info.state == "failed":
        error = info.error or ErrorInfo("", "no error was recorded")
        failure = _FAILURES.get(error.type, JobFailedError)(f"{label} failed: {error.type}: {error.message}", error)
        if error.traceback:
            # Shown under the local traceback: where the task raised, in whichever process ran it.
            failure.add_note(f"The task's traceback:\n{error.traceback.rstrip()}")
        raise failure
    if info.state == "cancelled":
        raise JobCancelledError(f"{label} was cancelled")
    if info.state == "dead":
        reason = f": {info.error.message}" if info.error is not None else ""
        raise DeadLetterError(
            f"{label} is dead{reason}; once its cause is fixed, Client.requeue_dead({info.id!r}) gives it another round"
        )
    raise RuntimeError(f"the store reported {label} finished while {info.state!r}")


def _decoded(result: bytes, serializer: Serializer, label: str) -> Any:
    try:
        return serializer.loads(result)
    except Exception as exc:
        # Encoded by a consumer whose store had another serializer, most likely.
        raise ValueError(
            f"the result of {label} cannot be decoded by {serializer!r} (is the consumer's store "
            f"using the same serializer?): {exc!r}"
        ) from exc


class Job(Generic[T]):
    """A handle on one stored job: its outcome, its state, a way to cancel it.

    ``Client.submit`` and ``Client.job`` make them; a handle holds only the id and does no I/O
    until asked. ``await job`` is ``await job.result()``.
    """

    __slots__ = ("_id", "_patience", "_store")

    def __init__(self, store: Store, job_id: str, *, patience: float) -> None:
        """A handle on ``job_id`` in ``store``; store calls give up after ``patience`` seconds of outage."""
        self._store = store
        self._id = job_id
        self._patience = patience

    @property
    def id(self) -> str:
        """The job's id."""
        return self._id

    def __await__(self) -> Generator[Any, None, T]:
        return self.result().__await__()

    async def result(self, timeout: float | None = None) -> T:
        """Wait until the job finishes; return its result.

        Args:
            timeout: seconds to wait at most; ``None`` waits until it finishes.

        Raises:
            TimeoutError: ``timeout`` passed first; the job carries on.
            JobFailedError: its task raised (``.error`` says what); the subclass ``JobLostError``
                when a ``once=True`` run was cut short, ``UnknownTaskError`` when no consumer
                knew its task name.
            JobCancelledError: it was cancelled.
            DeadLetterError: it was delivered ``max_deliveries`` times without an outcome, or
                its payload could not be decoded.
            LookupError: no job has this id (never submitted, or purged after its ``result_ttl``).
            StoreUnavailableError: the store stayed unreachable for the client's ``submit_timeout``.
            ValueError: ``timeout`` is not a finite number of seconds >= 0; or the job succeeded
                and the store's serializer cannot decode its result.
        """
        if timeout is not None and not is_seconds(timeout, allow_zero=True):
            raise ValueError(f"timeout must be a finite number of seconds >= 0 or None, got {timeout!r}")
        try:
            finished = await self._wait(timeout)
        except LookupError as exc:
            raise LookupError(self._unknown()) from exc
        return cast(T, outcome(finished, self._store.serializer))

    async def _wait(self, timeout: float | None) -> Finished:
        return await wait_riding_out(
            lambda within: self._store.wait(self._id, within), timeout, self._patience, what=f"job {self._id!r}"
        )

    async def info(self) -> JobInfo:
        """A snapshot of the job: its state, deliveries, times, error.

        Raises:
            LookupError: no job has this id (never submitted, or purged after its ``result_ttl``).
            StoreUnavailableError: the store stayed unreachable for the client's ``submit_timeout``.
        """
        info = await call_store(lambda: self._store.info(self._id), timeout=self._patience, what=f"job {self._id!r}")
        if info is None:
            raise LookupError(self._unknown())
        return info

    async def cancel(self) -> bool:
        """Cancel the job: a queued or delayed one ends ``cancelled`` and never runs; a running one is cancelled.

        A running job's run is cancelled in whichever process runs it, and it ends ``cancelled``.

        Returns:
            False when it had finished already (or no job has this id).

        Raises:
            StoreUnavailableError: the store stayed unreachable for the client's ``submit_timeout``.
        """
        what = f"cancelling job {self._id!r}"
        return await call_store(lambda: self._store.cancel(self._id), timeout=self._patience, what=what)

    def _unknown(self) -> str:
        return f"no job {self._id!r} in the store (never submitted, or purged after its result_ttl)"

    def __repr__(self) -> str:
        return f"<Job id={self._id!r}>"
