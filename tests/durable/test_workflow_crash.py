"""Workflow runs survive crashes: a consumer process SIGKILLed mid-run, and fan-in in two consumers at once."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tasker_async.durable import Client, Store, Workflow

from . import cli_worker_mod as mod
from ._doubles import Lab, eventually, serving
from .cli_procs import Workers, wait_until, workers
from .conftest import StoreKit

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def procs(tmp_path: Path, durable_kit: StoreKit) -> Iterator[Workers]:
    with workers(tmp_path, durable_kit.url) as started:
        yield started


async def test_a_run_completes_although_the_consumer_running_it_is_killed(
    durable_kit: StoreKit, procs: Workers, tmp_path: Path
) -> None:
    first = procs.start()
    async with durable_kit.open() as store, Client(store) as client:
        run = await client.start(mod.crash_flow, folder=str(tmp_path))
        await wait_until(lambda: mod.marks(tmp_path, "begin") == [first.pid])
        second = procs.start()
        await second.wait_serving()
        first.kill()
        killed_at = time.monotonic()
        (tmp_path / "release").touch()
        results = await run.result(timeout=3 * mod.LEASE + 10)
        took = time.monotonic() - killed_at
        info = await run.info()
    assert results == {"begin": [1, 2, 3], "square": [1, 4, 9], "join": 14}
    assert sorted(mod.marks(tmp_path, "begin")) == sorted([first.pid, second.pid])
    assert mod.marks(tmp_path, "join") == [second.pid]
    for item in (1, 2, 3):
        assert mod.marks(tmp_path, f"square{item}") == [second.pid]
    assert info.steps["begin"].attempts == 2
    assert took <= 1.5 * mod.LEASE + 5  # taken over after the lease, then three more steps


async def test_a_fan_in_fires_once_when_its_parents_finish_at_once_in_two_consumers(
    kit: StoreKit, store: Store
) -> None:
    lab = Lab()
    flow = Workflow("fan.in")
    joined: list[tuple[str, str]] = []

    @flow.step()
    async def left(resource: str, *, tag: str) -> str:
        return await lab.hold(resource, f"left-{tag}")

    @flow.step()
    async def right(resource: str, *, tag: str) -> str:
        return await lab.hold(resource, f"right-{tag}")

    @flow.step(depends_on=[left, right])
    async def join(resource: str, *, left: str, right: str) -> str:
        joined.append((left, right))
        return f"{left}+{right}"

    lab.registry.add_workflow(flow)
    async with AsyncExitStack() as stack, Client(store) as client:
        # Two store objects (two connections) where the engine allows; the memory store is one object.
        other = store if kit.kind == "memory" else await stack.enter_async_context(kit.open())
        async with serving(store, lab, name="A"), serving(other, lab, name="B"):
            for round_ in range(3):
                run = await client.start(flow, tag=str(round_))
                labels = [f"left-{round_}", f"right-{round_}"]
                await eventually(functools.partial(_each_started_once, lab, labels), "both parents running")
                ran_on = {run_.label: run_.resource[0] for run_ in lab.runs if run_.label in labels}
                assert sorted(ran_on.values()) == ["A", "B"]  # one parent in each consumer
                lab.open(*labels)  # both finish at the same moment
                assert (await run.result(timeout=10))["join"] == f"{labels[0]}+{labels[1]}"
    assert joined == [(f"left-{n}", f"right-{n}") for n in range(3)]


def _each_started_once(lab: Lab, labels: list[str]) -> bool:
    return all(lab.starts(label) == 1 for label in labels)
