"""Binding by signature: which inputs and parent results a step receives, and the keyword arguments of its call.

A keyword parameter that names a step is that parent's result; one that names no step is a workflow input.
A step that takes ``**kwargs`` receives every input given and every parent's result.

Inputs with a default: an input that every step naming it gives a default is optional. When a run starts
without it, nothing is stored for it and each step uses its own default; when any step names it without a
default, it is required.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import WorkflowError
from .step import Step

__all__ = (
    "NO_ITEM",
    "input_error",
    "mapped_items",
    "received_names",
    "required_inputs",
    "step_kwargs",
    "workflow_inputs",
)

NO_ITEM: object = object()
"""``step_kwargs``'s ``item`` when there is none (the step is not mapped)."""


def workflow_inputs(steps: Sequence[Step[Any]]) -> frozenset[str]:
    """The workflow's inputs: the keyword parameters of its steps that name no step."""
    names = {step.name for step in steps}
    return frozenset(keyword for step in steps for keyword in step.params.keywords if keyword not in names)


def required_inputs(steps: Sequence[Step[Any]]) -> dict[str, tuple[str, ...]]:
    """Each required input (named without a default by some step), with the steps that require it."""
    names = {step.name for step in steps}
    required: dict[str, list[str]] = {}
    for step in steps:
        for keyword in step.params.keywords:
            if keyword in step.params.required and keyword not in names:
                required.setdefault(keyword, []).append(step.name)
    return {name: tuple(by) for name, by in sorted(required.items())}


def received_names(step: Step[Any], inputs: frozenset[str]) -> frozenset[str]:
    """The names ``step`` is called with (given all of ``inputs``): inputs and parents its signature names, or all."""
    if step.params.takes_all:
        return inputs | frozenset(step.depends_on)
    return frozenset(keyword for keyword in step.params.keywords if keyword in inputs or keyword in step.depends_on)


def step_kwargs(
    step: Step[Any], inputs: Mapping[str, Any], parent_results: Mapping[str, Any], *, item: object = NO_ITEM
) -> dict[str, Any]:
    """The keyword arguments of one call of ``step``.

    Args:
        step: the step to call.
        inputs: the run's inputs, as given to ``start`` (optional inputs left out are not passed).
        parent_results: the results of (at least) the step's parents, by name; a mapped parent's is its list.
        item: for a mapped step, the one item of its ``map_over`` parent this call is for: it is passed
            under the parent's name, in place of the whole list.

    Raises:
        TypeError: ``item`` is given for a step that is not mapped, or missing for one that is.
        KeyError: the result of a parent the step receives is not in ``parent_results``.
    """
    if (item is NO_ITEM) != (step.map_over is None):
        need = f"maps over {step.map_over!r}: pass item=" if step.map_over else "is not mapped: pass no item"
        raise TypeError(f"step {step.name!r} {need}")
    wanted = received_names(step, frozenset(inputs))
    kwargs = {name: value for name, value in inputs.items() if name in wanted}
    for parent in step.depends_on:
        if parent not in wanted:
            continue
        if parent == step.map_over:
            kwargs[parent] = item
        elif parent in parent_results:
            kwargs[parent] = parent_results[parent]
        else:
            raise KeyError(f"step {step.name!r} receives the result of {parent!r}, which is not given")
    return kwargs


def mapped_items(step: Step[Any], result: object) -> list[Any]:
    """The items a mapped ``step`` runs once each for, from its ``map_over`` parent's ``result``.

    Raises:
        TypeError: the result is not a list.
    """
    if not isinstance(result, list):
        raise TypeError(
            f"step {step.name!r} maps over {step.map_over!r}, whose result must be a list, got {type(result).__name__}"
        )
    return result


def input_error(workflow: str, steps: Sequence[Step[Any]], given: Mapping[str, object]) -> WorkflowError | None:
    """What is wrong with the inputs ``given`` to start a run of ``workflow``, or ``None``.

    Wrong are: a required input left out, an input named like a step (its result would clash), and an
    input no step names (a misspelling, most likely) unless a step takes ``**kwargs``.
    """
    names = {step.name for step in steps}
    missing = {name: by for name, by in required_inputs(steps).items() if name not in given}
    if missing:
        needs = "; ".join(f"{name!r} (needed by {', '.join(map(repr, by))})" for name, by in missing.items())
        return WorkflowError(f"workflow {workflow!r} was started without the input(s) {needs}")
    clashing = sorted(name for name in given if name in names)
    if clashing:
        return WorkflowError(
            f"workflow {workflow!r}: input(s) {', '.join(map(repr, clashing))} are named like steps; "
            "a step's name carries its result"
        )
    known = workflow_inputs(steps)
    unknown = sorted(name for name in given if name not in known)
    if unknown and not any(step.params.takes_all for step in steps):
        return WorkflowError(
            f"workflow {workflow!r} has no input(s) {', '.join(map(repr, unknown))}; "
            f"its inputs are: {', '.join(map(repr, sorted(known))) or 'none'}"
        )
    return None
