"""A worker: one resource, one loop taking tasks, priority first, until it must go.

The hot path lives in ``_serve``: no task, scope or closure is made per job
unless the job asks for one (a timer for a timeout) or the manager does (a
rate limit). The worker's anyio ``scope`` ends the worker (kill, retirement,
an overrun); the run in hand alone is cancelled the asyncio way, once, so its
own cleanup can finish (see ``_core.cancel``).
"""

from __future__ import annotations

import asyncio
import math
from asyncio import InvalidStateError
from time import monotonic
from typing import TYPE_CHECKING, Any

import anyio

from .._observe.collector import FLUSH_LEN, FOLD_LEN
from .._observe.events import WorkerEvent
from .._observe.metrics import TaskLifecycleTimestamps
from .cancel import time_out
from .context import enter_task_runner
from .handle import FINISHING, RUNNING, SETTLED
from .health import jittered_age
from .idle import RECYCLED, SERVE, UNHEALTHY, park_timed
from .outcomes import settle_failure, settle_swallowed

if TYPE_CHECKING:
    from .runtime import Runtime
    from .workers import Worker

__all__ = ("run_worker",)


async def run_worker(rt: Runtime[Any], worker: Worker) -> None:
    """Live one worker's life: get a resource, serve tasks, destroy the resource."""
    enter_task_runner(rt)  # stop() from a task function here must not wait for itself
    leaving: str | None = None
    worker.runs_in(asyncio.current_task())
    try:
        with worker.scope:
            if not worker.holds_resource:
                rt.workers.took_resource(worker, await _create_with_backoff(rt))
            max_age = rt.config.max_resource_age
            if max_age is not None:
                worker.ages_out_at(monotonic() + jittered_age(max_age, rt.rng.random()))
            rt.log.info("worker %d started (%s)", worker.id, worker.reason)
            if rt.hooks.active:
                event = WorkerEvent(kind="created", worker_id=worker.id, burst=worker.burst, reason=worker.reason)
                rt.hooks.emit(event)
            leaving = await _serve(rt, worker, worker.resource)
        if worker.overran:
            leaving = UNHEALTHY  # its scope was cancelled to end a run that overran its cancellation
    finally:
        if worker.holds_resource:
            # Still counted in rt.workers while its resource is destroyed: the supervisor
            # must not fill the slot before it is really free (max_worker_count is a ceiling).
            await rt.resources.destroy_resource(rt.workers.release(worker))
            reason = leaving or ("retired" if worker.retiring else "shutdown")
            rt.log.info("worker %d stopped (%s)", worker.id, reason)
            if rt.hooks.active:
                rt.hooks.emit(WorkerEvent(kind="destroyed", worker_id=worker.id, burst=worker.burst, reason=reason))
        rt.workers.left(worker)
    # A burst worker is replaced only while there is work it would take.
    if leaving and rt.state in ("running", "stopping") and (not worker.burst or rt.queue):
        if rt.hooks.active:
            rt.hooks.emit(WorkerEvent(kind="replaced", worker_id=worker.id, burst=worker.burst, reason=leaving))
        rt.workers.spawn(burst=worker.burst, reason="replacement" if leaving == UNHEALTHY else "recycle")


async def _create_with_backoff(rt: Runtime[Any]) -> Any:
    """Make the worker's resource, however many tries it takes (see ``Resources.create_with_backoff``).

    Only the worker's own scope ends the tries: kill, or the host closing.
    """
    resource = await rt.resources.create_with_backoff()
    assert resource is not None, "without a wanted() test, only a resource ends the tries"
    return resource


async def _serve(rt: Runtime[Any], worker: Worker, resource: Any) -> str | None:
    """Run tasks until the worker must be replaced (returns why) or leaves for good (``None``)."""
    # The measured hot path: it writes inline, a method call less per task each, the fields it
    # changes per task or per park of its ``Worker`` (owned by _core.workers: ``job``, ``parked``,
    # ``idle_since``) and of each ``TaskHandle`` (owned by _core.handle: ``_phase``, ``_attempts``);
    # and it ends a success as ``TaskLedger.finish`` would (see below). All else goes through methods.
    queue = rt.queue
    priority_lane = queue.priority
    main_lane = queue.main
    bounded = rt.bounded
    collector = rt.collector
    hooks = rt.hooks
    limiter = rt.limiter
    new_stamps = tuple.__new__  # builds the NamedTuple without its Python-level __new__
    ledger = rt.ledger
    builtin = ledger.builtin
    pending = builtin.pending if builtin is not None else []
    extend_pending = pending.extend
    # A collector may offer flush(): called when this worker runs out of work (optional, not in the protocol).
    flush = getattr(collector, "flush", None)
    loop = asyncio.get_running_loop()
    call_soon = loop.call_soon
    call_later = loop.call_later
    clock = monotonic
    tasks_left = rt.config.max_tasks_per_worker or 0  # 0: no limit
    probing = rt.config.check_resource is not None
    if probing:
        worker.probe_at(clock() + rt.config.check_resource_interval)
    aging = worker.expires_at != math.inf
    timed = aging or probing  # parked workers wake up on their own, too
    was_idle = False
    # When the worker was last free: the end of its previous run when it goes straight on to
    # the next task. One clock read a task instead of two; the few hundred nanoseconds this
    # loop spends between two runs count as the next one's.
    free_at = clock()
    while True:
        # Take the next task, priority first (see JobQueue.freed).
        if priority_lane:
            job = priority_lane.popleft()
            if job._phase:  # not QUEUED (0): cancelled where it lay, its slot already freed
                queue.drop_dead(True)
                continue
            if bounded:
                queue.freed(True)
        elif main_lane:
            job = main_lane.popleft()
            if job._phase:
                queue.drop_dead(False)
                continue
            if bounded:
                queue.freed(False)
        else:
            if not was_idle:
                was_idle = True
                worker.idle_since = clock()
                # Bookkeeping while there is nothing else to do, queued behind the
                # callbacks of the results just delivered so it never delays them
                # (for the built-in collector, only once there is enough to fold).
                if flush is not None and (builtin is None or len(pending) >= FLUSH_LEN):
                    call_soon(flush)
            worker.job = None  # its result may be big: let it go while parked
            if timed:
                leaving = await park_timed(rt, worker, resource)
                if leaving != SERVE:
                    return leaving
                free_at = clock()
                continue
            # Parked inline: a coroutine level would cost every wake-up under light load.
            waiter = queue.park(worker.burst)
            worker.parked = True
            try:
                await waiter
            except BaseException:
                queue.unpark(waiter, worker.burst)
                raise
            finally:
                worker.parked = False
            if worker.retiring:
                # Woken in the instant it was retired: leave, and hand the wake-up on.
                queue.pass_wake()
                return None
            free_at = clock()
            continue
        was_idle = False
        job._phase = RUNNING
        worker.job = job
        job._attempts += 1
        # Its run began when both it was queued and the worker was free.
        started = free_at if free_at > job._queued_at else job._queued_at
        try:
            if limiter is not None:
                wait = limiter.reserve(started)
                if wait > 0:
                    await anyio.sleep(wait)
                    started = clock()
            if hooks.active:
                ledger.event("started", job, started)
            timeout = job._options.timeout
            if timeout is None:
                # A direct call when there are no arguments: ``f(r, *())`` builds two sequences.
                args = job._args
                result = await (job._fn(resource, *args) if args else job._fn(resource))
            else:
                # A timer, not a cancel scope: a run is cancelled once (see _core.cancel).
                timer = call_later(timeout, time_out, rt, worker, job)
                try:
                    result = await job._fn(resource, *job._args)
                finally:
                    timer.cancel()
        except BaseException as exc:
            job._phase = FINISHING
            worker.job = None  # a retry may run on another worker: only that one holds it then
            if await settle_failure(rt, worker, job, exc, started):
                return UNHEALTHY
            free_at = clock()
        else:
            free_at = finished = clock()
            if worker.cancelling is not None:
                # It was cancelled and returned anyway: neither success nor failure.
                job._phase = FINISHING
                worker.job = None
                if settle_swallowed(rt, worker, job, started):
                    return UNHEALTHY
            else:
                try:
                    job.set_result(result)
                except InvalidStateError:
                    # Its caller cancelled it as the run returned: neither success nor failure.
                    job._phase = SETTLED
                    if hooks.active:
                        ledger.event("cancelled", job, started, finished)
                else:
                    if builtin is not None:
                        # builtin.record_completion((job._queued_at, started, finished)), inlined.
                        extend_pending((started - job._queued_at, finished - started))
                        if len(pending) >= FOLD_LEN or finished >= builtin.fold_by:
                            builtin.fold_due(finished)
                    else:
                        collector.record_completion(
                            new_stamps(TaskLifecycleTimestamps, (job._queued_at, started, finished))
                        )
                    if hooks.active:
                        ledger.event("succeeded", job, started, finished)
                # ledger.finish(job, ...), inlined: this is the hot path, the one end
                # that does not go through finish(), so it writes the ledger's count
                # itself. (A done task needs no SETTLED phase: cancel() returns early on it.)
                ledger.unfinished -= 1
                if not ledger.unfinished and ledger.draining:
                    ledger.drained()
        if tasks_left:
            tasks_left -= 1
            if not tasks_left:
                return RECYCLED
        if aging and clock() >= worker.expires_at:
            return RECYCLED
