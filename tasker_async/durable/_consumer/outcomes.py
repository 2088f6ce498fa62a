"""How a delivery ends, decided from what is known: a finished handle, an unknown name, a bad payload.

Pure functions: they return the ``Outcome`` to record, ``GIVE_BACK`` (the job goes back to the
store as a run cut short) or ``None`` (nothing to record: the consumer already dealt with it).
"""

from __future__ import annotations

import asyncio
import traceback
from typing import Any, Final, Literal

from ...errors import TaskAbortedError
from .._model.errors import UnknownTaskError
from .._model.records import ErrorInfo, qualified_name
from .._model.serializer import Serializer
from .._stores.records import Claim, Outcome
from .book import Fate

__all__ = ("GIVE_BACK", "Settlement", "settle", "succeeded", "undecodable", "unknown_task")

GIVE_BACK: Final = "give_back"
Settlement = Outcome | Literal["give_back"] | None


def settle(claim: Claim, handle: asyncio.Future[Any], fate: Fate | None, serializer: Serializer) -> Settlement:
    """What to do about ``claim`` now that its run's ``handle`` is done.

    Args:
        claim: the job.
        handle: its finished run (after the manager's own retries and timeouts).
        fate: why the consumer cancelled the run itself, if it did.
        serializer: the store's, for the result.
    """
    if fate == "lost" or fate == "kill":
        return None  # lost: another holder records it; kill: given back already
    if handle.cancelled():
        if fate == "cancel":
            return Outcome(lease=claim.hold, state="cancelled")
        return GIVE_BACK  # cancelled by nobody the job knows of: let it run again rather than lose it
    error = handle.exception()
    if error is None:
        return succeeded(claim, handle.result(), serializer)
    if isinstance(error, TaskAbortedError):
        return GIVE_BACK  # the manager was killed under the run: it was cut short, not failed
    return Outcome(lease=claim.hold, state="failed", error=ErrorInfo.from_exception(error))


def succeeded(claim: Claim, result: Any, serializer: Serializer) -> Outcome:
    """The outcome of a run that returned ``result``: ``failed`` with a ``TypeError`` if it cannot be encoded."""
    try:
        data = serializer.dumps(result)
    except Exception as exc:
        message = (
            f"the result of task {claim.name!r} ({type(result).__name__}: {result!r:.80}) "
            f"cannot be encoded by {serializer!r}: {exc}"
        )
        text = "".join(traceback.format_exception(exc))
        return Outcome(lease=claim.hold, state="failed", error=ErrorInfo(qualified_name(TypeError), message, text))
    return Outcome(lease=claim.hold, state="succeeded", result=data)


def unknown_task(claim: Claim, known: list[str]) -> Outcome:
    """The outcome of a job whose task name the consumer's registry lacks: ``failed``, never redelivered."""
    listed = ", ".join(repr(name) for name in sorted(known)[:20]) or "none"
    message = (
        f"no task named {claim.name!r} is registered in the registry of the consumer that took job {claim.id} "
        f"(registered: {listed}); register it, or submit a registered name"
    )
    return Outcome(lease=claim.hold, state="failed", error=ErrorInfo(qualified_name(UnknownTaskError), message))


def undecodable(claim: Claim, exc: Exception, serializer: Serializer) -> Outcome:
    """The outcome of a job whose payload ``serializer`` cannot decode: ``dead``."""
    detail = repr(exc.__cause__) if exc.__cause__ is not None else str(exc)
    message = f"the payload of job {claim.id} (task {claim.name!r}) cannot be decoded by {serializer!r}: {detail}"
    error = ErrorInfo(qualified_name(type(exc)), message, "".join(traceback.format_exception(exc)))
    return Outcome(lease=claim.hold, state="dead", error=error)
