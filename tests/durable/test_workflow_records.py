"""The records of workflow runs: states as the contract names them, snapshots and events."""

from __future__ import annotations

import dataclasses
from typing import get_args

import pytest

from tasker_async.durable import ErrorInfo, RunEvent, RunInfo, RunState, StepEvent, StepInfo, StepState
from tasker_async.durable._model.workflow import RUN_STATES, STEP_STATES


def test_the_states_are_the_contracts() -> None:
    assert get_args(RunState) == ("running", "succeeded", "failed", "cancelled")
    assert get_args(StepState) == (
        "pending",
        "ready",
        "running",
        "succeeded",
        "failed",
        "upstream_failed",
        "cancelled",
    )
    assert get_args(RunState) == RUN_STATES
    assert get_args(StepState) == STEP_STATES


def test_run_info_lists_the_errors_of_its_failed_steps() -> None:
    boom = ErrorInfo("builtins.ValueError", "boom")
    info = RunInfo(
        id="r1",
        workflow="order.fulfil",
        state="failed",
        steps={
            "validate": StepInfo(name="validate", state="succeeded", attempts=1),
            "charge": StepInfo(name="charge", state="failed", attempts=2, error=boom),
            "ship": StepInfo(name="ship", state="upstream_failed", attempts=0),
        },
        created_at=1.0,
        finished_at=2.0,
    )
    assert info.errors == {"charge": boom}
    assert info.key is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.state = "running"  # type: ignore[misc]


def test_events_carry_names_ids_and_time() -> None:
    step = StepEvent(kind="succeeded", run_id="r1", workflow="w", step="s", job_id="j1", item=2, attempt=1, at=5.0)
    run = RunEvent(kind="started", run_id="r1", workflow="w", at=4.0)
    assert (step.kind, step.step, step.item, step.error) == ("succeeded", "s", 2, None)
    assert (run.kind, run.run_id, run.at) == ("started", "r1", 4.0)
    with pytest.raises(TypeError):
        StepEvent("started", "r1", "w", "s", "j1", None, 1, 5.0)  # type: ignore[call-arg]
