"""Defining a workflow: steps, their options, the graph read from depends_on and signatures, registration."""

from __future__ import annotations

from typing import Any

import pytest

from tasker_async import ConfigError
from tasker_async.durable import Registry, Step, Workflow, WorkflowError


def order_workflow() -> Workflow:
    """The order example: validate, then charge and a reserve per line item, then ship."""
    order = Workflow("order.fulfil", queue="default")

    @order.step()
    async def validate(conn: object, *, order: dict[str, Any]) -> list[dict[str, Any]]:
        return list(order["items"])

    @order.step(depends_on=[validate], max_deliveries=5, lease=60.0)
    async def charge(conn: object, *, order: dict[str, Any], validate: list[dict[str, Any]]) -> str:
        return f"charged {len(validate)} for order {order['id']}"

    @order.step(depends_on=[validate], map_over=validate)
    async def reserve(conn: object, *, validate: dict[str, Any]) -> str:
        return f"reserved {validate['sku']}"

    @order.step(depends_on=[charge, reserve])
    async def ship(conn: object, *, charge: str, reserve: list[str]) -> str:
        return f"{charge}; {', '.join(reserve)}"

    return order


async def noop(resource: object, **kwargs: object) -> None:
    return None


def test_the_order_example_defines_cleanly_and_registers() -> None:
    order = order_workflow()
    registry = Registry()
    registry.add_workflow(order)

    assert registry.workflow("order.fulfil") is order
    assert registry.workflow("nothing") is None
    assert registry.workflows == (order,)
    assert list(order.steps) == ["validate", "charge", "reserve", "ship"]
    assert order.inputs == frozenset({"order"})
    assert order.required_inputs == frozenset({"order"})
    assert order.roots == ("validate",)
    assert order.parents("ship") == ("charge", "reserve")
    assert order.children("validate") == ("charge", "reserve")
    assert order.children(order.steps["ship"]) == ()
    assert order.descendants("validate") == frozenset({"charge", "reserve", "ship"})
    assert order.topological_order() == ("validate", "charge", "reserve", "ship")
    # A registered workflow is not a task: the registry holds no task for its steps.
    assert len(registry) == 0


def test_steps_carry_their_options_and_stay_callable() -> None:
    order = order_workflow()
    charge, reserve = order.steps["charge"], order.steps["reserve"]
    assert isinstance(charge, Step)
    assert charge.task_name == "order.fulfil.charge"
    assert (charge.queue, charge.options.max_deliveries, charge.options.lease) == ("default", 5, 60.0)
    assert reserve.depends_on == ("validate",)
    assert reserve.map_over == "validate"
    assert charge.map_over is None
    assert repr(reserve) == "<Step order.fulfil.reserve depends_on=['validate'] map_over='validate'>"


async def test_a_step_called_directly_runs_its_function() -> None:
    ship = order_workflow().steps["ship"]
    assert await ship(object(), charge="charged 2", reserve=["a", "b"]) == "charged 2; a, b"


def test_step_options_default_to_the_workflows() -> None:
    flow = Workflow("flow", queue="slow", max_deliveries=2, lease=5.0, result_ttl=60.0)
    plain = flow.step()(noop)
    tuned = flow.step(name="tuned", queue="fast", max_deliveries=9, lease=1.5, result_ttl=0.0, priority=True)(noop)
    assert (plain.name, plain.queue, plain.options.max_deliveries, plain.options.lease) == ("noop", "slow", 2, 5.0)
    assert (plain.options.result_ttl, plain.priority) == (60.0, False)
    assert (tuned.name, tuned.queue, tuned.options.max_deliveries, tuned.options.lease) == ("tuned", "fast", 9, 1.5)
    assert (tuned.options.result_ttl, tuned.priority) == (0.0, True)
    assert flow.queue == "slow"


@pytest.mark.parametrize(
    ("options", "field"),
    [({"lease": 0}, "lease"), ({"max_deliveries": 0}, "max_deliveries"), ({"queue": ""}, "queue")],
)
def test_step_options_out_of_range_name_the_field(options: dict[str, Any], field: str) -> None:
    flow = Workflow("flow")
    with pytest.raises(ConfigError, match=field):
        flow.step(**options)
    with pytest.raises(ConfigError, match=field):
        Workflow("flow", **options)


def test_depends_on_takes_names_defined_later_and_map_over_adds_its_parent() -> None:
    flow = Workflow("flow")

    @flow.step(depends_on=["source", "source"])
    async def total(conn: object, *, source: list[int]) -> int:
        return sum(source)

    @flow.step()
    async def source(conn: object) -> list[int]:
        return [1, 2]

    @flow.step(map_over=source)  # not in depends_on: mapping over a step means depending on it
    async def double(conn: object, *, source: int) -> int:
        return 2 * source

    @flow.step(depends_on="double")  # one name on its own is one dependency
    async def report(conn: object, *, double: list[int]) -> str:
        return str(double)

    flow.validate()
    assert total.depends_on == ("source",)
    assert double.depends_on == ("source",)
    assert report.depends_on == ("double",)
    assert flow.topological_order() == ("source", "total", "double", "report")
    assert flow.roots == ("source",)


def test_inputs_and_parents_are_found_by_signature() -> None:
    order = order_workflow()
    assert order.receives("validate") == frozenset({"order"})
    assert order.receives("charge") == frozenset({"order", "validate"})
    assert order.receives("reserve") == frozenset({"validate"})
    assert order.receives("ship") == frozenset({"charge", "reserve"})


def test_a_kwargs_step_receives_every_input_and_its_parents_and_defaults_make_inputs_optional() -> None:
    flow = Workflow("flow")

    @flow.step()
    async def fetch(conn: object, *, url: str, retries: int = 3) -> str:
        return url

    @flow.step()
    async def other(conn: object, *, region: str = "eu") -> str:
        return region

    @flow.step(depends_on=[fetch, other])
    async def audit(conn: object, /, **kwargs: object) -> None:
        return None

    flow.validate()
    assert flow.inputs == frozenset({"url", "retries", "region"})
    assert flow.required_inputs == frozenset({"url"})
    assert flow.receives(audit) == frozenset({"url", "retries", "region", "fetch", "other"})


def test_parents_and_children_of_an_unknown_step_raise_key_error() -> None:
    order = order_workflow()
    with pytest.raises(KeyError, match="'nope'"):
        order.parents("nope")
    with pytest.raises(KeyError, match="'nope'"):
        order.children("nope")
    elsewhere = Workflow("elsewhere").step(name="ship")(noop)  # same name, another workflow
    with pytest.raises(KeyError, match="'ship'"):
        order.parents(elsewhere)


def test_a_workflow_name_must_be_a_non_empty_string() -> None:
    with pytest.raises(WorkflowError, match="non-empty string"):
        Workflow("")


def test_a_step_must_be_an_async_function_with_an_identifier_name() -> None:
    flow = Workflow("flow")

    def sync(conn: object) -> None:
        return None

    with pytest.raises(TypeError, match="'sync' must be an async function"):
        flow.step()(sync)  # type: ignore[arg-type]
    with pytest.raises(WorkflowError, match="'bad-name' of workflow 'flow' must be a Python identifier"):
        flow.step(name="bad-name")(noop)
    with pytest.raises(WorkflowError, match="'class'"):
        flow.step(name="class")(noop)
    with pytest.raises(WorkflowError, match="priority must be True or False"):
        flow.step(priority=1)  # type: ignore[arg-type]
    with pytest.raises(WorkflowError, match="must be a step or a step name, got 3"):
        flow.step(depends_on=[3])  # type: ignore[list-item]
    assert not flow.steps
