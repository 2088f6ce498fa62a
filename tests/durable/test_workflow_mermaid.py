"""``to_mermaid``: the graph as Mermaid text, stable, with mapped steps drawn apart and states as styles."""

from __future__ import annotations

from tasker_async.durable import Workflow

from .test_workflow_definition import noop, order_workflow

ORDER_MERMAID = """\
flowchart TD
    validate["validate"]
    charge["charge"]
    reserve[["reserve (map over validate)"]]
    ship["ship"]
    validate --> charge
    validate --> reserve
    charge --> ship
    reserve --> ship
"""


def test_the_order_example_as_mermaid() -> None:
    assert order_workflow().to_mermaid() == ORDER_MERMAID


def test_states_colour_the_steps_in_a_fixed_order() -> None:
    text = order_workflow().to_mermaid(states={"ship": "pending", "validate": "succeeded", "charge": "failed"})
    assert text == ORDER_MERMAID + (
        "    classDef pending fill:#f5f5f5,stroke:#9e9e9e\n"
        "    class ship pending\n"
        "    classDef succeeded fill:#e8f5e9,stroke:#43a047\n"
        "    class validate succeeded\n"
        "    classDef failed fill:#ffebee,stroke:#e53935\n"
        "    class charge failed\n"
    )


def test_names_mermaid_reserves_get_another_node_id() -> None:
    flow = Workflow("flow")
    flow.step(name="end_")(noop)
    flow.step(name="end", depends_on=["end_"])(noop)
    flow.step(name="style", depends_on=["end"])(noop)
    assert flow.to_mermaid() == (
        "flowchart TD\n"
        '    end_["end_"]\n'
        '    end__["end"]\n'
        '    style_["style"]\n'
        "    end_ --> end__\n"
        "    end__ --> style_\n"
    )
