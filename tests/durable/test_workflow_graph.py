"""The graph rules on random DAGs (hypothesis), and the pure graph functions on small cases."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasker_async.durable import Workflow, WorkflowError
from tasker_async.durable._model.workflow.graph import children_of, descendants, find_cycle, topological_order

Graph = dict[str, list[str]]

# Deterministic: the same examples on every run, nothing read from or written to a database.
SETTINGS = settings(max_examples=100, deadline=None, derandomize=True, database=None)


async def noop(resource: object, **kwargs: object) -> None:
    return None


@st.composite
def dags(draw: st.DrawFn, min_steps: int = 1) -> Graph:
    """Up to 12 steps ``s0``, ``s1``, ...; each depends on a random set of lower-numbered ones.

    The steps come in a random definition order, so that order is not already a topological one.
    """
    count = draw(st.integers(min_value=min_steps, max_value=12))
    names = [f"s{index}" for index in range(count)]
    graph: Graph = {}
    for index, name in enumerate(names):
        # One number per step, whose bits pick its parents: far cheaper to draw than a list per step.
        bits = draw(st.integers(min_value=0, max_value=(1 << index) - 1))
        graph[name] = [names[parent] for parent in range(index) if bits >> parent & 1]
    return {name: graph[name] for name in draw(st.permutations(names))}


def build(graph: Graph) -> Workflow:
    flow = Workflow("random")
    for name, parents in graph.items():
        flow.step(name=name, depends_on=parents)(noop)
    return flow


@SETTINGS
@given(dags())
def test_a_random_dag_validates_and_orders_every_parent_before_its_children(graph: Graph) -> None:
    flow = build(graph)
    flow.validate()
    order = flow.topological_order()
    assert sorted(order) == sorted(graph)
    position = {name: index for index, name in enumerate(order)}
    children = {name: flow.children(name) for name in graph}
    for child, parents in graph.items():
        assert all(position[parent] < position[child] for parent in parents)
        assert flow.parents(child) == tuple(parents)
        assert all(child in children[parent] for parent in parents)
    assert flow.roots == tuple(name for name, parents in graph.items() if not parents)


@SETTINGS
@given(dags(min_steps=2), st.data())
def test_a_back_edge_makes_a_cycle_that_the_error_names(graph: Graph, data: st.DataObject) -> None:
    names = sorted(graph, key=lambda name: int(name[1:]))
    low = data.draw(st.integers(min_value=0, max_value=len(names) - 2))
    high = data.draw(st.integers(min_value=low + 1, max_value=len(names) - 1))
    # Make sure `high` depends on `low`, then inject the back edge: `low` depends on `high`.
    if names[low] not in graph[names[high]]:
        graph[names[high]].append(names[low])
    graph[names[low]].append(names[high])

    with pytest.raises(WorkflowError) as caught:
        build(graph).validate()
    found = re.fullmatch(
        r"workflow 'random': its steps form a cycle: (.*) \(each step depends on .*\)", str(caught.value)
    )
    assert found, str(caught.value)
    cycle = found.group(1).split(" -> ")
    assert len(cycle) >= 3
    assert cycle[0] == cycle[-1]
    assert len(set(cycle[:-1])) == len(cycle) - 1
    for parent, child in itertools.pairwise(cycle):
        assert parent in graph[child], (parent, child)
    # It starts at its earliest-defined step.
    assert cycle[0] == min(cycle, key=list(graph).index)


def test_a_self_loop_is_a_cycle_of_one() -> None:
    assert find_cycle({"a": [], "b": ["b"]}) == ["b", "b"]
    assert find_cycle({"a": [], "b": ["a"]}) is None


def test_the_order_breaks_ties_by_definition_order() -> None:
    graph = {"z": [], "y": ["z"], "x": [], "w": ["x", "y"]}
    assert topological_order(graph) == ("z", "y", "x", "w")
    assert children_of(graph) == {"z": ("y",), "y": ("w",), "x": ("w",), "w": ()}
    assert descendants(graph, "z") == frozenset({"y", "w"})
    assert descendants(graph, "w") == frozenset()
    with pytest.raises(ValueError, match="cycle: a -> b -> a"):
        topological_order({"a": ["b"], "b": ["a"]})


def test_a_long_chain_needs_no_recursion() -> None:
    graph = {f"s{index}": [f"s{index - 1}"] if index else [] for index in range(5000)}
    assert find_cycle(graph) is None
    assert topological_order(graph)[-1] == "s4999"
    graph["s0"] = ["s4999"]
    cycle = find_cycle(graph)
    assert cycle is not None
    assert len(cycle) == 5001
