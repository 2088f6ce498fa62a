"""``Step``: one node of a workflow, the function it runs and how its jobs are stored and delivered."""

from __future__ import annotations

import keyword
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import WorkflowError
from ..registry import TaskOptions
from .signature import Params

__all__ = ("Step", "check_step_name")

T = TypeVar("T")


def check_step_name(workflow: str, name: object) -> str:
    """``name`` if it can name a step of ``workflow``.

    A step's children receive its result as a keyword argument of that name, so it must be a Python identifier.

    Raises:
        WorkflowError: it is not a string, not an identifier, or a Python keyword.
    """
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise WorkflowError(
            f"step name {name!r} of workflow {workflow!r} must be a Python identifier "
            "(its children receive its result as a keyword argument of that name)"
        )
    return name


@dataclass(frozen=True, slots=True, kw_only=True)
class Step(Generic[T]):
    """A step of a workflow, as ``@workflow.step(...)`` returns it; still callable as the function it wraps.

    Attributes:
        workflow: the name of the workflow it belongs to.
        name: its name, unique in its workflow (by default the function's ``__name__``); children receive
            its result as a keyword argument of that name.
        fn: ``async def fn(resource, *, input_or_parent, ...)``.
        depends_on: the names of its parents: it runs once all of them succeeded.
        map_over: the parent whose result (a list) it runs once per item of, or ``None``.
        options: queue, deliveries, lease and result lifetime of its jobs.
        priority: whether its jobs go in the priority lane.
        params: what its signature receives by keyword.
    """

    workflow: str
    name: str
    fn: Callable[..., Awaitable[T]]
    depends_on: tuple[str, ...]
    map_over: str | None
    options: TaskOptions
    priority: bool
    params: Params

    @property
    def task_name(self) -> str:
        """The name its jobs are stored under: ``"<workflow>.<step>"`` (a step name holds no dot)."""
        return f"{self.workflow}.{self.name}"

    @property
    def queue(self) -> str:
        """The queue its jobs go to."""
        return self.options.queue

    def __call__(self, resource: Any, /, **kwargs: Any) -> Awaitable[T]:
        """Call the wrapped function directly (no store involved)."""
        return self.fn(resource, **kwargs)

    def __repr__(self) -> str:
        mapped = "" if self.map_over is None else f" map_over={self.map_over!r}"
        return f"<Step {self.workflow}.{self.name} depends_on={list(self.depends_on)}{mapped}>"
