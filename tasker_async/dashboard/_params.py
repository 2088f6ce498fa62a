"""The query parameters of the listing endpoints, checked: a bad one is a ``ValueError`` naming it. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

__all__ = ("DEFAULT_LIMIT", "JobQuery", "RunQuery", "job_query", "run_query")

DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class JobQuery:
    """``GET /api/jobs``: the finished states asked for, the queue (None: any) and the most to list."""

    states: tuple[str, ...]
    queue: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class RunQuery:
    """``GET /api/runs``: the run states asked for (None: any) and the most to list."""

    states: tuple[str, ...] | None
    limit: int


def _check_names(params: Mapping[str, str], allowed: Collection[str]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown query parameter {unknown[0]!r}; this endpoint takes {', '.join(allowed)}")


def _states(text: str | None) -> tuple[str, ...] | None:
    """``a,b`` as ``("a", "b")``; None when the parameter is absent.

    Raises:
        ValueError: it is present but names no state.
    """
    if text is None:
        return None
    states = tuple(part.strip() for part in text.split(",") if part.strip())
    if not states:
        raise ValueError("states must name one state at least (comma-separated), got an empty value")
    return states


def _limit(text: str | None) -> int:
    """The ``limit`` parameter as a whole number (the store checks its range)."""
    if text is None:
        return DEFAULT_LIMIT
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"limit must be a whole number, got {text!r}") from None


def job_query(params: Mapping[str, str]) -> JobQuery:
    """Read ``states`` (default: every finished state), ``queue`` and ``limit``.

    Raises:
        ValueError: an unknown parameter, an empty ``states`` or ``queue``, a ``limit`` that is no whole number.
    """
    _check_names(params, ("states", "queue", "limit"))
    queue = params.get("queue")
    if queue is not None and not queue:
        raise ValueError("queue must name a queue, got an empty value")
    states = _states(params.get("states")) or ("succeeded", "failed", "cancelled", "dead")
    return JobQuery(states, queue, _limit(params.get("limit")))


def run_query(params: Mapping[str, str]) -> RunQuery:
    """Read ``states`` (default: any) and ``limit``.

    Raises:
        ValueError: an unknown parameter, an empty ``states``, a ``limit`` that is no whole number.
    """
    _check_names(params, ("states", "limit"))
    return RunQuery(_states(params.get("states")), _limit(params.get("limit")))
