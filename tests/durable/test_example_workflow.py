"""The workflow example (examples/durable/orders.py): run by the worker command on SQLite, started by a client
in the test and by the example's own starter; its graph as the guide draws it.

One worker process serves the module's tests (each uses its own orders, so their runs do not meet); the
stock file it reads at each reservation is how a test takes an item out of stock and restocks it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from anyio import run_process

from examples.durable import orders
from tasker_async.durable import Client, RunFailedError, RunInfo, SQLiteStore, StepState, WorkflowRun

from .cli_procs import DEADLINE, ROOT, Worker, wait_for, workers

GUIDE = ROOT / "docs" / "guides" / "workflows.md"

# The run of an order whose reservation failed, once its independent branch (charge) has finished.
FAILED: dict[str, StepState] = {
    "validate": "succeeded",
    "charge": "succeeded",
    "reserve": "failed",
    "ship": "upstream_failed",
}


@dataclass
class Shop:
    """The worker serving the example, its store and the stock file it reads."""

    db: Path
    stock: Path
    worker: Worker

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    def set_stock(self, **units: int) -> None:
        """Units of the SKUs named; every other SKU has plenty."""
        # Written aside and renamed over: an item still running of an earlier run never reads half a file.
        aside = self.stock.with_suffix(".partial")
        aside.write_text(json.dumps(units), encoding="utf-8")
        os.replace(aside, self.stock)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    folder = tmp_path_factory.mktemp("orders")
    db, stock = folder / "tasker.db", folder / "stock.json"
    with workers(folder, f"sqlite:///{db}") as started:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("ORDERS_STOCK", str(stock))  # the worker process inherits it
            worker = started.start(target="examples.durable.orders")
        yield Shop(db, stock, worker)


def states(info: RunInfo) -> dict[str, str]:
    return {name: step.state for name, step in info.steps.items()}


async def step_state_is(run: WorkflowRun, step: str, state: str) -> bool:
    return (await run.info()).steps[step].state == state


async def test_orders_started_by_a_client_run_on_the_worker_command_and_a_key_starts_one_run(shop: Shop) -> None:
    shop.set_stock()
    order = {"id": 7, "lines": [{"sku": "mug", "qty": 2}, {"sku": "tee", "qty": 1}]}  # the guide's
    await shop.worker.wait_serving()
    async with SQLiteStore(shop.db) as store, Client(store) as client:
        run = await client.start(orders.fulfil, key="order-7", order=order)
        lone = await client.start(orders.fulfil, order={"id": 102, "lines": [{"sku": "lamp", "qty": 1}]})
        results = await run.result(timeout=DEADLINE)
        lone_results = await lone.result(timeout=DEADLINE)
        again = await client.start(orders.fulfil, key="order-7", order=order)
        info = await run.info()
    assert results == {
        "validate": [{"sku": "mug", "qty": 2, "price": 850}, {"sku": "tee", "qty": 1, "price": 1900}],
        "charge": "pay-7-3600",
        "reserve": ["hold-7-mug-2", "hold-7-tee-1"],  # in line order
        "ship": "order 7 shipped as track-7-2, paid by pay-7-3600",
    }
    assert lone_results["ship"] == "order 102 shipped as track-102-1, paid by pay-102-4500"
    assert again.id == run.id  # the key: the same run, nothing started
    assert info.state == "succeeded"
    assert info.key == "order-7"
    assert states(info) == dict.fromkeys(["validate", "charge", "reserve", "ship"], "succeeded")
    assert info.steps["reserve"].items == 2
    assert [info.steps[name].attempts for name in ("validate", "charge", "reserve", "ship")] == [1, 1, 2, 1]


async def test_an_invalid_order_fails_at_validate_and_nothing_after_it_runs(shop: Shop) -> None:
    shop.set_stock()
    await shop.worker.wait_serving()
    async with SQLiteStore(shop.db) as store, Client(store) as client:
        run = await client.start(orders.fulfil, order={"id": 103, "lines": [{"sku": "kettle", "qty": 1}]})
        with pytest.raises(RunFailedError) as raised:
            await run.result(timeout=DEADLINE)
        info = await run.info()
    assert list(raised.value.steps) == ["validate"]
    assert raised.value.steps["validate"].type == "examples.durable.orders.InvalidOrderError"
    assert "kettle" in raised.value.steps["validate"].message
    assert states(info) == {
        "validate": "failed",
        "charge": "upstream_failed",
        "reserve": "upstream_failed",
        "ship": "upstream_failed",
    }
    assert [info.steps[name].attempts for name in ("charge", "reserve", "ship")] == [0, 0, 0]


async def test_an_out_of_stock_reservation_fails_the_run_and_resume_finishes_it_after_a_restock(shop: Shop) -> None:
    shop.set_stock(lamp=0)
    order = {"id": 201, "lines": [{"sku": "mug", "qty": 1}, {"sku": "lamp", "qty": 2}]}
    await shop.worker.wait_serving()
    async with SQLiteStore(shop.db) as store, Client(store) as client:
        run = await client.start(orders.fulfil, key="test-order-201", order=order)
        with pytest.raises(RunFailedError) as raised:
            await run.result(timeout=DEADLINE)
        # charge does not depend on reserve: it finishes even though the run has failed.
        await wait_for(lambda: step_state_is(run, "charge", "succeeded"))
        failed = await run.info()
        kept = await client.start(orders.fulfil, key="test-order-201", order=order)

        shop.set_stock(lamp=5)
        resumed = await client.resume(run.id)
        results = await resumed.result(timeout=DEADLINE)
        info = await run.info()
    assert list(raised.value.steps) == ["reserve"]
    error = raised.value.steps["reserve"]
    assert error.type == "examples.durable.orders.OutOfStockError"
    assert error.message == "lamp: 2 wanted, 0 in stock"
    assert failed.state == "failed"
    assert states(failed) == FAILED
    assert kept.id == run.id  # a failed run keeps its key: starting again returns it, to resume
    assert resumed.id == run.id
    assert results["reserve"] == ["hold-201-mug-1", "hold-201-lamp-2"]
    assert results["ship"] == "order 201 shipped as track-201-2, paid by pay-201-9850"
    assert info.state == "succeeded"
    # Only the failed item ran again: the mug's hold once, the lamp's twice; the payment was not taken again.
    assert [info.steps[name].attempts for name in ("validate", "charge", "reserve", "ship")] == [1, 1, 3, 1]


async def starter(shop: Shop, *args: str) -> list[str]:
    """Run ``python -m examples.durable.orders ARGS --store URL`` to its end; its output lines."""
    command = [sys.executable, "-m", "examples.durable.orders", *args, "--store", shop.url, "--timeout", "10"]
    done = await run_process(command, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().splitlines()


async def test_the_starter_starts_sample_orders_prints_how_they_ended_and_resumes_a_failed_one(shop: Shop) -> None:
    assert orders.sample_order(2)["lines"][1] == {"sku": "lamp", "qty": 2}
    shop.set_stock(lamp=1)
    await shop.worker.wait_serving()
    first, second = await starter(shop, "start", "--orders", "2")
    assert re.fullmatch(r"order 1 \(run \w+\): order 1 shipped as track-1-2, paid by pay-1-4300", first), first
    failed = re.fullmatch(
        r"order 2 \(run (\w+)\): failed \(reserve: lamp: 2 wanted, 1 in stock\); "
        r"resume it with: python -m examples\.durable\.orders resume (\w+)",
        second,
    )
    assert failed is not None, second
    assert failed[1] == failed[2]

    shop.set_stock(lamp=2)
    resumed = await starter(shop, "resume", failed[1])
    assert resumed == [f"run {failed[1]}: order 2 shipped as track-2-3, paid by pay-2-12750"]


def test_the_guide_draws_the_example_workflow_as_to_mermaid_does_and_shows_its_code_as_it_is() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    pictures = re.findall(r"```mermaid\n(.*?)```", guide, flags=re.DOTALL)
    assert pictures == [orders.fulfil.to_mermaid(), orders.fulfil.to_mermaid(states=FAILED)]
    assert "reserve[[" in pictures[0]  # the mapped step, drawn as a subroutine
    definition = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)[0]
    assert definition.startswith("registry = Registry()\n")
    assert definition in Path(orders.__file__).read_text(encoding="utf-8")
