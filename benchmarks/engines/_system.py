"""What the engine benchmarks compare: a queueing system, as a worker command and a producer.

Every system of ``python -m benchmarks.engines`` is one ``System``: the harness starts a fresh engine
(a Redis server or a PostgreSQL database), calls ``setup``, starts ``worker(url, concurrency)`` as a child
process from the repository's root, warms it up with ``produce`` of a few jobs, then times ``produce`` of the
measured jobs. Each system runs the same no-op task at the same concurrency, the way its documentation shows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ("Engine", "System", "Timing")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """One producer run: seconds from the first submission to the last result, and to the last submission."""

    seconds: float
    submitted: float


Engine = str  # "redis" or "postgres"


@dataclass(frozen=True, slots=True, kw_only=True)
class System:
    """One queueing system on one engine.

    Attributes:
        name: how the tables name it, e.g. ``"tasker_async"``, ``"taskiq-redis"``.
        engine: ``"redis"`` or ``"postgres"``.
        worker: ``(url, concurrency) -> argv`` of one worker process running ``concurrency`` no-op jobs at once.
        setup: ``(url) -> None``: prepares the empty engine (tables, schema) before the worker starts.
        produce: ``(url, jobs, submitters) -> Timing``: submits ``jobs`` no-op jobs from ``submitters``
            concurrent submitters in this process and awaits every result, the peer's own way.
        module: the importable module the system needs (a missing one skips the system, saying so).
    """

    name: str
    engine: Engine
    worker: Callable[[str, int], list[str]]
    setup: Callable[[str], Awaitable[None]]
    produce: Callable[[str, int, int], Awaitable[Timing]]
    module: str
