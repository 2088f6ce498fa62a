"""``drive``: run a coroutine that never suspends to its end, synchronously (the glue over a synchronous table)."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ("drive",)

T = TypeVar("T")


def drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """The value of ``coroutine``, run in one go; for glue whose table's methods never suspend.

    Raises:
        RuntimeError: the coroutine suspended (a table method awaited something that waits): a bug.
    """
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a run table over synchronous calls suspended: its methods must not wait")
