"""Calling the user's resource callbacks: make, destroy, judge, probe; and the creation breaker.

``ResourceCallbacks`` is the piece of a manager that talks to ``on_create``,
``on_destroy``, ``check_health`` and ``check_resource``: sync or async, each
call's failure is logged and reported, never raised into a task except as
the documented error.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio

from .._observe.events import EventHooks, ResourceCreationFailed
from ..errors import ResourceCreationError
from .cancel import is_stray_cancellation, uncancellable
from .health import CreationStreak, StreakNote, creation_backoff

if TYPE_CHECKING:
    from .config import Config, LoggerProtocol

__all__ = ("ResourceCallbacks",)

R = TypeVar("R")
T = TypeVar("T")


class _CreationFailed(ResourceCreationError):
    """``on_create`` failed; ``retry_in``: how long its caller waits before trying again, if it does."""

    def __init__(self, message: str, retry_in: float | None) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class ResourceCallbacks(Generic[R]):
    """Resource callbacks, and the breaker that fails tasks fast while none can be made.

    Args:
        config: the manager's settings (the callbacks, backoff, breaker threshold).
        log: where failures are logged.
        hooks: told of every ``on_create`` failure.
        rng: the random source of the backoff's jitter.
        alive_workers: how many workers hold a resource now (the breaker opens only at none).
        running: whether the manager runs (the breaker opens only then).
        breaker_changed: called with ``True`` when the breaker opens, ``False`` when it closes.
    """

    def __init__(
        self,
        config: Config[R],
        log: logging.Logger | LoggerProtocol,
        hooks: EventHooks,
        rng: random.Random,
        *,
        alive_workers: Callable[[], int],
        running: Callable[[], bool],
        breaker_changed: Callable[[bool], None],
    ) -> None:
        """Start with the breaker closed and no failure."""
        self.config = config
        self.log = log
        self.hooks = hooks
        self.rng = rng
        self._alive_workers = alive_workers
        self._running = running
        self._breaker_changed = breaker_changed
        self.breaker_open = False
        self.creation_failures = 0  # on_create failures since start, for stats()
        # on_create failures in a row, whoever called it: for the log and the breaker.
        self.creation_streak = CreationStreak()
        self.last_creation_error: BaseException | None = None
        # Callers waiting out a creation backoff: a creation that succeeds ends every wait.
        self._backing_off: set[asyncio.Future[None]] = set()

    def breaker_error(self) -> ResourceCreationError:
        """The error a submission gets while the breaker is open; the last ``on_create`` error is its cause."""
        error = ResourceCreationError(
            f"no resource could be created ({self.creation_streak.attempts} failures in a row, "
            "no worker alive): failing fast until on_create succeeds again"
        )
        error.__cause__ = self.last_creation_error
        return error

    async def create_resource(self, *, failures: int = 0, backs_off: bool = False) -> R:
        """Call ``on_create``; its failure is logged, reported and raised as ``ResourceCreationError``.

        A success ends the backoff of every caller waiting in
        ``create_with_backoff``: they try again at once.

        Args:
            failures: failures in a row of this caller before this call, for the report.
            backs_off: the caller tries again after a failure: its wait (jittered from
                ``rng``, drawn only then) is reported and raised as the error's ``retry_in``.
        """
        try:
            made = self.config.on_create()
            if inspect.isawaitable(made):
                made = await made
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and not is_stray_cancellation():
                raise
            retry_in = self._creation_delay(failures + 1) if backs_off else None
            self._creation_failed(exc, failures, retry_in)
            raise _CreationFailed(f"on_create failed: {exc!r}", retry_in) from exc
        ended = self.creation_streak.succeeded(monotonic())
        if ended is not None:
            self.last_creation_error = None
            self.log.info("on_create recovered after %d failed attempts in %.1f s", *ended)
            if self.breaker_open:
                self.breaker_open = False
                self.log.info("a resource was created: the creation breaker closes")
                self._breaker_changed(False)
        for waiter in self._backing_off:
            if not waiter.done():
                waiter.set_result(None)
        return made

    def _creation_delay(self, failures: int) -> float:
        base, cap = self.config.creation_backoff_base, self.config.creation_backoff_max
        return creation_backoff(failures, base=base, cap=cap, draw=self.rng.random())

    async def create_with_backoff(self, *, wanted: Callable[[], bool] | None = None) -> R | None:
        """Call ``on_create`` until it succeeds; ``None`` if ``wanted()`` is false after a wait.

        After a failure, wait out the backoff (``Config.creation_backoff_base``,
        ``creation_backoff_max``), or less: a resource created by anyone
        meanwhile ends the wait. Cancelling the caller ends the tries.
        """
        failures = 0
        while True:
            try:
                return await self.create_resource(failures=failures, backs_off=True)
            except _CreationFailed as error:
                failures += 1
                delay = error.retry_in or 0.0
            waiter = asyncio.get_running_loop().create_future()
            self._backing_off.add(waiter)
            try:
                with anyio.move_on_after(delay):
                    await waiter
            finally:
                self._backing_off.discard(waiter)
            if wanted is not None and not wanted():
                return None

    def _creation_failed(self, exc: BaseException, failures: int, retry_in: float | None) -> None:
        self.creation_failures += 1
        self.last_creation_error = exc
        streak = self.creation_streak
        note = streak.failed(monotonic())
        retrying = "" if retry_in is None else f"; retrying in {retry_in:.2f} s"
        if note is StreakNote.FIRST:
            later = f"later failures in a row are logged at DEBUG, summed up every {streak.interval:g} s"
            self.log.error("on_create failed: %r%s (%s)", exc, retrying, later, exc_info=exc)
        else:
            self.log.debug("on_create failed again (%d in a row): %r%s", streak.attempts, exc, retrying)
            if note is StreakNote.SUMMARY:
                failing = streak.summarised - streak.started
                self.log.error(
                    "on_create failing for %.0f s, %d attempts, last error: %r", failing, streak.attempts, exc
                )
        if self.hooks.active:
            self.hooks.emit(ResourceCreationFailed(error=exc, consecutive_failures=failures + 1, retry_in=retry_in))
        threshold = self.config.creation_breaker_threshold
        if (
            threshold is not None
            and not self.breaker_open
            and streak.attempts >= threshold
            and not self._alive_workers()
            and self._running()
        ):
            self.breaker_open = True
            self.log.error("the creation breaker opens: %s", self.breaker_error())
            self._breaker_changed(True)

    async def destroy_resource(self, resource: R) -> None:
        """Call ``on_destroy`` and see it through whatever cancellation arrives; log what it raises."""
        on_destroy = self.config.on_destroy
        if on_destroy is None:
            return
        try:
            done = on_destroy(resource)
            if inspect.isawaitable(done):
                await uncancellable(done, self.config.destroy_timeout)
        except TimeoutError:
            self.log.error(
                "on_destroy of %r took over destroy_timeout=%s s: abandoned", resource, self.config.destroy_timeout
            )
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and not is_stray_cancellation():
                raise
            self.log.error("on_destroy failed for %r", resource, exc_info=True)

    async def is_healthy(self, exc: BaseException) -> bool:
        """Ask ``check_health``; it raising counts as unhealthy and is logged."""
        check = self.config.check_health
        if check is None:
            return True
        return await self._ask(check, exc, "check_health raised on %r; treating the resource as unhealthy")

    async def resource_ok(self, resource: R) -> bool:
        """Probe an idle resource with ``check_resource``; it raising counts as a bad resource."""
        check = self.config.check_resource
        if check is None:
            return True
        return await self._ask(check, resource, "check_resource raised on %r; replacing the resource")

    async def _ask(self, check: Callable[[Any], object], subject: object, complaint: str) -> bool:
        try:
            verdict = check(subject)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            return bool(verdict)
        except (Exception, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and not is_stray_cancellation():
                raise
            self.log.error(complaint, subject, exc_info=True)
            return False
