"""The run-state machine on small runs: release order, fan-out and fan-in, failure, resume and cancel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import pytest

from tasker_async.durable import Workflow, WorkflowError
from tasker_async.durable._model.records import ErrorInfo
from tasker_async.durable._model.workflow import machine
from tasker_async.durable._model.workflow.machine import (
    CancelSteps,
    Effect,
    Release,
    RunEnded,
    StepShape,
    StepStatus,
)

BOOM = ErrorInfo("builtins.RuntimeError", "boom")
LATER = ErrorInfo("builtins.ValueError", "later")


def shape(name: str, *parents: str, map_over: str | None = None) -> StepShape:
    return StepShape(name=name, parents=parents, map_over=map_over)


class Run:
    """A run driven through the machine as a store would: statuses replaced by each transition."""

    def __init__(self, shapes: Sequence[StepShape]) -> None:
        self.shapes = tuple(shapes)
        statuses, self.effects = machine.start(self.shapes)
        self.statuses: Mapping[str, StepStatus] = MappingProxyType(statuses)

    def _apply(self, transition: tuple[dict[str, StepStatus], list[Effect]]) -> list[Effect]:
        statuses, effects = transition
        # Read-only views: a transition that wrote into its input would raise here.
        self.statuses = MappingProxyType(statuses)
        return effects

    def started(self, step: str, times: int = 1) -> None:
        for _ in range(times):
            self.statuses = MappingProxyType(machine.job_started(self.shapes, self.statuses, step))

    def succeeded(self, step: str, result_items: int | None = None) -> list[Effect]:
        return self._apply(machine.item_succeeded(self.shapes, self.statuses, step, result_items=result_items))

    def failed(self, step: str, error: ErrorInfo = BOOM) -> list[Effect]:
        return self._apply(machine.item_failed(self.shapes, self.statuses, step, error=error))

    def cancelled(self, step: str) -> list[Effect]:
        return self._apply(machine.item_cancelled(self.shapes, self.statuses, step))

    def cancel(self) -> list[Effect]:
        return self._apply(machine.cancel_run(self.shapes, self.statuses))

    def resume(self, failed_items: Mapping[str, Sequence[int]] | None = None) -> list[Effect]:
        return self._apply(machine.resume(self.shapes, self.statuses, failed_items=failed_items))

    def states(self) -> dict[str, str]:
        return {name: status.state for name, status in self.statuses.items()}


ORDER = (
    shape("validate"),
    shape("charge", "validate"),
    shape("reserve", "validate", map_over="validate"),
    shape("ship", "charge", "reserve"),
)


def test_shapes_of_a_workflow_keep_definition_order_parents_and_map_over() -> None:
    order = Workflow("order.fulfil")

    @order.step()
    async def validate(conn: object, *, order: dict[str, int]) -> list[int]:
        return [1, 2]

    @order.step(depends_on=["validate"])
    async def charge(conn: object, *, validate: list[int]) -> str:
        return "ok"

    @order.step(map_over=validate)
    async def reserve(conn: object, *, validate: int) -> str:
        return "r"

    @order.step(depends_on=[charge, reserve])
    async def ship(conn: object, *, charge: str, reserve: list[str]) -> str:
        return "shipped"

    assert machine.shapes_of(order) == ORDER
    assert machine.mapped_children(ORDER, "validate") == ("reserve",)
    assert machine.mapped_children(ORDER, "charge") == ()


def test_shapes_of_a_wrong_workflow_raise_its_definition_error() -> None:
    broken = Workflow("broken")

    @broken.step(depends_on=["nowhere"])
    async def lost(conn: object) -> None:
        return None

    with pytest.raises(WorkflowError, match="nowhere"):
        machine.shapes_of(broken)


def test_start_releases_the_roots_and_leaves_the_rest_pending_on_all_their_parents() -> None:
    run = Run(ORDER)
    assert run.effects == [Release(step="validate")]
    assert run.statuses["validate"] == StepStatus(state="ready")
    assert run.statuses["charge"] == StepStatus(state="pending", parents_left=1)
    assert run.statuses["ship"] == StepStatus(state="pending", parents_left=2)
    assert machine.run_state(run.statuses) == "running"


def test_the_order_example_fans_out_per_item_and_fans_in_once_after_every_parent() -> None:
    run = Run(ORDER)
    run.started("validate")
    assert run.statuses["validate"].state == "running"
    assert run.succeeded("validate", result_items=3) == [
        Release(step="charge"),
        Release(step="reserve", items=(0, 1, 2)),
    ]
    assert run.statuses["reserve"] == StepStatus(state="ready", items=3)
    run.started("reserve", times=3)
    assert run.statuses["reserve"].attempts == 3
    assert run.succeeded("reserve") == []
    assert run.succeeded("charge") == []
    assert run.statuses["ship"].parents_left == 1
    assert run.succeeded("reserve") == []
    assert run.statuses["reserve"].items_done == 2
    assert run.succeeded("reserve") == [Release(step="ship")]
    assert run.states() == {"validate": "succeeded", "charge": "succeeded", "reserve": "succeeded", "ship": "ready"}
    assert run.succeeded("ship") == [RunEnded(state="succeeded")]
    assert machine.run_state(run.statuses) == "succeeded"


def test_a_late_outcome_of_a_finished_step_releases_nothing() -> None:
    run = Run((shape("a"), shape("b", "a")))
    assert run.succeeded("a") == [Release(step="b")]
    before = run.statuses
    assert run.succeeded("a") == []
    assert run.failed("a") == []
    assert dict(run.statuses) == dict(before)


def test_a_late_success_of_a_failed_step_leaves_it_failed() -> None:
    run = Run((shape("a"), shape("b", "a"), shape("x")))
    run.failed("a")
    before = dict(run.statuses)
    assert run.succeeded("a") == []
    assert dict(run.statuses) == before


def test_a_diamond_with_a_mapped_step_fans_in_exactly_once() -> None:
    run = Run(
        (shape("top"), shape("left", "top", map_over="top"), shape("right", "top"), shape("join", "left", "right"))
    )
    assert run.succeeded("top", result_items=2) == [Release(step="left", items=(0, 1)), Release(step="right")]
    assert run.succeeded("left") == []
    assert run.succeeded("right") == []
    assert run.succeeded("left") == [Release(step="join")]
    # Every item reported: one more report is a second outcome of some item, which the store must not make.
    with pytest.raises(ValueError, match="more item outcomes"):
        run.succeeded("left")
    assert run.succeeded("join") == [RunEnded(state="succeeded")]


def test_a_step_mapped_over_a_mapped_step_gets_its_items_count() -> None:
    run = Run((shape("a"), shape("m", "a", map_over="a"), shape("n", "m", map_over="m")))
    run.succeeded("a", result_items=2)
    run.succeeded("m")
    assert run.succeeded("m") == [Release(step="n", items=(0, 1))]
    assert run.statuses["n"].items == 2


def test_zero_items_succeed_the_mapped_step_at_once_and_carry_on() -> None:
    run = Run(ORDER)
    assert run.succeeded("validate", result_items=0) == [Release(step="charge")]
    assert run.statuses["reserve"] == StepStatus(state="succeeded", items=0)
    assert run.succeeded("charge") == [Release(step="ship")]
    assert run.succeeded("ship") == [RunEnded(state="succeeded")]


def test_a_long_chain_of_empty_fan_outs_succeeds_without_recursion() -> None:
    count = 3000
    shapes = [shape("root")] + [
        shape(f"m{index}", prev, map_over=prev)
        for index, prev in enumerate(["root"] + [f"m{i}" for i in range(count - 1)])
    ]
    run = Run(shapes)
    assert run.succeeded("root", result_items=0) == [RunEnded(state="succeeded")]
    assert {status.state for status in run.statuses.values()} == {"succeeded"}


def test_the_success_of_a_mapped_over_step_must_tell_its_result_length() -> None:
    run = Run(ORDER)
    with pytest.raises(ValueError, match="result_items"):
        run.succeeded("validate")
    with pytest.raises(ValueError, match=">= 0"):
        run.succeeded("validate", result_items=-1)
    run.succeeded("validate", result_items=1)
    with pytest.raises(ValueError, match="is mapped"):
        run.succeeded("reserve", result_items=4)
    # A step no child maps over may be given its length anyway: nothing uses it.
    assert run.succeeded("charge", result_items=7) == []


def test_outcomes_and_starts_of_a_step_never_released_break_the_contract() -> None:
    run = Run(ORDER)
    for act in (lambda: run.started("charge"), lambda: run.succeeded("charge"), lambda: run.failed("ship")):
        with pytest.raises(ValueError, match="pending"):
            act()
    with pytest.raises(KeyError):
        run.succeeded("nowhere")
    with pytest.raises(ValueError, match="statuses"):
        machine.item_succeeded(ORDER, {"validate": run.statuses["validate"]}, "validate")


@pytest.mark.parametrize(
    "shapes",
    [
        (),
        (shape("a"), shape("a")),
        (shape("a", "b"),),
        (shape("a"), shape("b", "a", "a")),
        (shape("a"), shape("b"), shape("c", "a", map_over="b")),
    ],
)
def test_shapes_that_form_no_graph_are_refused(shapes: tuple[StepShape, ...]) -> None:
    with pytest.raises(ValueError, match="step"):
        machine.start(shapes)


def test_a_failing_step_fails_its_descendants_and_an_independent_branch_finishes() -> None:
    run = Run((shape("a"), shape("b", "a"), shape("c", "b"), shape("x"), shape("y", "x", "a")))
    assert run.effects == [Release(step="a"), Release(step="x")]
    run.started("a", times=2)
    assert run.failed("a") == []
    assert run.states() == {
        "a": "failed",
        "b": "upstream_failed",
        "c": "upstream_failed",
        "x": "ready",
        "y": "upstream_failed",
    }
    assert run.statuses["a"] == StepStatus(state="failed", attempts=2, error=BOOM)
    assert machine.run_state(run.statuses) == "running"
    # x's success releases nothing (its child y waits on a failed parent), and ends the run.
    assert run.succeeded("x") == [RunEnded(state="failed")]
    assert run.statuses["y"].parents_left == 1
    assert machine.run_state(run.statuses) == "failed"


def test_a_mapped_step_fails_at_its_first_failed_item_and_counts_the_others() -> None:
    run = Run(ORDER)
    run.succeeded("validate", result_items=3)
    assert run.failed("reserve") == []
    assert run.statuses["ship"].state == "upstream_failed"
    assert run.failed("reserve", error=LATER) == []
    assert run.succeeded("reserve") == []
    assert run.statuses["reserve"] == StepStatus(state="failed", items=3, items_done=1, items_failed=2, error=BOOM)
    assert run.succeeded("charge") == [RunEnded(state="failed")]


def test_resume_runs_the_failed_step_again_and_finishes_the_run() -> None:
    run = Run((shape("a"), shape("b", "a"), shape("c", "b"), shape("x")))
    run.started("a")
    run.failed("a")
    run.succeeded("x")
    assert machine.run_state(run.statuses) == "failed"
    assert run.resume() == [Release(step="a")]
    assert run.states() == {"a": "ready", "b": "pending", "c": "pending", "x": "succeeded"}
    assert run.statuses["a"] == StepStatus(state="ready", attempts=1)
    assert run.statuses["b"].parents_left == 1
    run.started("a")
    assert run.statuses["a"].attempts == 2
    assert run.succeeded("a") == [Release(step="b")]
    assert run.succeeded("b") == [Release(step="c")]
    assert run.succeeded("c") == [RunEnded(state="succeeded")]


def test_resume_runs_only_the_failed_items_of_a_mapped_step() -> None:
    run = Run(ORDER)
    run.succeeded("validate", result_items=4)
    run.succeeded("charge")
    run.succeeded("reserve")
    # Its first failed item fails it and ends the run; the items still running are only counted.
    assert run.failed("reserve") == [RunEnded(state="failed")]
    assert run.succeeded("reserve") == []
    assert run.failed("reserve") == []
    with pytest.raises(ValueError, match="failed mapped steps"):
        run.resume()
    for wrong in ((1,), (1, 1), (1, 4)):
        with pytest.raises(ValueError, match="failed item"):
            run.resume({"reserve": wrong})
    assert run.resume({"reserve": (3, 1)}) == [Release(step="reserve", items=(1, 3))]
    assert run.statuses["reserve"] == StepStatus(state="ready", items=4, items_done=2)
    assert run.statuses["ship"] == StepStatus(state="pending", parents_left=1)
    run.succeeded("reserve")
    assert run.succeeded("reserve") == [Release(step="ship")]


def test_a_resumed_upstream_failed_mapped_step_keeps_its_items_only_if_its_list_is_known() -> None:
    shapes = (shape("a"), shape("b"), shape("m", "a", "b", map_over="a"), shape("n", "b", map_over="b"))
    run = Run(shapes)
    run.failed("b")
    run.succeeded("a", result_items=2)
    assert run.statuses["m"] == StepStatus(state="upstream_failed", parents_left=1, items=2)
    assert run.resume() == [Release(step="b")]
    assert run.statuses["m"] == StepStatus(state="pending", parents_left=1, items=2)
    assert run.statuses["n"] == StepStatus(state="pending", parents_left=1)
    assert run.succeeded("b", result_items=1) == [Release(step="m", items=(0, 1)), Release(step="n", items=(0,))]


def test_resume_of_a_run_that_did_not_fail_changes_nothing() -> None:
    run = Run((shape("a"),))
    assert run.resume() == []
    run.succeeded("a")
    assert run.resume() == []
    assert run.states() == {"a": "succeeded"}


def test_cancel_while_running_stops_the_live_steps_and_ends_the_run_at_once() -> None:
    run = Run(ORDER)
    run.succeeded("validate", result_items=2)
    run.started("reserve")
    assert run.cancel() == [CancelSteps(steps=("charge", "reserve")), RunEnded(state="cancelled")]
    assert run.states() == {"validate": "succeeded", "charge": "cancelled", "reserve": "cancelled", "ship": "cancelled"}
    assert machine.run_state(run.statuses) == "cancelled"
    # The jobs end as they notice, or not: counted, nothing released, the run ended once.
    assert run.cancelled("reserve") == []
    assert run.succeeded("reserve") == []
    assert run.succeeded("charge") == []
    assert run.statuses["reserve"].items_done == 1
    assert run.statuses["reserve"].items_failed == 1
    assert run.states() == {"validate": "succeeded", "charge": "cancelled", "reserve": "cancelled", "ship": "cancelled"}
    assert run.cancel() == []
    assert run.resume() == []


def test_cancel_also_stops_the_items_still_running_of_a_failed_mapped_step() -> None:
    run = Run(ORDER)
    run.succeeded("validate", result_items=2)
    run.failed("reserve")
    assert run.cancel() == [CancelSteps(steps=("charge", "reserve")), RunEnded(state="cancelled")]
    assert run.states()["reserve"] == "failed"
    assert machine.run_state(run.statuses) == "cancelled"


def test_cancel_of_a_failed_run_leaves_it_resumable() -> None:
    run = Run((shape("a"),))
    run.failed("a")
    assert run.cancel() == []
    assert run.resume() == [Release(step="a")]


def test_cancel_of_a_failed_run_stops_its_stray_items_which_a_resume_runs_again() -> None:
    run = Run(ORDER)
    run.succeeded("validate", result_items=3)
    run.succeeded("charge")
    assert run.failed("reserve") == [RunEnded(state="failed")]
    # Two items still run; the cancel stops them and the run stays failed.
    assert run.cancel() == [CancelSteps(steps=("reserve",))]
    assert machine.run_state(run.statuses) == "failed"
    assert run.cancelled("reserve") == []
    assert run.cancelled("reserve") == []
    assert run.statuses["reserve"] == StepStatus(state="failed", items=3, items_failed=3, error=BOOM)
    assert run.cancel() == []
    assert run.resume({"reserve": (0, 1, 2)}) == [Release(step="reserve", items=(0, 1, 2))]


def test_a_job_cancelled_by_hand_fails_its_step_and_the_run_can_resume() -> None:
    run = Run((shape("a"), shape("b", "a"), shape("x")))
    run.started("a")
    assert run.cancelled("a") == []
    status = run.statuses["a"]
    assert status.state == "failed"
    assert status.error is not None
    assert status.error.type == "tasker_async.durable._model.errors.JobCancelledError"
    assert "'a'" in status.error.message
    assert run.statuses["b"].state == "upstream_failed"
    assert run.succeeded("x") == [RunEnded(state="failed")]
    assert run.resume() == [Release(step="a")]


def test_a_start_after_the_step_finished_only_counts_the_attempt() -> None:
    run = Run((shape("a"), shape("b")))
    run.cancel()
    run.started("a")
    assert run.statuses["a"] == StepStatus(state="cancelled", attempts=1)


def test_changed_names_the_rows_a_store_writes() -> None:
    run = Run(ORDER)
    before = run.statuses
    run.succeeded("validate", result_items=1)
    assert set(machine.changed(before, run.statuses)) == {"validate", "charge", "reserve"}
    before = run.statuses
    run.succeeded("charge")
    assert set(machine.changed(before, run.statuses)) == {"charge", "ship"}
