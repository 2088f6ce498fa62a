"""``Workflow``: a named graph of steps, defined with ``@workflow.step(...)``; no store involved."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from typing_extensions import Unpack

from ..errors import WorkflowError
from ..registry import DeliveryOptions, TaskOptions
from . import binding, graph
from .mermaid import to_mermaid
from .records import StepState
from .signature import Params, read_params
from .step import Step, check_step_name

__all__ = ("Workflow",)

T = TypeVar("T")
StepRef = Step[Any] | str


class Workflow:
    """A directed acyclic graph of steps; each step runs as a durable job once all its parents succeeded.

    Args:
        name: the workflow's name, unique in a registry; its steps' jobs are named ``"<name>.<step>"``.
        queue: the queue its steps' jobs go to, unless a step names another.
        options: the steps' defaults of ``max_deliveries``, ``lease`` and ``result_ttl`` (seconds), as
            ``Registry.task`` takes them.

    Raises:
        WorkflowError: ``name`` is not a non-empty string.
        ConfigError: an option is out of range (the error names it).
    """

    def __init__(self, name: str, *, queue: str = "default", **options: Unpack[DeliveryOptions]) -> None:
        if not isinstance(name, str) or not name:
            raise WorkflowError(f"a workflow name must be a non-empty string, got {name!r}")
        self.name = name
        self.options = TaskOptions(queue=queue, **options)
        self._steps: dict[str, Step[Any]] = {}
        self._registered = False

    @property
    def queue(self) -> str:
        """The queue its steps' jobs go to by default."""
        return self.options.queue

    def step(
        self,
        *,
        depends_on: Iterable[StepRef] | StepRef = (),
        map_over: StepRef | None = None,
        name: str | None = None,
        queue: str | None = None,
        max_deliveries: int | None = None,
        lease: float | None = None,
        result_ttl: float | None = None,
        priority: bool = False,
    ) -> Callable[[Callable[..., Awaitable[T]]], Step[T]]:
        """Add the decorated ``async def fn(resource, *, name, ...)`` as a step; the decorator returns its ``Step``.

        It receives, by keyword, the inputs and parent results its signature names (all if it takes ``**kwargs``).

        Args:
            depends_on: its parents, as steps or step names (a name may be defined later).
            map_over: a parent whose result is a list: the step runs once per item, receiving the item under
                the parent's name. The parent is added to ``depends_on`` if it is not there.
            name: its name (default: the function's ``__name__``); a Python identifier.
            queue: the queue its jobs go to; it and the next three default to the workflow's.
            max_deliveries: starts without an outcome before its job goes dead.
            lease: seconds a consumer holds its job between renewals.
            result_ttl: seconds its finished job and result are kept.
            priority: whether its jobs go in the priority lane.

        Raises:
            WorkflowError: the name is taken in this workflow or is no identifier, the signature takes a
                positional parameter besides the resource, a step of another workflow is given, or the
                workflow is already registered.
            ConfigError: an option is out of range.
            TypeError: the decorated object is not an async function.
        """
        options = TaskOptions(
            queue=self.queue if queue is None else queue,
            max_deliveries=self.options.max_deliveries if max_deliveries is None else max_deliveries,
            lease=self.options.lease if lease is None else lease,
            result_ttl=self.options.result_ttl if result_ttl is None else result_ttl,
        )
        if not isinstance(priority, bool):
            raise WorkflowError(f"priority must be True or False, got {priority!r}")
        parents, mapped = self._dependencies(depends_on, map_over)

        def add(fn: Callable[..., Awaitable[T]]) -> Step[T]:
            step_name = check_step_name(self.name, getattr(fn, "__name__", None) if name is None else name)
            step: Step[T] = Step(
                workflow=self.name,
                name=step_name,
                fn=fn,
                depends_on=parents,
                map_over=mapped,
                options=options,
                priority=priority,
                params=self._checked_params(step_name, fn),
            )
            self._steps[step_name] = step
            return step

        return add

    def _checked_params(self, step: str, fn: Callable[..., Awaitable[Any]]) -> Params:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"step {step!r} must be an async function (async def fn(resource, *, ...))")
        if self._registered:
            raise WorkflowError(f"workflow {self.name!r} is registered already: define its steps before that")
        if step in self._steps:
            raise WorkflowError(f"workflow {self.name!r}: step name {step!r} is defined twice")
        return read_params(step, fn)

    def _dependencies(
        self, depends_on: Iterable[StepRef] | StepRef, map_over: StepRef | None
    ) -> tuple[tuple[str, ...], str | None]:
        refs = [depends_on] if isinstance(depends_on, Step | str) else list(depends_on)
        parents = [self._ref_name(ref) for ref in refs]
        mapped = None if map_over is None else self._ref_name(map_over)
        # Mapping over a step means waiting for it: the parent is added when ``depends_on`` leaves it out.
        if mapped is not None:
            parents.append(mapped)
        return tuple(dict.fromkeys(parents)), mapped

    def _ref_name(self, ref: object) -> str:
        if isinstance(ref, Step):
            if ref.workflow != self.name:
                raise WorkflowError(f"workflow {self.name!r}: {ref!r} is a step of workflow {ref.workflow!r}")
            return ref.name
        if isinstance(ref, str):
            return ref
        raise WorkflowError(f"workflow {self.name!r}: a dependency must be a step or a step name, got {ref!r}")

    def _name(self, step: StepRef) -> str:
        name = step.name if isinstance(step, Step) else step
        if name not in self._steps or (isinstance(step, Step) and step.workflow != self.name):
            raise KeyError(f"workflow {self.name!r} has no step {name!r}")
        return name

    def _parents(self) -> dict[str, tuple[str, ...]]:
        return {name: step.depends_on for name, step in self._steps.items()}

    @property
    def steps(self) -> Mapping[str, Step[Any]]:
        """Its steps by name, in definition order (a read-only view)."""
        return MappingProxyType(self._steps)

    @property
    def inputs(self) -> frozenset[str]:
        """Its inputs: the keyword parameters of its steps that name no step."""
        return binding.workflow_inputs(list(self._steps.values()))

    @property
    def required_inputs(self) -> frozenset[str]:
        """The inputs a run cannot start without: those some step names without a default."""
        return frozenset(binding.required_inputs(list(self._steps.values())))

    @property
    def roots(self) -> tuple[str, ...]:
        """The steps without parents, in definition order: a run starts with them."""
        return tuple(name for name, step in self._steps.items() if not step.depends_on)

    def parents(self, step: StepRef) -> tuple[str, ...]:
        """The names of ``step``'s parents, as given to ``depends_on``.

        Raises:
            KeyError: the workflow has no such step.
        """
        return self._steps[self._name(step)].depends_on

    def children(self, step: StepRef) -> tuple[str, ...]:
        """The names of the steps that depend on ``step`` directly, in definition order.

        Raises:
            KeyError: the workflow has no such step.
        """
        return graph.children_of(self._parents())[self._name(step)]

    def descendants(self, step: StepRef) -> frozenset[str]:
        """The names of the steps that depend on ``step``, directly or not: those a failure of it holds back.

        Raises:
            KeyError: the workflow has no such step.
        """
        return graph.descendants(self._parents(), self._name(step))

    def receives(self, step: StepRef) -> frozenset[str]:
        """The names ``step`` is called with: the inputs and parents its signature names, or all if ``**kwargs``.

        Raises:
            KeyError: the workflow has no such step.
        """
        return binding.received_names(self._steps[self._name(step)], self.inputs)

    def topological_order(self) -> tuple[str, ...]:
        """Every step name after those of all its parents; ties go in definition order, so it is stable.

        Raises:
            WorkflowError: the definition is wrong (see ``validate``).
        """
        self.validate()
        return graph.topological_order(self._parents())

    def validate(self) -> None:
        """Check the whole graph; ``registry.add_workflow`` calls it, and so may anyone, at any time.

        Raises:
            WorkflowError: no steps, an unknown dependency, a cycle, a ``map_over`` that is not a parent, or a
                parameter naming a step that is not a parent; the message names the steps.
        """
        graph.check_graph(self.name, list(self._steps.values()))

    def check_inputs(self, inputs: Mapping[str, object]) -> None:
        """Check the inputs a run is started with (an optional input may be left out).

        Raises:
            WorkflowError: a required input is missing, an input is named like a step, or an input is
                unknown (and no step takes ``**kwargs``); the message names them.
        """
        error = binding.input_error(self.name, list(self._steps.values()), inputs)
        if error is not None:
            raise error

    def to_mermaid(self, *, states: Mapping[str, StepState] | None = None) -> str:
        """The graph as Mermaid ``flowchart TD`` text; a mapped step is a ``[[subroutine]]``.

        Args:
            states: a run's step states by step name, to colour each step by its state.
        """
        return to_mermaid(list(self._steps.values()), states)

    def _seal(self) -> None:
        # A registered workflow is what consumers run: a step added afterwards would skip validation.
        self._registered = True

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r} steps={list(self._steps)}>"
