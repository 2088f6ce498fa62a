"""Riding out a store outage: a capped, jittered backoff between tries, until a deadline.

``backoff_delay`` decides (pure, no clock); ``Backoff`` and ``call_store`` apply the decisions.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from .._model.errors import StoreUnavailableError

__all__ = ("FIRST_DELAY", "LONGEST_DELAY", "Backoff", "backoff_delay", "call_store", "wait_riding_out")

T = TypeVar("T")

# Seconds before the second try; each failure in a row doubles it, up to LONGEST_DELAY.
FIRST_DELAY = 0.05
LONGEST_DELAY = 1.0


def backoff_delay(
    failures: int, *, remaining: float, draw: float, first: float = FIRST_DELAY, cap: float = LONGEST_DELAY
) -> float | None:
    """Seconds to wait after the ``failures``-th failure in a row (1-based), or ``None`` when no time remains.

    ``first * 2 ** (failures - 1)``, capped at ``cap``, then jittered the "equal" way: a point
    between half and all of it chosen by ``draw`` (uniform in [0, 1)), so callers that failed
    together try again apart. Never past the deadline: at most ``remaining``, so the last try
    happens when the time is up.
    """
    if remaining <= 0:
        return None
    grown = min(cap, first * 2.0 ** min(failures - 1, 64))
    return min(remaining, grown * (0.5 + 0.5 * draw))


class Backoff:
    """One outage as one caller sees it: it waits between tries, and gives up at its deadline.

    Args:
        deadline: when to give up (``anyio.current_time()`` clock).
        what: what the caller was doing, for the error message.
        budget: the seconds the deadline allowed, for the error message.
    """

    __slots__ = ("budget", "deadline", "failures", "what")

    def __init__(self, deadline: float, *, what: str, budget: float) -> None:
        self.deadline = deadline
        self.what = what
        self.budget = budget
        self.failures = 0

    def give_up(self, cause: BaseException | None) -> StoreUnavailableError:
        """The error to raise once the deadline passed."""
        detail = f": {cause}" if cause is not None else ""
        return StoreUnavailableError(f"{self.what}: the store did not answer within {self.budget:g} s{detail}")

    async def pause(self, cause: StoreUnavailableError, *, until: float | None = None) -> None:
        """Wait before the next try; ``until`` (a caller's own deadline) shortens the wait.

        Raises:
            StoreUnavailableError: the outage outlasted the deadline (``cause`` chained).
        """
        self.failures += 1
        now = anyio.current_time()
        delay = backoff_delay(self.failures, remaining=self.deadline - now, draw=random.random())
        if delay is None:
            raise self.give_up(cause) from cause
        if until is not None:
            delay = min(delay, max(0.0, until - now))
        await anyio.sleep(delay)


async def call_store(call: Callable[[], Awaitable[T]], *, timeout: float, what: str) -> T:
    """Await ``call()``, trying again while it raises ``StoreUnavailableError``, for ``timeout`` seconds at most.

    A call that hangs is cancelled at the deadline too.

    Raises:
        StoreUnavailableError: no answer within ``timeout`` seconds.
    """
    backoff: Backoff | None = None  # made at the first failure: most calls succeed at once
    last: StoreUnavailableError | None = None
    with anyio.move_on_after(timeout) as scope:
        while True:
            try:
                return await call()
            except StoreUnavailableError as exc:
                last = exc
                if backoff is None:
                    backoff = Backoff(scope.deadline, what=what, budget=timeout)
                await backoff.pause(exc)
    raise Backoff(scope.deadline, what=what, budget=timeout).give_up(last) from last


async def wait_riding_out(
    wait: Callable[[float | None], Awaitable[T]], timeout: float | None, patience: float, *, what: str
) -> T:
    """``await wait(timeout)``: a store's wait for a job or a run, riding out each outage for ``patience`` s.

    While an outage lasts each try only looks (a wait of no time), and the store's answer, even "not
    finished yet", ends the outage. The store honours ``timeout`` itself; a guard of ``timeout + patience``
    covers one that stops answering.

    Raises:
        TimeoutError: ``timeout`` passed first (it carries on).
        LookupError: the store knows no such job or run.
        StoreUnavailableError: an outage outlasted ``patience``, or the store did not answer within the guard.
    """
    if timeout is None:
        # Without a timeout there is nothing to guard (and no cancel scope to pay for on each result).
        found = await _poll(wait, None, patience, what)
        assert found is not None  # only a timeout makes _poll give up
        return found[0]
    guard = timeout + patience
    with anyio.move_on_after(guard):
        found = await _poll(wait, timeout, patience, what)
        if found is None:
            raise TimeoutError(f"{what} did not finish within {timeout!r} s; it carries on")
        return found[0]
    raise StoreUnavailableError(
        f"waiting for {what}: the store did not answer within {guard:g} s"
        f" (the {timeout:g} s timeout, then {patience:g} s of submit_timeout)"
    )


async def _poll(
    wait: Callable[[float | None], Awaitable[T]], timeout: float | None, patience: float, what: str
) -> tuple[T] | None:
    """The answer (in a 1-tuple); ``None`` once ``timeout`` passed."""
    deadline = None if timeout is None else anyio.current_time() + timeout
    backoff: Backoff | None = None  # the outage under way, if any
    while True:
        remaining = None if deadline is None else max(0.0, deadline - anyio.current_time())
        try:
            return (await wait(remaining if backoff is None else 0.0),)
        except TimeoutError:
            if backoff is None:
                return None
            backoff = None  # the store answered: the outage is over
        except StoreUnavailableError as exc:
            if deadline is not None and anyio.current_time() >= deadline:
                return None
            if backoff is None:
                backoff = Backoff(anyio.current_time() + patience, what=f"waiting for {what}", budget=patience)
            await backoff.pause(exc, until=deadline)
