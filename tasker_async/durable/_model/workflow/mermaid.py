"""A workflow's graph as Mermaid ``flowchart`` text, optionally coloured by the states of a run's steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .graph import Node
from .records import STEP_STATES, StepState

__all__ = ("STATE_STYLES", "to_mermaid")

# Words Mermaid reads as statements or keywords at the start of a line or as a node id.
_RESERVED = frozenset(
    {"call", "class", "classdef", "click", "default", "direction", "end", "flowchart", "graph", "href"}
    | {"linkstyle", "style", "subgraph"}
)

STATE_STYLES: Mapping[StepState, str] = {
    "pending": "fill:#f5f5f5,stroke:#9e9e9e",
    "ready": "fill:#e3f2fd,stroke:#1e88e5",
    "running": "fill:#fff8e1,stroke:#f9a825",
    "succeeded": "fill:#e8f5e9,stroke:#43a047",
    "failed": "fill:#ffebee,stroke:#e53935",
    "upstream_failed": "fill:#fce4ec,stroke:#ad1457,stroke-dasharray:4 2",
    "cancelled": "fill:#eceff1,stroke:#546e7a,stroke-dasharray:4 2",
}
"""The Mermaid style of a step in each state, when ``to_mermaid`` is given states."""


def _node_ids(names: Sequence[str]) -> dict[str, str]:
    # A step name is a Python identifier, so it is a valid node id unless Mermaid reserves it: those get
    # underscores appended until the id is free (another step may be called ``end_``).
    ids: dict[str, str] = {}
    taken = set(names)
    for name in names:
        node_id = name
        if name.lower() in _RESERVED:
            while node_id in taken:
                node_id += "_"
            taken.add(node_id)
        ids[name] = node_id
    return ids


def to_mermaid(nodes: Sequence[Node], states: Mapping[str, StepState] | None = None) -> str:
    """The graph of ``nodes`` as a Mermaid ``flowchart TD``: one node per step, an edge from each parent to its child.

    A mapped step is drawn as a subroutine (``[[...]]``) labelled with the parent it maps over. The text
    depends only on the steps, in definition order, so it is stable.

    Args:
        nodes: the steps, in definition order.
        states: a run's step states, by step name: each step in it is styled for its state
            (``STATE_STYLES``); steps left out, or ``None``, stay plain.
    """
    ids = _node_ids([node.name for node in nodes])
    lines = ["flowchart TD"]
    for node in nodes:
        if node.map_over is None:
            lines.append(f'    {ids[node.name]}["{node.name}"]')
        else:
            lines.append(f'    {ids[node.name]}[["{node.name} (map over {node.map_over})"]]')
    for node in nodes:
        lines.extend(f"    {ids[parent]} --> {ids[node.name]}" for parent in node.depends_on if parent in ids)
    if states:
        for state in STEP_STATES:
            members = [ids[node.name] for node in nodes if states.get(node.name) == state]
            if members:
                lines.append(f"    classDef {state} {STATE_STYLES[state]}")
                lines.append(f"    class {','.join(members)} {state}")
    return "\n".join(lines) + "\n"
