"""A run's graph laid out in layers: the longest path from a root, edges rightwards, no overlaps."""

from __future__ import annotations

import pytest

from examples.durable import orders
from tasker_async.dashboard._graph import NODE_HEIGHT, NODE_WIDTH, layers, layout

ORDERS = {"validate": (), "charge": ("validate",), "reserve": ("validate",), "ship": ("charge", "reserve")}


def test_a_layer_is_the_longest_path_from_a_root() -> None:
    graph = {"a": (), "b": ("a",), "c": ("b",), "d": ("a", "c"), "e": ()}
    assert layers(graph) == {"a": 0, "b": 1, "c": 2, "d": 3, "e": 0}


def test_the_example_workflow_is_three_layers_with_the_fan_out_stacked_in_the_middle() -> None:
    drawn = layout(ORDERS)
    nodes = {node.name: node for node in drawn.nodes}
    assert [nodes[name].layer for name in ORDERS] == [0, 1, 1, 2]
    assert [nodes[name].row for name in ORDERS] == [0, 0, 1, 0]
    assert nodes["charge"].x == nodes["reserve"].x > nodes["validate"].x
    assert nodes["reserve"].y >= nodes["charge"].y + NODE_HEIGHT  # stacked, not overlapping
    # The lone steps are centred on the column of two.
    middle = (nodes["charge"].y + nodes["reserve"].y + NODE_HEIGHT) / 2
    assert nodes["validate"].y + NODE_HEIGHT / 2 == pytest.approx(middle)
    assert nodes["ship"].y == nodes["validate"].y
    assert drawn.width >= nodes["ship"].x + NODE_WIDTH
    assert drawn.height >= nodes["reserve"].y + NODE_HEIGHT


def test_edges_go_from_a_parent_s_right_side_to_a_child_s_left_side() -> None:
    drawn = layout(ORDERS)
    nodes = {node.name: node for node in drawn.nodes}
    assert sorted((edge.parent, edge.child) for edge in drawn.edges) == [
        ("charge", "ship"),
        ("reserve", "ship"),
        ("validate", "charge"),
        ("validate", "reserve"),
    ]
    for edge in drawn.edges:
        assert edge.x1 == nodes[edge.parent].x + NODE_WIDTH
        assert edge.x2 == nodes[edge.child].x
        assert edge.y2 == nodes[edge.child].y + NODE_HEIGHT / 2
        assert edge.x2 > edge.x1


def test_rows_follow_the_parents_so_two_chains_do_not_cross() -> None:
    # Defined so that definition order alone would cross the chains: b2 comes before b1.
    graph = {"a1": (), "a2": (), "b2": ("a2",), "b1": ("a1",)}
    rows = {node.name: node.row for node in layout(graph).nodes}
    assert rows == {"a1": 0, "a2": 1, "b1": 0, "b2": 1}


def test_the_document_the_page_draws() -> None:
    document = layout(ORDERS).as_dict()
    assert document["node"] == {"width": NODE_WIDTH, "height": NODE_HEIGHT}
    assert [node["name"] for node in document["nodes"]] == list(ORDERS)
    assert {"from": "validate", "to": "charge"}.items() <= document["edges"][0].items()
    assert set(document) == {"width", "height", "node", "nodes", "edges"}


def test_the_example_app_s_definition_lays_out() -> None:
    parents = {name: step.depends_on for name, step in orders.fulfil.steps.items()}
    assert layers(parents) == {"validate": 0, "charge": 1, "reserve": 1, "ship": 2}


def test_an_empty_graph_a_missing_parent_and_a_cycle() -> None:
    assert layout({}).nodes == ()
    assert layers({"b": ("gone",)}) == {"b": 0}  # a parent that is not in the snapshot is left out
    assert layout({"b": ("gone",)}).edges == ()
    with pytest.raises(ValueError, match="cycle"):
        layers({"a": ("b",), "b": ("a",)})
