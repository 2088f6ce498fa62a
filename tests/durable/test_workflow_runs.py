"""Workflow runs end to end on every store: the diamond with a mapped step, injection, failures, resume, cancel."""

from __future__ import annotations

import re
from typing import Any

import anyio
import pytest

from tasker_async.durable import (
    Client,
    JobCancelledError,
    RunFailedError,
    Store,
    Workflow,
    WorkflowError,
)

from ._doubles import Lab, OutageStore, eventually, serving


def _order(lab: Lab, calls: list[tuple[str, Any]], *, fail_reserve: set[str] | None = None) -> Workflow:
    """validate -> charge || reserve (one per item) -> ship: the order-fulfilment diamond."""
    flow = Workflow("order.fulfil", lease=5.0, max_deliveries=2)

    @flow.step()
    async def validate(resource: str, *, order: dict[str, Any]) -> list[str]:
        calls.append(("validate", order["id"]))
        return list(order["items"])

    @flow.step(depends_on=[validate])
    async def charge(resource: str, *, order: dict[str, Any], validate: list[str]) -> str:
        calls.append(("charge", len(validate)))
        return f"paid-{order['id']}"

    @flow.step(depends_on=[validate], map_over=validate)
    async def reserve(resource: str, *, validate: str) -> str:
        calls.append(("reserve", validate))
        if fail_reserve and validate in fail_reserve:
            raise RuntimeError(f"out of {validate}")
        return f"held-{validate}"

    @flow.step(depends_on=[charge, reserve])
    async def ship(resource: str, *, charge: str, reserve: list[str]) -> str:
        calls.append(("ship", tuple(reserve)))
        return f"{charge}:{'+'.join(reserve)}"

    lab.registry.add_workflow(flow)
    return flow


async def test_the_diamond_with_a_mapped_step_runs_each_step_once_and_fans_in_once(store: Store) -> None:
    lab = Lab()
    calls: list[tuple[str, Any]] = []
    flow = _order(lab, calls)
    async with Client(store) as client, serving(store, lab, workers=3):
        run = await client.start(flow, order={"id": 7, "items": ["a", "b", "c"]}, key="order-7")
        results = await run.result(timeout=20)
        info = await run.info()
        again = await client.start(flow, order={"id": 7, "items": ["a", "b", "c"]}, key="order-7")
    assert results == {
        "validate": ["a", "b", "c"],
        "charge": "paid-7",
        "reserve": ["held-a", "held-b", "held-c"],
        "ship": "paid-7:held-a+held-b+held-c",
    }
    assert again.id == run.id
    expected = [("validate", 7), ("charge", 3), ("reserve", "a"), ("reserve", "b"), ("reserve", "c")]
    expected.append(("ship", ("held-a", "held-b", "held-c")))
    assert sorted(calls, key=str) == sorted(expected, key=str)
    assert info.state == "succeeded"
    assert {name: step.state for name, step in info.steps.items()} == dict.fromkeys(
        ["validate", "charge", "reserve", "ship"], "succeeded"
    )
    assert info.steps["reserve"].items == 3
    assert info.steps["reserve"].attempts == 3
    assert info.steps["ship"].attempts == 1
    assert info.key == "order-7"
    assert info.finished_at is not None


async def test_a_failing_step_fails_its_descendants_and_lets_an_independent_branch_finish(store: Store) -> None:
    lab = Lab()
    calls: list[tuple[str, Any]] = []
    flow = _order(lab, calls, fail_reserve={"b"})
    async with Client(store) as client, serving(store, lab, workers=2):
        run = await client.start(flow, order={"id": 8, "items": ["a", "b"]})
        with pytest.raises(RunFailedError) as raised:
            await run.result(timeout=20)
        # The independent branch finishes even after the run ended failed.
        await eventually(lambda: ("charge", 2) in calls, "charge ran")
        info = await run.info()
    assert set(raised.value.steps) == {"reserve"}
    assert "out of b" in raised.value.steps["reserve"].message
    states = {name: step.state for name, step in info.steps.items()}
    assert states["validate"] == "succeeded"
    assert states["reserve"] == "failed"
    assert states["ship"] == "upstream_failed"
    assert info.state == "failed"
    assert ("ship", ("held-a",)) not in calls


async def test_resume_reruns_only_the_failed_items_and_carries_on(store: Store) -> None:
    lab = Lab()
    calls: list[tuple[str, Any]] = []
    broken = {"b"}
    flow = _order(lab, calls, fail_reserve=broken)
    async with Client(store) as client, serving(store, lab, workers=2):
        run = await client.start(flow, order={"id": 9, "items": ["a", "b", "c"]})
        with pytest.raises(RunFailedError):
            await run.result(timeout=20)
        await eventually(lambda: len([call for call in calls if call[0] in ("charge", "reserve")]) == 4, "all ran")
        broken.clear()
        resumed = await client.resume(run.id)
        results = await resumed.result(timeout=20)
    assert resumed.id == run.id
    assert results["ship"] == "paid-9:held-a+held-b+held-c"
    reserves = sorted(call[1] for call in calls if call[0] == "reserve")
    assert reserves == ["a", "b", "b", "c"]  # only the failed item ran again
    assert [call for call in calls if call[0] == "validate"] == [("validate", 9)]


async def test_cancel_ends_the_run_at_once_and_its_queued_steps_never_run(store: Store) -> None:
    lab = Lab()
    flow = Workflow("slow")
    started = anyio.Event()
    release = anyio.Event()

    @flow.step()
    async def first(resource: str) -> int:
        started.set()
        await release.wait()
        return 1

    @flow.step(depends_on=[first])
    async def second(resource: str, *, first: int) -> int:
        raise AssertionError("a step of a cancelled run ran")

    lab.registry.add_workflow(flow)
    async with Client(store) as client, serving(store, lab):
        run = await client.start(flow)
        with anyio.fail_after(10):
            await started.wait()
        assert await run.cancel() is True
        with pytest.raises(JobCancelledError):
            await run.result(timeout=10)
        info = await run.info()
        assert await run.cancel() is False
        release.set()
    assert info.state == "cancelled"
    assert {name: step.state for name, step in info.steps.items()} == {"first": "cancelled", "second": "cancelled"}


async def test_steps_receive_inputs_and_parent_results_by_the_names_in_their_signature(store: Store) -> None:
    lab = Lab()
    flow = Workflow("inject")
    seen: dict[str, Any] = {}

    @flow.step()
    async def a(resource: str, *, x: int, y: int = 5) -> int:
        seen["a"] = (x, y)
        return x + y

    @flow.step(depends_on=[a])
    async def b(resource: str) -> str:
        seen["b"] = ()
        return "b"

    @flow.step(depends_on=[a, b])
    async def c(resource: str, **everything: Any) -> dict[str, Any]:
        seen["c"] = everything
        return everything

    lab.registry.add_workflow(flow)
    async with Client(store) as client, serving(store, lab):
        results = await (await client.start(flow, x=2)).result(timeout=20)
        with pytest.raises(WorkflowError, match="'x'"):
            await client.start(flow)
        with pytest.raises(WorkflowError, match="input 'x'"):
            await client.start(flow, x=object())
    assert seen == {"a": (2, 5), "b": (), "c": {"x": 2, "a": 7, "b": "b"}}
    assert results == {"a": 7, "b": "b", "c": {"x": 2, "a": 7, "b": "b"}}


async def test_a_step_can_map_over_a_mapped_step_item_by_item(store: Store) -> None:
    lab = Lab()
    flow = Workflow("chain")

    @flow.step()
    async def numbers(resource: str) -> list[int]:
        return [1, 2, 3]

    @flow.step(depends_on=[numbers], map_over=numbers)
    async def doubled(resource: str, *, numbers: int) -> int:
        return numbers * 2

    @flow.step(depends_on=[doubled], map_over=doubled)
    async def shown(resource: str, *, doubled: int) -> str:
        return f"<{doubled}>"

    @flow.step(depends_on=[shown, doubled])
    async def joined(resource: str, *, shown: list[str], doubled: list[int]) -> str:
        return "".join(shown) + f"={sum(doubled)}"

    lab.registry.add_workflow(flow)
    async with Client(store) as client, serving(store, lab, workers=2):
        results = await (await client.start(flow)).result(timeout=20)
    assert results == {
        "numbers": [1, 2, 3],
        "doubled": [2, 4, 6],
        "shown": ["<2>", "<4>", "<6>"],
        "joined": "<2><4><6>=12",
    }


async def noop(resource: str, **kwargs: Any) -> None:
    return None


def _broken(kind: str) -> Workflow:
    flow = Workflow(f"broken.{kind}")
    if kind == "cycle":
        flow.step(name="a", depends_on=["b"])(noop)
        flow.step(name="b", depends_on=["a"])(noop)
    elif kind == "unknown dependency":
        flow.step(name="a", depends_on=["ghost"])(noop)
    elif kind == "not a parent":

        async def reads_b(resource: str, *, b: int) -> None:
            return None

        flow.step(name="b")(noop)
        flow.step(name="a")(reads_b)
    return flow


@pytest.mark.parametrize(
    ("kind", "named"), [("cycle", "a -> b -> a"), ("unknown dependency", "ghost"), ("not a parent", "'b'")]
)
async def test_a_wrong_definition_is_refused_at_start_and_nothing_is_stored(
    store: Store, kind: str, named: str
) -> None:
    flow = _broken(kind)
    async with Client(store) as client:
        with pytest.raises(WorkflowError, match=re.escape(named)):
            await client.start(flow)
    assert await store.queue_names() == []


async def test_a_duplicate_step_name_is_refused_when_defined(store: Store) -> None:
    flow = Workflow("twice")
    flow.step(name="a")(noop)
    with pytest.raises(WorkflowError, match="'a'"):
        flow.step(name="a")(noop)
    async with Client(store) as client:
        run = await client.start(flow)  # the first definition stands
        assert (await run.info()).steps.keys() == {"a"}


async def test_purge_deletes_finished_runs_after_their_result_ttl_and_keeps_failed_ones(store: Store) -> None:
    lab = Lab()
    flow = Workflow("short", result_ttl=0.0, max_deliveries=1)

    @flow.step()
    async def only(resource: str, *, fail: bool) -> str:
        if fail:
            raise RuntimeError("failed on purpose")
        return "done"

    lab.registry.add_workflow(flow)
    async with Client(store) as client, serving(store, lab):
        done = await client.start(flow, fail=False, key="k")
        assert (await done.result(timeout=10)) == {"only": "done"}
        failed = await client.start(flow, fail=True)
        with pytest.raises(RunFailedError):
            await failed.result(timeout=10)
        await store.purge()
        with pytest.raises(LookupError):
            await done.info()
        assert (await failed.info()).state == "failed"
        again = await client.start(flow, fail=False, key="k")  # the key went with its run
        assert again.id != done.id


async def test_a_result_rides_out_an_outage_of_the_store(store: Store) -> None:
    lab = Lab()
    flow = Workflow("patient")

    @flow.step()
    async def only(resource: str) -> str:
        return await lab.hold(resource, "only")

    lab.registry.add_workflow(flow)
    flaky = OutageStore(store)
    async with Client(flaky, submit_timeout=30) as client, serving(store, lab):
        run = await client.start(flow)
        await eventually(lambda: lab.starts("only") == 1, "the step running")
        flaky.down = True
        async with anyio.create_task_group() as group:
            got: list[dict[str, Any]] = []

            async def wait() -> None:
                got.append(await run.result(timeout=20))

            group.start_soon(wait)
            await eventually(lambda: flaky.failed["run_output"] >= 2, "the result waited through the outage")
            lab.open("only")
            flaky.down = False
    assert got == [{"only": "only"}]
