"""Workflows as definitions: steps, their graph and its rules, binding by signature, and run records.

Nothing here touches a store: running a workflow is built on top of this, and ``machine`` holds the pure
run-state transitions every store applies.
"""

from . import machine
from .binding import NO_ITEM, input_error, mapped_items, received_names, required_inputs, step_kwargs, workflow_inputs
from .definition import Workflow
from .machine_records import (
    CancelSteps,
    Effect,
    Release,
    RunEnded,
    StepShape,
    StepStatus,
    Transition,
    changed,
    mapped_children,
    run_state,
    shapes_of,
)
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
    "CancelSteps",
    "Effect",
    "Release",
    "RunEnded",
    "RunEvent",
    "RunEventKind",
    "RunInfo",
    "RunState",
    "Step",
    "StepEvent",
    "StepEventKind",
    "StepInfo",
    "StepShape",
    "StepState",
    "StepStatus",
    "Transition",
    "Workflow",
    "changed",
    "input_error",
    "machine",
    "mapped_children",
    "mapped_items",
    "received_names",
    "required_inputs",
    "run_state",
    "shapes_of",
    "step_kwargs",
    "workflow_inputs",
)
