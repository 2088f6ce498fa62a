"""A worker with nothing to do: park until a task may be there, and, when timed, age and probe.

The untimed park (no ``max_resource_age``, no ``check_resource``) stays
inline in ``_core.worker._serve``: it is on the path of every task under light
load, and a coroutine level costs each wake-up. A worker whose resource ages
or is probed parks here instead, with a deadline, and ``idle_verdict``
decides, without awaiting, what waking up means.
"""

from __future__ import annotations

import enum
from time import monotonic
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from .runtime import Runtime
    from .workers import Worker

__all__ = ("RECYCLED", "SERVE", "UNHEALTHY", "IdleVerdict", "idle_verdict", "park_timed")

# Why a worker left, when it must be replaced.
UNHEALTHY = "unhealthy"  # its resource went bad (a task's error, or the idle probe)
RECYCLED = "recycled"  # max_tasks_per_worker or max_resource_age reached
SERVE = "serve"  # not leaving: take a task, or park again


class IdleVerdict(enum.Enum):
    """What a timed worker does on waking."""

    SERVE = "serve"  # take a task, or park again
    RECYCLE = "recycle"  # max_resource_age reached: leave, to be replaced
    PROBE = "probe"  # check_resource is due


def idle_verdict(now: float, expires_at: float, next_probe: float) -> IdleVerdict:
    """Decide what a worker woken at ``now`` does; ageing out comes before a probe."""
    if now >= expires_at:
        return IdleVerdict.RECYCLE
    if now >= next_probe:
        return IdleVerdict.PROBE
    return IdleVerdict.SERVE


async def park_timed(rt: Runtime[Any], worker: Worker, resource: Any) -> str | None:
    """Park until a task may be there or the resource's next deadline.

    Returns ``SERVE``, or why the worker leaves: ``RECYCLED`` (aged out),
    ``UNHEALTHY`` (a probe found the resource bad), ``None`` (retired meanwhile).
    """
    queue = rt.queue
    waiter = worker.park(queue)
    woken = False  # for a task; otherwise (the deadline, a cancellation) the worker withdraws
    try:
        wake_at = min(worker.expires_at, worker.next_probe)
        with anyio.move_on_after(max(wake_at - monotonic(), 0.0)):
            await waiter
            woken = True
    finally:
        worker.unpark(queue, waiter, woken=woken)
    if worker.retiring:
        queue.pass_wake()  # woken in the instant it was retired: hand the wake-up on
        return None
    now = monotonic()
    verdict = idle_verdict(now, worker.expires_at, worker.next_probe)
    leaving = RECYCLED if verdict is IdleVerdict.RECYCLE else SERVE
    if verdict is IdleVerdict.PROBE:
        worker.probe_at(now + rt.config.check_resource_interval)
        if not await rt.resources.resource_ok(resource):
            leaving = UNHEALTHY
    if leaving != SERVE:
        queue.pass_wake()
    return leaving
