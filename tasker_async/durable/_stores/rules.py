"""The rules every store applies the same way, as pure functions of a job's fields and the engine's clock.

An engine that decides in its own language (SQL, Lua) mirrors these functions; the in-memory store calls them.
"""

from __future__ import annotations

from typing import Literal

from .._model.errors import DeadLetterError, JobLostError
from .._model.records import FINISHED, ErrorInfo, JobState, qualified_name
from .protocol import CONSUMER_STALE_AFTER, LOST_MESSAGE

__all__ = (
    "Fate",
    "dead_error",
    "expired_fate",
    "fate_error",
    "is_live",
    "key_in_use",
    "lost_error",
    "purgeable",
    "unstarted_fate",
    "visible_state",
)

# What becomes of a running job taken back from its holder.
Fate = Literal["queued", "failed", "dead", "cancelled"]


def expired_fate(*, once: bool, deliveries: int, max_deliveries: int, cancel_requested: bool) -> Fate:
    """The fate of a running job whose run was cut short: its lease expired, or its holder was killed.

    A job asked to be cancelled ends ``cancelled`` (running it again would defy the request); a ``once`` job
    ends ``failed`` (``JobLostError``: it may have run); one delivered ``max_deliveries`` times goes
    ``dead``; any other is ``queued`` again, ready at once and at its old place (its ready time kept): ahead
    of the jobs queued behind it, so a dead consumer's jobs reach another within 1.5 x lease even when a
    backlog waits.
    """
    if cancel_requested:
        return "cancelled"
    if once:
        return "failed"
    if deliveries >= max_deliveries:
        return "dead"
    return "queued"


def unstarted_fate(*, cancel_requested: bool) -> Fate:
    """The fate of a running job given back before it started: a job asked to be cancelled never runs."""
    return "cancelled" if cancel_requested else "queued"


def lost_error() -> ErrorInfo:
    """The error of a ``once`` job whose run was cut short."""
    return ErrorInfo(qualified_name(JobLostError), LOST_MESSAGE)


def dead_error(deliveries: int) -> ErrorInfo:
    """The error of a job that went dead after ``deliveries`` deliveries without an outcome."""
    times = "once" if deliveries == 1 else f"{deliveries} times"
    return ErrorInfo(qualified_name(DeadLetterError), f"delivered {times} without an outcome")


def fate_error(fate: Fate, deliveries: int) -> ErrorInfo | None:
    """The error a job taken back keeps for ``fate`` (None where it has none)."""
    if fate == "failed":
        return lost_error()
    if fate == "dead":
        return dead_error(deliveries)
    return None


def key_in_use(state: str, finished_at: float | None, result_ttl: float, now: float) -> bool:
    """Whether a job's key still dedups submissions: unfinished (dead included), or finished within its TTL."""
    if state == "dead" or state not in FINISHED or finished_at is None:
        return True
    return now - finished_at < result_ttl


def purgeable(state: str, finished_at: float | None, result_ttl: float, now: float) -> bool:
    """Whether ``purge`` deletes a job: finished (never dead) longer than its ``result_ttl`` ago."""
    if state == "dead" or state not in FINISHED or finished_at is None:
        return False
    return now - finished_at >= result_ttl


def visible_state(state: JobState, ready_at: float, now: float) -> JobState:
    """The state a snapshot shows: a queued job whose ready time is still ahead is ``delayed``."""
    if state == "queued" and ready_at > now:
        return "delayed"
    return state


def is_live(heartbeat_at: float, now: float) -> bool:
    """Whether a consumer heard from at ``heartbeat_at`` is still listed at ``now``."""
    return now - heartbeat_at < CONSUMER_STALE_AFTER
