"""The event loops measured on: the default asyncio loop, and uvloop when it is installed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LoopKind:
    """A named event loop; ``factory`` is ``None`` for asyncio's default."""

    name: str
    factory: Callable[[], asyncio.AbstractEventLoop] | None


class Run(Protocol):
    """Runs one coroutine to completion on the loop and returns its result."""

    def __call__(self, coro: Coroutine[Any, Any, T], /) -> T: ...


def loop_kinds() -> tuple[list[LoopKind], list[str]]:
    """The loops to measure on, and a note for each one that is skipped."""
    kinds = [LoopKind("asyncio", None)]
    try:
        import uvloop
    except ImportError:
        return kinds, ["skipped: uvloop not installed (it comes with the bench extra)"]
    kinds.append(LoopKind("uvloop", uvloop.new_event_loop))
    return kinds, []


@contextmanager
def running(kind: LoopKind) -> Iterator[Run]:
    """One loop of ``kind`` for every measurement made on it, closed at the end."""
    with asyncio.Runner(loop_factory=kind.factory) as runner:
        yield runner.run
