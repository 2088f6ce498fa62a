"""The rules of a workflow's graph, as pure functions over step names and their parents.

A graph is a mapping of each step's name to its parents' names, in definition order; edges run from a parent
to its child. Nothing here knows a ``Workflow``: it builds these mappings and calls in.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from ..errors import WorkflowError
from .signature import Params

__all__ = ("Node", "check_graph", "children_of", "descendants", "find_cycle", "reachable", "topological_order")

Parents = Mapping[str, Sequence[str]]


class Node(Protocol):
    """What the checks read of a step."""

    @property
    def name(self) -> str:
        """The step's name."""
        ...

    @property
    def depends_on(self) -> tuple[str, ...]:
        """Its parents' names."""
        ...

    @property
    def map_over(self) -> str | None:
        """The parent it maps over, if any."""
        ...

    @property
    def params(self) -> Params:
        """What its signature receives."""
        ...


def children_of(parents: Parents) -> dict[str, tuple[str, ...]]:
    """Each step's children, in definition order (names that are no step are left out)."""
    children: dict[str, list[str]] = {name: [] for name in parents}
    for child, its_parents in parents.items():
        for parent in dict.fromkeys(its_parents):
            if parent in children:
                children[parent].append(child)
    return {name: tuple(found) for name, found in children.items()}


def find_cycle(parents: Parents) -> list[str] | None:
    """A cycle as the steps along it, first one repeated last (``[a, b, c, a]``: b depends on a, ...), or ``None``.

    The cycle starts at its earliest-defined step. Depth-first, without recursion (a long chain of steps
    must not reach the interpreter's recursion limit).
    """
    children = children_of(parents)
    rank = {name: index for index, name in enumerate(parents)}
    done: set[str] = set()
    for root in parents:
        if root in done:
            continue
        path, on_path = [root], {root}
        pending: list[Iterator[str]] = [iter(children[root])]
        while pending:
            child = next(pending[-1], None)
            if child is None:
                pending.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif child in on_path:
                cycle = path[path.index(child) :]
                start = min(range(len(cycle)), key=lambda i: rank[cycle[i]])
                cycle = cycle[start:] + cycle[:start]
                return [*cycle, cycle[0]]
            elif child not in done:
                path.append(child)
                on_path.add(child)
                pending.append(iter(children[child]))
    return None


def topological_order(parents: Parents) -> tuple[str, ...]:
    """Every step after all its parents; among steps free to go, the earlier-defined first (so it is stable).

    Raises:
        ValueError: the graph has a cycle.
    """
    rank = {name: index for index, name in enumerate(parents)}
    children = children_of(parents)
    waiting = {name: len({p for p in its_parents if p in rank}) for name, its_parents in parents.items()}
    free = [rank[name] for name, count in waiting.items() if count == 0]
    heapq.heapify(free)
    names = list(parents)
    order: list[str] = []
    while free:
        name = names[heapq.heappop(free)]
        order.append(name)
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(free, rank[child])
    if len(order) < len(names):
        raise ValueError(f"the graph has a cycle: {' -> '.join(find_cycle(parents) or [])}")
    return tuple(order)


def descendants(parents: Parents, name: str) -> frozenset[str]:
    """The steps that depend on ``name``, directly or through others (``name`` itself not included)."""
    return reachable(children_of(parents), name)


def reachable(children: Mapping[str, Sequence[str]], name: str) -> frozenset[str]:
    """The steps below ``name`` in a graph given by each step's children (``name`` itself not included)."""
    found: set[str] = set()
    todo = list(children.get(name, ()))
    while todo:
        step = todo.pop()
        if step not in found:
            found.add(step)
            todo.extend(children[step])
    return frozenset(found)


def check_graph(workflow: str, nodes: Sequence[Node]) -> None:
    """Check a workflow's steps as a whole; the error names every step at fault for the first rule broken.

    Raises:
        WorkflowError: no steps, a duplicate name, an unknown dependency, a cycle, a ``map_over`` that is
            not a parent, a keyword parameter naming a step that is not a parent, or a ``**kwargs`` step
            whose resource parameter shares a name it would receive.
    """
    if not nodes:
        raise WorkflowError(f"workflow {workflow!r} has no steps: add them with @workflow.step()")
    for rule in (_duplicates, _unknown, _cycle, _map_over, _parameters, _resource_clash):
        problems = rule(nodes)
        if problems:
            raise WorkflowError(f"workflow {workflow!r}: {'; '.join(problems)}")


def _duplicates(nodes: Sequence[Node]) -> list[str]:
    counts = Counter(node.name for node in nodes)
    return [f"step name {name!r} is defined {count} times" for name, count in counts.items() if count > 1]


def _unknown(nodes: Sequence[Node]) -> list[str]:
    names = {node.name for node in nodes}
    return [
        f"step {node.name!r} depends on {parent!r}, which is no step of the workflow"
        for node in nodes
        for parent in node.depends_on
        if parent not in names
    ]


def _cycle(nodes: Sequence[Node]) -> list[str]:
    cycle = find_cycle({node.name: node.depends_on for node in nodes})
    if cycle is None:
        return []
    return [f"its steps form a cycle: {' -> '.join(cycle)} (each step depends on the one before it)"]


def _map_over(nodes: Sequence[Node]) -> list[str]:
    return [
        f"step {node.name!r} maps over {node.map_over!r}, which is not one of its parents"
        for node in nodes
        if node.map_over is not None and node.map_over not in node.depends_on
    ]


def _parameters(nodes: Sequence[Node]) -> list[str]:
    names = {node.name for node in nodes}
    return [
        f"step {node.name!r} has a parameter {keyword!r}, which names step {keyword!r} but {keyword!r} is not "
        f"one of its parents (add it to depends_on, or rename the parameter)"
        for node in nodes
        for keyword in node.params.keywords
        if keyword in names and keyword not in node.depends_on
    ]


def _resource_clash(nodes: Sequence[Node]) -> list[str]:
    names = {node.name for node in nodes}
    inputs = {keyword for node in nodes for keyword in node.params.keywords if keyword not in names}
    return [
        f"step {node.name!r} takes **kwargs and its resource as {node.params.resource!r}, a name it would also "
        f"receive as an input or parent result (rename the resource parameter, or make it positional-only)"
        for node in nodes
        if node.params.takes_all and (node.params.resource in inputs or node.params.resource in node.depends_on)
    ]
