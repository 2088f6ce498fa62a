"""Definition errors: each raises WorkflowError (a ConfigError) whose message names the steps involved."""

from __future__ import annotations

import re

import pytest

from tasker_async import ConfigError
from tasker_async.durable import Registry, Workflow, WorkflowError
from tasker_async.durable._model.workflow.graph import check_graph
from tasker_async.durable._model.workflow.signature import Params


async def noop(resource: object, **kwargs: object) -> None:
    return None


def registered(flow: Workflow) -> None:
    Registry().add_workflow(flow)


def test_a_workflow_error_is_a_config_error() -> None:
    assert issubclass(WorkflowError, ConfigError)
    assert str(WorkflowError("text")) == "text"


def test_a_cycle_names_its_steps_in_order() -> None:
    flow = Workflow("flow")
    flow.step(name="a", depends_on=["c"])(noop)
    flow.step(name="b", depends_on=["a"])(noop)
    flow.step(name="c", depends_on=["b"])(noop)
    flow.step(name="d", depends_on=["a"])(noop)
    expected = "workflow 'flow': its steps form a cycle: a -> b -> c -> a (each step depends on the one before it)"
    with pytest.raises(WorkflowError) as caught:
        flow.validate()
    assert str(caught.value) == expected
    with pytest.raises(WorkflowError, match="a -> b -> c -> a"):
        registered(flow)
    with pytest.raises(WorkflowError, match="a -> b -> c -> a"):
        flow.topological_order()


def test_a_step_depending_on_itself_is_a_cycle() -> None:
    flow = Workflow("flow")
    flow.step(name="a", depends_on=["a"])(noop)
    with pytest.raises(WorkflowError, match="cycle: a -> a "):
        flow.validate()


def test_an_unknown_dependency_names_the_step_and_the_unknown_name() -> None:
    flow = Workflow("flow")
    flow.step(name="a")(noop)
    flow.step(name="b", depends_on=["a", "ghost"])(noop)
    with pytest.raises(WorkflowError) as caught:
        registered(flow)
    assert str(caught.value) == "workflow 'flow': step 'b' depends on 'ghost', which is no step of the workflow"


def test_a_duplicate_step_name_is_refused_when_decorated() -> None:
    flow = Workflow("flow")
    flow.step(name="a")(noop)
    with pytest.raises(WorkflowError) as caught:
        flow.step(name="a")(noop)
    assert str(caught.value) == "workflow 'flow': step name 'a' is defined twice"
    assert list(flow.steps) == ["a"]


def test_a_parameter_naming_a_step_that_is_not_a_parent_names_both() -> None:
    flow = Workflow("flow")

    @flow.step()
    async def load(conn: object) -> int:
        return 1

    @flow.step()
    async def total(conn: object, *, load: int) -> int:  # needs depends_on=[load]
        return load

    with pytest.raises(WorkflowError) as caught:
        registered(flow)
    assert str(caught.value) == (
        "workflow 'flow': step 'total' has a parameter 'load', which names step 'load' but 'load' is not one "
        "of its parents (add it to depends_on, or rename the parameter)"
    )


def test_map_over_a_step_that_is_not_a_parent_names_both() -> None:
    # The decorator adds the mapped parent itself, so a definition reaching the graph check without it is built
    # by hand here.
    params = Params(keywords=(), required=frozenset(), takes_all=False, resource="conn")

    class Node:
        def __init__(self, name: str, depends_on: tuple[str, ...], map_over: str | None) -> None:
            self.name, self.depends_on, self.map_over, self.params = name, depends_on, map_over, params

    nodes = [Node("a", (), None), Node("b", (), None), Node("c", ("a",), "b")]
    with pytest.raises(WorkflowError) as caught:
        check_graph("flow", nodes)
    assert str(caught.value) == "workflow 'flow': step 'c' maps over 'b', which is not one of its parents"


def test_a_positional_parameter_besides_the_resource_is_refused() -> None:
    flow = Workflow("flow")

    async def charge(conn: object, order: dict[str, object], *, validate: list[object]) -> None:
        return None

    async def spread(conn: object, *items: object) -> None:
        return None

    async def no_resource(*, order: int) -> None:
        return None

    with pytest.raises(WorkflowError, match=r"step 'charge': parameter\(s\) 'order' come before `\*`"):
        flow.step()(charge)
    with pytest.raises(WorkflowError, match=r"step 'spread': parameter\(s\) 'items'"):
        flow.step()(spread)
    with pytest.raises(WorkflowError, match="step 'no_resource' must take its resource as its first positional"):
        flow.step()(no_resource)
    assert not flow.steps


def test_a_workflow_without_steps_is_refused() -> None:
    flow = Workflow("empty")
    with pytest.raises(WorkflowError, match="workflow 'empty' has no steps"):
        flow.validate()
    with pytest.raises(WorkflowError, match="workflow 'empty' has no steps"):
        registered(flow)


def test_a_kwargs_step_whose_resource_is_named_like_what_it_receives_is_refused() -> None:
    flow = Workflow("flow")

    @flow.step()
    async def page(conn: object, *, url: str) -> str:
        return url

    @flow.step(depends_on=[page])
    async def audit(url: object, **kwargs: object) -> None:  # would get the input `url` twice
        return None

    with pytest.raises(WorkflowError, match="step 'audit' takes \\*\\*kwargs and its resource as 'url'"):
        flow.validate()


def test_a_step_of_another_workflow_is_no_dependency() -> None:
    one, two = Workflow("one"), Workflow("two")
    first = one.step(name="first")(noop)
    with pytest.raises(
        WorkflowError, match=re.escape("workflow 'two': <Step one.first depends_on=[]> is a step of workflow 'one'")
    ):
        two.step(depends_on=[first])


def test_no_step_is_added_once_registered() -> None:
    flow = Workflow("flow")
    flow.step(name="a")(noop)
    registered(flow)
    with pytest.raises(WorkflowError, match="workflow 'flow' is registered already"):
        flow.step(name="b")(noop)
    assert list(flow.steps) == ["a"]


def test_a_registry_refuses_a_second_workflow_of_a_name_and_step_names_taken_by_tasks() -> None:
    registry = Registry()
    flow = Workflow("flow")
    flow.step(name="a")(noop)
    registry.add_workflow(flow)
    again = Workflow("flow")
    again.step(name="b")(noop)
    with pytest.raises(WorkflowError, match="workflow name 'flow' is registered twice"):
        registry.add_workflow(again)

    @registry.task("other.a")
    async def task(resource: object) -> None:
        return None

    other = Workflow("other")
    other.step(name="a")(noop)
    with pytest.raises(
        WorkflowError, match=re.escape("job name(s) 'other.a' of its steps are registered tasks' names")
    ):
        registry.add_workflow(other)
    with pytest.raises(ConfigError, match=re.escape("task name 'flow.a' is the job name of a step of workflow 'flow'")):
        registry.task("flow.a")(task.fn)
    assert registry.workflows == (flow,)
    assert [task.name for task in registry] == ["other.a"]
