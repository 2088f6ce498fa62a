"""Binding by signature: the keyword arguments of a step's call, and the inputs a run must be started with."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tasker_async.durable import Workflow, WorkflowError
from tasker_async.durable._model.workflow import mapped_items, step_kwargs

from .test_workflow_definition import order_workflow

ORDER = {"id": 7, "items": [{"sku": "a"}, {"sku": "b"}]}


def test_a_plain_step_gets_the_inputs_and_parent_results_it_names() -> None:
    order = order_workflow()
    results = {"validate": ORDER["items"], "unrelated": 1}
    assert step_kwargs(order.steps["validate"], {"order": ORDER}, {}) == {"order": ORDER}
    assert step_kwargs(order.steps["charge"], {"order": ORDER}, results) == {"order": ORDER, "validate": ORDER["items"]}
    ship = step_kwargs(order.steps["ship"], {"order": ORDER}, {"charge": "c", "reserve": ["r1", "r2"], "validate": []})
    assert ship == {"charge": "c", "reserve": ["r1", "r2"]}


async def test_a_mapped_step_gets_one_item_under_its_parents_name() -> None:
    reserve = order_workflow().steps["reserve"]
    items = mapped_items(reserve, ORDER["items"])
    calls = [step_kwargs(reserve, {"order": ORDER}, {"validate": items}, item=item) for item in items]
    assert calls == [{"validate": {"sku": "a"}}, {"validate": {"sku": "b"}}]
    assert [await reserve(object(), **kwargs) for kwargs in calls] == ["reserved a", "reserved b"]


def test_an_item_is_required_for_a_mapped_step_and_refused_for_another() -> None:
    order = order_workflow()
    with pytest.raises(TypeError, match="step 'reserve' maps over 'validate': pass item="):
        step_kwargs(order.steps["reserve"], {}, {"validate": []})
    with pytest.raises(TypeError, match="step 'charge' is not mapped"):
        step_kwargs(order.steps["charge"], {"order": ORDER}, {"validate": []}, item=None)


def test_a_mapped_parent_must_give_a_list() -> None:
    reserve = order_workflow().steps["reserve"]
    assert mapped_items(reserve, []) == []
    with pytest.raises(TypeError, match="step 'reserve' maps over 'validate', whose result must be a list, got dict"):
        mapped_items(reserve, {"sku": "a"})


def test_a_kwargs_step_gets_every_input_given_and_its_parents_results_only() -> None:
    flow = Workflow("flow")

    @flow.step()
    async def a(conn: object, *, region: str = "eu") -> int:
        return 1

    @flow.step(depends_on=[a])
    async def b(conn: object, *, a: int) -> int:
        return a + 1

    @flow.step(depends_on=[b])
    async def audit(conn: object, *, b: int, **rest: object) -> dict[str, object]:
        return {"b": b, **rest}

    kwargs = step_kwargs(audit, {"region": "us", "extra": True}, {"a": 1, "b": 2})
    assert kwargs == {"region": "us", "extra": True, "b": 2}


async def test_an_optional_input_left_out_is_not_passed_so_the_default_applies() -> None:
    flow = Workflow("flow")

    @flow.step()
    async def greet(conn: object, *, name: str, greeting: str = "hello") -> str:
        return f"{greeting} {name}"

    flow.check_inputs({"name": "ada"})
    assert step_kwargs(greet, {"name": "ada"}, {}) == {"name": "ada"}
    assert await greet(object(), **step_kwargs(greet, {"name": "ada"}, {})) == "hello ada"
    assert await greet(object(), **step_kwargs(greet, {"name": "ada", "greeting": "hi"}, {})) == "hi ada"


def test_a_missing_parent_result_is_a_key_error_naming_it() -> None:
    charge = order_workflow().steps["charge"]
    with pytest.raises(KeyError, match="step 'charge' receives the result of 'validate', which is not given"):
        step_kwargs(charge, {"order": ORDER}, {})


def test_a_missing_input_names_it_and_the_steps_that_need_it() -> None:
    order = order_workflow()
    order.check_inputs({"order": ORDER})
    with pytest.raises(WorkflowError) as caught:
        order.check_inputs({})
    assert str(caught.value) == (
        "workflow 'order.fulfil' was started without the input(s) 'order' (needed by 'validate', 'charge')"
    )


def test_an_input_must_be_known_and_not_named_like_a_step() -> None:
    order = order_workflow()
    with pytest.raises(
        WorkflowError, match=re.escape("workflow 'order.fulfil' has no input(s) 'oder'; its inputs are: 'order'")
    ):
        order.check_inputs({"order": ORDER, "oder": ORDER})
    with pytest.raises(WorkflowError, match=re.escape("input(s) 'charge' are named like steps")):
        order.check_inputs({"order": ORDER, "charge": "free"})


def test_any_input_is_known_to_a_workflow_with_a_kwargs_step() -> None:
    flow = Workflow("flow")

    @flow.step()
    async def everything(conn: object, **inputs: Any) -> int:
        return len(inputs)

    flow.check_inputs({"anything": 1, "else": 2})
    assert flow.inputs == frozenset()
    assert step_kwargs(everything, {"anything": 1}, {}) == {"anything": 1}
