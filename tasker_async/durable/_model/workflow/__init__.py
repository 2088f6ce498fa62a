"""Workflows as definitions: steps, their graph and its rules, binding by signature, and run records.

Nothing here touches a store: running a workflow is built on top of this.
"""

from .binding import NO_ITEM, input_error, mapped_items, received_names, required_inputs, step_kwargs, workflow_inputs
from .definition import Workflow
from .records import (
    RUN_FINISHED,
    RUN_STATES,
    STEP_FINISHED,
    STEP_STATES,
    RunEvent,
    RunEventKind,
    RunInfo,
    RunState,
    StepEvent,
    StepEventKind,
    StepInfo,
    StepState,
)
from .step import Step

__all__ = (
    "NO_ITEM",
    "RUN_FINISHED",
    "RUN_STATES",
    "STEP_FINISHED",
    "STEP_STATES",
    "RunEvent",
    "RunEventKind",
    "RunInfo",
    "RunState",
    "Step",
    "StepEvent",
    "StepEventKind",
    "StepInfo",
    "StepState",
    "Workflow",
    "input_error",
    "mapped_items",
    "received_names",
    "required_inputs",
    "step_kwargs",
    "workflow_inputs",
)
