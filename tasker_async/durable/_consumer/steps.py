"""A run step's job as the consumer runs it: its call decoded from the payload, and its result's parts.

A step job's payload holds the run's inputs and the parents' results, encoded (``payload``); the step receives
those its signature names (``binding``). A step that some step maps over hands its result's elements to the
store one by one, encoded: the store gives element ``i`` to that step's item ``i``.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._model.records import ErrorInfo, qualified_name
from .._model.registry import DurableTask
from .._model.serializer import Call
from .._model.workflow.binding import NO_ITEM, step_kwargs
from .._model.workflow.payload import StepCall
from .._stores.records import Outcome

if TYPE_CHECKING:
    from .._model.registry import StepTask
    from .._model.serializer import Serializer

__all__ = ("StepJob", "StepTag", "split_result", "step_job")


@dataclass(frozen=True, slots=True)
class StepTag:
    """Which run, workflow, step and item a held job is for: what its ``StepEvent``s name."""

    run_id: str
    workflow: str
    step: str
    item: int | None


class StepJob:
    """What the consumer needs to run one step job: the task to call, its call, whether to split its result."""

    __slots__ = ("call", "split", "tag", "task")

    def __init__(self, task: DurableTask[Any, Any, Any], call: Call, tag: StepTag, *, split: bool) -> None:
        self.task = task
        self.call = call
        self.tag = tag
        self.split = split


def step_job(registered: StepTask, payload: bytes, serializer: Serializer) -> StepJob:
    """Decode a step job's payload into the step's keyword arguments.

    Raises:
        ValueError: the payload is not a step job's, or a value in it cannot be decoded or bound.
    """
    step = registered.step
    call = StepCall.unpack(payload)
    try:
        inputs = serializer.loads(call.inputs)
        parents = {
            name: serializer.loads(value) if isinstance(value, bytes) else [serializer.loads(item) for item in value]
            for name, value in call.parents.items()
        }
        item = NO_ITEM if call.item_value is None else serializer.loads(call.item_value)
        kwargs = step_kwargs(step, inputs, parents, item=item)
    except Exception as exc:
        raise ValueError(f"the payload of step {step.name!r} of run {call.run_id!r} cannot be bound: {exc!r}") from exc
    tag = StepTag(call.run_id, step.workflow, step.name, call.item)
    return StepJob(registered.task, Call((), kwargs), tag, split=registered.split)


def split_result(outcome: Outcome, result: Any, serializer: Serializer) -> Outcome:
    """A succeeded ``outcome`` of a step some step maps over, with its result's elements encoded as ``parts``.

    A result that is not a list (or whose elements cannot be encoded) fails the step: a ``TypeError``.
    """
    try:
        if not isinstance(result, list):
            raise TypeError(f"a step that is mapped over must return a list, got {type(result).__name__}")
        parts = tuple(serializer.dumps(element) for element in result)
    except Exception as exc:
        text = "".join(traceback.format_exception(exc))
        error = ErrorInfo(qualified_name(TypeError), str(exc), text)
        return Outcome(lease=outcome.lease, state="failed", error=error)
    return Outcome(lease=outcome.lease, state="succeeded", result=outcome.result, parts=parts)
