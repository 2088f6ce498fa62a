"""``Registry`` and ``DurableTask``: task names, the wire contract, bound to functions and their options."""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypedDict, TypeVar

from typing_extensions import Unpack

from ...errors import ConfigError
from .errors import WorkflowError

if TYPE_CHECKING:
    from .workflow.definition import Workflow
    from .workflow.step import Step

__all__ = ("DeliveryOptions", "DurableTask", "Registry", "TaskOptions")

R = TypeVar("R")
P = ParamSpec("P")
T = TypeVar("T")


def _check_seconds(name: str, value: object, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name} must be {'>= 0' if allow_zero else '> 0'} seconds, got {value!r}")
    return float(value)


class DeliveryOptions(TypedDict, total=False):
    """The options of ``Registry.task`` and ``Workflow`` besides the queue; ``TaskOptions`` gives their defaults."""

    max_deliveries: int
    lease: float
    result_ttl: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskOptions:
    """How jobs of one task are stored and delivered.

    Attributes:
        queue: the queue its jobs go to.
        max_deliveries: starts without an outcome before a job goes dead.
        lease: seconds a consumer holds a job between renewals.
        result_ttl: seconds a finished job and its result are kept.
    """

    queue: str = "default"
    max_deliveries: int = 5
    lease: float = 30.0
    result_ttl: float = 86400.0

    def __post_init__(self) -> None:
        if not isinstance(self.queue, str) or not self.queue:
            raise ConfigError(f"queue must be a non-empty string, got {self.queue!r}")
        if isinstance(self.max_deliveries, bool) or not isinstance(self.max_deliveries, int) or self.max_deliveries < 1:
            raise ConfigError(f"max_deliveries must be a whole number >= 1, got {self.max_deliveries!r}")
        object.__setattr__(self, "lease", _check_seconds("lease", self.lease, allow_zero=False))
        object.__setattr__(self, "result_ttl", _check_seconds("result_ttl", self.result_ttl, allow_zero=True))


@dataclass(frozen=True, slots=True)
class DurableTask(Generic[R, P, T]):
    """A registered task: still callable as the function it wraps, with its wire name and options.

    Attributes:
        name: the name stored with each job (the wire contract).
        fn: ``async def fn(resource, *args)``.
        options: queue, deliveries, lease and result lifetime.
    """

    name: str
    fn: Callable[Concatenate[R, P], Awaitable[T]]
    options: TaskOptions = field(default_factory=TaskOptions)

    @property
    def queue(self) -> str:
        """The queue its jobs go to."""
        return self.options.queue

    def __call__(self, resource: R, /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        """Call the wrapped function directly (no store involved)."""
        return self.fn(resource, *args, **kwargs)


@dataclass(frozen=True, slots=True)
class StepTask:
    """A registered workflow step as a consumer runs its jobs.

    Attributes:
        step: the step.
        task: its function as a task named ``"<workflow>.<step>"``, with its options.
        split: whether its result goes to the store element by element: some step maps over it and it is not
            mapped itself (a mapped step's list is its items' results, which the store keeps one by one).
    """

    step: Step[Any]
    task: DurableTask[Any, Any, Any]
    split: bool


class Registry:
    """Task names bound to functions, and workflows: what a client may submit and a consumer may run."""

    def __init__(self) -> None:
        self._tasks: dict[str, DurableTask[Any, Any, Any]] = {}
        self._workflows: dict[str, Workflow] = {}
        # The job name of every registered workflow's steps, to the step as a consumer runs it.
        self._steps: dict[str, StepTask] = {}

    def task(
        self, name: str, *, queue: str = "default", **options: Unpack[DeliveryOptions]
    ) -> Callable[[Callable[Concatenate[R, P], Awaitable[T]]], DurableTask[R, P, T]]:
        """Register the decorated ``async def fn(resource, *args)`` under ``name``.

        Args:
            name: the name stored with each job.
            queue: the queue its jobs go to.
            options: ``max_deliveries``, ``lease``, ``result_ttl`` (``TaskOptions`` gives their defaults).

        Raises:
            ConfigError: ``name`` is taken or empty, or an option is out of range.
            TypeError: the decorated object is not an async function.
        """
        checked = TaskOptions(queue=queue, **options)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a task name must be a non-empty string, got {name!r}")

        def register(fn: Callable[Concatenate[R, P], Awaitable[T]]) -> DurableTask[R, P, T]:
            if not inspect.iscoroutinefunction(fn):
                raise TypeError(f"task {name!r} must be an async function (async def fn(resource, ...)), got {fn!r}")
            task: DurableTask[R, P, T] = DurableTask(name, fn, checked)
            self.add(task)
            return task

        return register

    def add(self, task: DurableTask[Any, Any, Any]) -> None:
        """Register an existing ``DurableTask``.

        Raises:
            ConfigError: its name is taken (by a task, or by a step of a registered workflow).
        """
        if task.name in self._tasks:
            raise ConfigError(f"task name {task.name!r} is registered twice")
        if task.name in self._steps:
            workflow = self._steps[task.name].step.workflow
            raise ConfigError(f"task name {task.name!r} is the job name of a step of workflow {workflow!r}")
        self._tasks[task.name] = task

    def add_workflow(self, workflow: Workflow) -> None:
        """Register ``workflow`` after checking its graph; no step may be added to it afterwards.

        Raises:
            WorkflowError: its definition is wrong (see ``Workflow.validate``), its name is registered
                already, or a step's job name (``"<workflow>.<step>"``) is a registered task's name.
        """
        workflow.validate()
        if workflow.name in self._workflows:
            raise WorkflowError(f"workflow name {workflow.name!r} is registered twice")
        taken = [step.task_name for step in workflow.steps.values() if step.task_name in self._tasks]
        if taken:
            raise WorkflowError(
                f"workflow {workflow.name!r}: the job name(s) {', '.join(map(repr, taken))} of its steps "
                "are registered tasks' names"
            )
        workflow._seal()
        self._workflows[workflow.name] = workflow
        mapped_over = {step.map_over for step in workflow.steps.values() if step.map_over is not None}
        for step in workflow.steps.values():
            task = DurableTask(step.task_name, step.fn, step.options)
            split = step.map_over is None and step.name in mapped_over
            self._steps[step.task_name] = StepTask(step, task, split)

    def workflow(self, name: str) -> Workflow | None:
        """The workflow registered under ``name``, or ``None``."""
        return self._workflows.get(name)

    @property
    def workflows(self) -> tuple[Workflow, ...]:
        """The registered workflows, in registration order."""
        return tuple(self._workflows.values())

    def step(self, name: str) -> Step[Any] | None:
        """The step of a registered workflow whose jobs are named ``name`` (``"<workflow>.<step>"``), or ``None``."""
        found = self._steps.get(name)
        return None if found is None else found.step

    def step_task(self, name: str) -> StepTask | None:
        """The step whose jobs are named ``name``, as a consumer runs them, or ``None``."""
        return self._steps.get(name)

    def get(self, name: str) -> DurableTask[Any, Any, Any] | None:
        """The task registered under ``name``, or ``None``."""
        return self._tasks.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[DurableTask[Any, Any, Any]]:
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"<Registry tasks={sorted(self._tasks)}>"
