"""A run's graph laid out in layers, left to right, for the page to draw (it only draws what this places).

Pure: a step's layer is the longest path to it from a root (a step without parents), so every edge goes
rightwards; within a layer, steps are ordered by the mean row of their parents (definition order breaks
ties), which keeps the lines of a fan-out and its fan-in from crossing. Each layer is centred vertically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ("NODE_HEIGHT", "NODE_WIDTH", "Edge", "Layout", "Node", "layers", "layout")

NODE_WIDTH = 132
NODE_HEIGHT = 44
GAP_X = 56  # between layers: room for the edges' arrows
GAP_Y = 18
MARGIN = 8


@dataclass(frozen=True, slots=True)
class Node:
    """Where one step goes: its layer and row, and its box's top-left corner."""

    name: str
    layer: int
    row: int
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Edge:
    """A line from a parent's box (its right side) to a child's (its left side)."""

    parent: str
    child: str
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True, slots=True)
class Layout:
    """Every step's place, every edge, and the drawing's size."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    width: float
    height: float

    def as_dict(self) -> dict[str, Any]:
        """The JSON the page draws: ``{"width", "height", "node": {...}, "nodes": [...], "edges": [...]}``."""
        return {
            "width": self.width,
            "height": self.height,
            "node": {"width": NODE_WIDTH, "height": NODE_HEIGHT},
            "nodes": [{"name": n.name, "layer": n.layer, "row": n.row, "x": n.x, "y": n.y} for n in self.nodes],
            "edges": [
                {"from": e.parent, "to": e.child, "x1": e.x1, "y1": e.y1, "x2": e.x2, "y2": e.y2} for e in self.edges
            ],
        }


def layers(parents: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each step's layer: 0 for a root, else one more than its deepest parent (the longest path from a root).

    Parents that are not steps of the graph are ignored (a graph is drawn even from a partial snapshot).

    Raises:
        ValueError: the graph has a cycle.
    """
    depth: dict[str, int] = {}
    visiting: set[str] = set()

    def visit(name: str) -> int:
        if name in depth:
            return depth[name]
        if name in visiting:
            raise ValueError(f"the graph has a cycle through step {name!r}")
        visiting.add(name)
        known = [parent for parent in parents[name] if parent in parents]
        depth[name] = 1 + max((visit(parent) for parent in known), default=-1)
        visiting.discard(name)
        return depth[name]

    for name in parents:
        visit(name)
    return depth


def _rows(parents: Mapping[str, Sequence[str]], depth: Mapping[str, int]) -> dict[str, int]:
    """Each step's row in its layer: by the mean row of its parents, then by definition order."""
    order = {name: index for index, name in enumerate(parents)}
    row: dict[str, int] = {}
    for layer in range(1 + max(depth.values(), default=-1)):
        members = [name for name in parents if depth[name] == layer]

        def weight(name: str) -> tuple[float, int]:
            known = [row[parent] for parent in parents[name] if parent in row]
            return (sum(known) / len(known) if known else 0.0, order[name])

        for index, name in enumerate(sorted(members, key=weight)):
            row[name] = index
    return row


def layout(parents: Mapping[str, Sequence[str]]) -> Layout:
    """Lay out the graph whose steps (in definition order) map to their parents.

    Raises:
        ValueError: the graph has a cycle.
    """
    depth = layers(parents)
    row = _rows(parents, depth)
    sizes: dict[int, int] = {}
    for name in parents:
        sizes[depth[name]] = sizes.get(depth[name], 0) + 1
    tallest = max(sizes.values(), default=0)
    height = 2 * MARGIN + tallest * NODE_HEIGHT + max(0, tallest - 1) * GAP_Y
    width = 2 * MARGIN + len(sizes) * NODE_WIDTH + max(0, len(sizes) - 1) * GAP_X
    nodes: dict[str, Node] = {}
    for name in parents:
        layer = depth[name]
        column = sizes[layer] * NODE_HEIGHT + (sizes[layer] - 1) * GAP_Y
        top = (height - column) / 2
        nodes[name] = Node(
            name, layer, row[name], MARGIN + layer * (NODE_WIDTH + GAP_X), top + row[name] * (NODE_HEIGHT + GAP_Y)
        )
    edges = tuple(
        Edge(
            parent,
            child,
            nodes[parent].x + NODE_WIDTH,
            nodes[parent].y + NODE_HEIGHT / 2,
            nodes[child].x,
            nodes[child].y + NODE_HEIGHT / 2,
        )
        for child in parents
        for parent in parents[child]
        if parent in nodes
    )
    return Layout(tuple(nodes.values()), edges, float(width), float(height))
