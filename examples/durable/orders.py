"""The workflow example: an order fulfilled by four steps, run by any number of worker processes.

    validate -> charge || reserve (one job per line item) -> ship

Each worker of a worker process's manager holds one connection to the shop's (simulated) back office,
through which the steps check the catalogue, take payments, hold stock and book the carrier. Nothing here
touches a network: prices come from ``CATALOGUE`` and stock from ``stock.json`` (``ORDERS_STOCK`` names
another file), read at each reservation, so editing the file is how a delivery arrives at the warehouse.

Every step is safe to run twice (steps run at least once): a payment or a hold is named after the order,
so a rerun takes the same one again.

Run, from the repository root, any number of workers and then the starter:

    python -m tasker_async worker examples.durable.orders --store sqlite:///tasker.db
    python -m examples.durable.orders start --store sqlite:///tasker.db --orders 3
    python -m examples.durable.orders resume RUN_ID --store sqlite:///tasker.db
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from collections.abc import Sequence
from typing import Any, TypedDict

import anyio

from tasker_async import Config
from tasker_async.durable import (
    Client,
    JobCancelledError,
    Registry,
    RunFailedError,
    Workflow,
    WorkflowRun,
    open_store,
)

__all__ = (
    "CATALOGUE",
    "IN_STOCK",
    "BackOffice",
    "InvalidOrderError",
    "Line",
    "OutOfStockError",
    "charge",
    "close_back_office",
    "config",
    "fulfil",
    "main",
    "open_back_office",
    "registry",
    "reserve",
    "sample_order",
    "ship",
    "validate",
)

CATALOGUE = {"mug": 850, "tee": 1900, "poster": 1200, "lamp": 4500}  # price of each SKU, in cents
IN_STOCK = 100  # units of a SKU the stock file does not list

_ids = itertools.count(1)


class Line(TypedDict):
    """One line item of a validated order."""

    sku: str
    qty: int
    price: int


class InvalidOrderError(ValueError):
    """The order cannot be fulfilled as given (unknown SKU, no lines, a quantity that is not positive)."""


class OutOfStockError(RuntimeError):
    """The warehouse holds fewer units than the line asks for."""


class BackOffice:
    """Stands in for a connection to the shop's back office: opened once per worker, one call at a time."""

    def __init__(self) -> None:
        self.id = next(_ids)
        self.closed = False

    async def _call(self) -> None:
        if self.closed:
            raise RuntimeError(f"back-office connection {self.id} is closed")
        await anyio.sleep(0.005)  # the round trip

    async def price(self, sku: str) -> int | None:
        """The price of ``sku`` in cents, or ``None`` when the catalogue has no such SKU."""
        await self._call()
        return CATALOGUE.get(sku)

    async def take_payment(self, order_id: int, cents: int) -> str:
        """Charge the order's card; the payment is named after the order, so charging again takes the same one."""
        await self._call()
        return f"pay-{order_id}-{cents}"

    async def hold(self, order_id: int, sku: str, qty: int) -> str:
        """Hold ``qty`` units of ``sku`` for the order, or raise ``OutOfStockError``."""
        await self._call()
        available = (await _stock()).get(sku, IN_STOCK)
        if available < qty:
            raise OutOfStockError(f"{sku}: {qty} wanted, {available} in stock")
        return f"hold-{order_id}-{sku}-{qty}"

    async def book_carrier(self, order_id: int, parcels: int) -> str:
        """Book the carrier for the order's parcels; return the tracking code."""
        await self._call()
        return f"track-{order_id}-{parcels}"


async def _stock() -> dict[str, int]:
    """The stock file's units by SKU (a SKU it does not list has ``IN_STOCK``); none when there is no file."""
    path = anyio.Path(os.environ.get("ORDERS_STOCK", "stock.json"))
    if not await path.exists():
        return {}
    levels: dict[str, int] = json.loads(await path.read_text(encoding="utf-8"))
    return levels


async def open_back_office() -> BackOffice:
    """``on_create``: connect one worker to the back office."""
    await anyio.sleep(0.01)  # the handshake
    return BackOffice()


def close_back_office(office: BackOffice) -> None:
    """``on_destroy``: hang up."""
    office.closed = True


registry = Registry()

# The manager each worker process runs; ``--concurrency N`` on the command line sets ``worker_count``.
config = Config(on_create=open_back_office, on_destroy=close_back_office, worker_count=4)

fulfil = Workflow("order.fulfil", queue="default", lease=10.0)


@fulfil.step()
async def validate(office: BackOffice, *, order: dict[str, Any]) -> list[Line]:
    """Check the order against the catalogue; return its line items with their prices."""
    lines: list[Line] = []
    for line in order.get("lines") or []:
        sku, qty = line.get("sku"), line.get("qty")
        price = await office.price(sku) if isinstance(sku, str) else None
        if price is None or not isinstance(qty, int) or qty < 1:
            raise InvalidOrderError(f"order {order.get('id')}: cannot sell {line!r}")
        lines.append({"sku": sku, "qty": qty, "price": price})
    if not lines:
        raise InvalidOrderError(f"order {order.get('id')} has no lines")
    return lines


@fulfil.step(depends_on=[validate], max_deliveries=5)
async def charge(office: BackOffice, *, order: dict[str, Any], validate: list[Line]) -> str:
    """Charge the order's total; ``validate`` is the whole list of line items here."""
    return await office.take_payment(order["id"], sum(line["qty"] * line["price"] for line in validate))


@fulfil.step(depends_on=[validate], map_over=validate)
async def reserve(office: BackOffice, *, order: dict[str, Any], validate: Line) -> str:
    """Hold one line's units in the warehouse; ``validate`` is one line item here (one job per line)."""
    return await office.hold(order["id"], validate["sku"], validate["qty"])


@fulfil.step(depends_on=[charge, reserve])
async def ship(office: BackOffice, *, order: dict[str, Any], charge: str, reserve: list[str]) -> str:
    """Book the carrier once paid and every line is held; ``reserve`` holds the holds, in line order."""
    tracking = await office.book_carrier(order["id"], len(reserve))
    return f"order {order['id']} shipped as {tracking}, paid by {charge}"


registry.add_workflow(fulfil)


def sample_order(number: int) -> dict[str, Any]:
    """Order ``number`` of the starter: one to three lines, made up from the number alone."""
    skus = list(CATALOGUE)
    lines = [{"sku": skus[(number + k) % len(skus)], "qty": 1 + k} for k in range(1 + number % 3)]
    return {"id": number, "lines": lines}


async def _report(run: WorkflowRun, label: str, timeout: float) -> str:
    try:
        results = await run.result(timeout=timeout)
    except RunFailedError as failed:
        errors = "; ".join(f"{step}: {error.message}" for step, error in failed.steps.items())
        return f"{label}: failed ({errors}); resume it with: python -m examples.durable.orders resume {run.id}"
    except JobCancelledError:
        return f"{label}: cancelled"
    except TimeoutError:
        return f"{label}: still running after {timeout:g} s (is a worker running on this store?)"
    shipped: str = results["ship"]
    return f"{label}: {shipped}"


async def _start(url: str, count: int, timeout: float) -> None:
    async with open_store(url) as store, Client(store) as client:
        runs = []
        for number in range(1, count + 1):
            # The key makes starting idempotent: starting order 1 again returns its run, finished or failed.
            runs.append(await client.start(fulfil, key=f"order-{number}", order=sample_order(number)))
        for number, run in enumerate(runs, start=1):
            print(await _report(run, f"order {number} (run {run.id})", timeout), flush=True)


async def _resume(url: str, run_id: str, timeout: float) -> None:
    async with open_store(url) as store, Client(store) as client:
        run = await client.resume(run_id)
        print(await _report(run, f"run {run_id}", timeout), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """``start`` sample orders and print how each ended, or ``resume`` a failed run and print how it ended."""
    parser = argparse.ArgumentParser(prog="python -m examples.durable.orders", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start sample orders 1..N (idempotent: keyed by order)")
    start.add_argument("--orders", type=int, default=3, metavar="N")
    resume = commands.add_parser("resume", help="run a failed run's failed steps again")
    resume.add_argument("run_id")
    for command in (start, resume):
        command.add_argument("--store", default="sqlite:///tasker.db", metavar="URL")
        command.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    if args.command == "start":
        anyio.run(_start, args.store, args.orders, args.timeout)
    else:
        anyio.run(_resume, args.store, args.run_id, args.timeout)


if __name__ == "__main__":
    main()
