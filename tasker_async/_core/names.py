"""How a task function is named in logs, events and reprs."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ("task_name",)


def task_name(fn: Callable[..., object]) -> str:
    """A task function's qualified name (a partial's or a callable object's too), for logs and events."""
    name = getattr(fn, "__qualname__", None)
    if isinstance(name, str) and name:
        return name
    inner = getattr(fn, "func", None)  # functools.partial
    if inner is not None and inner is not fn:
        return task_name(inner)
    return type(fn).__qualname__ if callable(fn) else repr(fn)
