"""How a consumer winds down: drain (a stop), then give back what still runs (a kill) and leave the store."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from .backoff import log

if TYPE_CHECKING:
    from .claims import Claimer
    from .runs import Runner
    from .wiring import Wiring

__all__ = ("drain", "leave", "what_broke")


def what_broke(exc: Exception) -> Exception:
    """The error that broke a consumer's loops, out of the task group's wrapping when it is the only one."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def drain(claimer: Claimer, wiring: Wiring, *, killing: Callable[[], bool]) -> None:
    """Stop claiming and give back what has not started; then, unless ``killing()``, wait until all is recorded.

    The other loops (lease ticks, the outbox) go on meanwhile: running jobs keep their leases,
    cancellation requests still reach them, and their outcomes are recorded as they end.
    """
    book, outbox = wiring.book, wiring.outbox
    claimer.close()
    await claimer.done.wait()  # a claim in flight lands in the book, not in the void
    for held in list(book.waiting):
        book.unstart(held)
        outbox.give_back(held.claim.hold, started=False)
    await book.changed.wait_until(lambda: not book or killing())


async def leave(wiring: Wiring, runner: Runner) -> None:
    """Give back whatever still runs (a kill, or loops that broke), record what is pending once, leave the store.

    Run shielded, with the loops over: one try each, as the process may be on its way out;
    whatever the store does not take now it takes back when the leases expire.
    """
    consumer, book, outbox = wiring.consumer, wiring.book, wiring.outbox
    for held in list(book.held.values()):
        if runner.cancel(held, "kill"):
            outbox.give_back(held.claim.hold, started=True)
        elif held in book.waiting:
            book.unstart(held)
            outbox.give_back(held.claim.hold, started=False)
    await anyio.lowlevel.checkpoint()  # let the done callbacks of runs that just ended leave their outcomes
    if outbox:
        try:
            await outbox.flush()
        except Exception as exc:
            log.warning(
                "consumer %s could not record %d outcome(s) before leaving (the store takes those jobs back "
                "when their leases expire): %r",
                consumer,
                len(outbox),
                exc,
            )
    wiring.port.set_backlog(0)
    try:
        await wiring.store.leave(consumer)
    except Exception as exc:
        log.warning("consumer %s could not leave the store: %r", consumer, exc)
