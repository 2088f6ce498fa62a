"""Screenshots of the dashboard for the docs: ``python -m tests.dashboard.screenshots [--out docs/images]``.

Fills a SQLite store in a temporary directory as a busy day would (a queue filling and draining under a
consumer, consumers on other machines, failed reports with their tracebacks, dead image jobs, the example
app's orders: shipped, failed at a reservation, invalid, one in progress), serves it with the real command,
and saves one PNG per view: dashboard-queues.png, dashboard-jobs.png, dashboard-runs.png.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from playwright.async_api import Page, async_playwright

from examples.durable import orders
from tasker_async import AsyncManager
from tasker_async.durable import Client, Consumer, Registry, SQLiteStore, Store

from . import _seed
from ._browser import CHROMIUM, LAUNCH_ARGS
from ._server import ROOT, dashboard

slow = Registry()


@slow.task("mail.send", queue="mail")
async def send_mail(resource: object, to: str) -> str:
    await anyio.sleep(1.5)  # a slow mail server: the queue drains at a few jobs a second
    return f"sent to {to}"


@asynccontextmanager
async def shop(store: Store) -> AsyncIterator[Consumer]:
    """A consumer of the example app, as its worker command runs it."""
    async with AsyncManager(orders.config) as manager, Consumer(store, orders.registry, manager) as consumer:
        yield consumer


async def fill_runs(store: Store, client: Client) -> None:
    """Orders shipped, failed (out of stock; invalid), and two in progress (one step running, one ready)."""
    async with shop(store):
        shipped = await client.start(orders.fulfil, order=orders.sample_order(1))
        short = await client.start(orders.fulfil, order={"id": 2, "lines": [{"sku": "lamp", "qty": 2}]})
        invalid = await client.start(orders.fulfil, order={"id": 3, "lines": [{"sku": "kettle", "qty": 1}]})
        for run_id in (shipped.id, short.id, invalid.id):
            await _seed.wait_for(functools.partial(_finished, run_id, store))
        await _seed.wait_for(lambda: _step_is(store, short.id, "charge", "succeeded"))
    await client.start(orders.fulfil, order=orders.sample_order(4))
    await client.start(orders.fulfil, order=orders.sample_order(5))


async def _finished(run_id: str, store: Store) -> bool:
    info = await store.run_info(run_id)
    return info is not None and info.state != "running"


async def _step_is(store: Store, run_id: str, step: str, state: str) -> bool:
    info = await store.run_info(run_id)
    return info is not None and info.steps[step].state == state


async def fill(store: Store, client: Client) -> None:
    await fill_runs(store, client)
    await _seed.reports(store, client, ["2026-11-28", "2026-11-30", "bad-day", "2026-11-29", "2026-12-01"])
    await _seed.dead(store, client, 3)
    for n in range(12):
        await client.submit("images.thumbnail", f"photo-{n}.jpg")  # a queue nobody serves yet


@asynccontextmanager
async def _busy(store: Store, client: Client) -> AsyncIterator[None]:
    """A mail queue filling in waves while a consumer drains it (the sparkline's shape), and two more consumers."""
    async with _seed.consumer(store, ["mail"], workers=4, reg=slow):
        for wave in (30, 12, 26, 8, 20):
            for n in range(wave):
                await client.submit(send_mail, f"user{n}@example.com", priority=n % 7 == 0)
            await anyio.sleep(2.5)  # a few samples of the history between two waves
        for n in range(4):
            await client.submit(send_mail, f"later{n}@example.com", delay=3600)
        # The oldest ready job of the default queue (order 4's validate step) runs on another machine.
        await store.claim("worker-web-2", ["default"], 1)
        await _seed.heartbeat(store, "worker-web-2", host="web-2", pid=48213, capacity=8, running=1)
        await _seed.heartbeat(store, "worker-web-3", host="web-3", pid=1207, capacity=8, running=0)
        await anyio.sleep(1)  # the page's next update shows them
        yield


async def shoot(page: Page, url: str, out: Path) -> None:
    await page.set_viewport_size({"width": 1280, "height": 560})
    await page.goto(url + "#queues")
    await page.locator("#consumers tbody tr").nth(2).wait_for()
    await page.screenshot(path=out / "dashboard-queues.png")
    await page.set_viewport_size({"width": 1280, "height": 1250})
    await page.goto(url + "#jobs")
    await page.locator("#jobs-failed article").first.wait_for()
    await page.locator("#jobs-failed details summary").first.click()
    await page.screenshot(path=out / "dashboard-jobs.png")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.goto(url + "#runs")
    await page.locator("#runs article").first.wait_for()
    await page.screenshot(path=out / "dashboard-runs.png", full_page=True)


async def main(out: Path) -> None:
    await anyio.Path(out).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        db, stock = Path(folder) / "tasker.db", Path(folder) / "stock.json"
        stock.write_text(json.dumps({"lamp": 1}), encoding="utf-8")
        os.environ["ORDERS_STOCK"] = str(stock)
        async with SQLiteStore(db) as store, Client(store) as client:
            await fill(store, client)
            with dashboard(Path(folder), f"sqlite:///{db}", "--allow-actions", "--interval", "0.5") as served:
                url = await served.ready()
                async with _busy(store, client), async_playwright() as driver:
                    browser = await driver.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
                    page = await browser.new_page()
                    await shoot(page, url, out)
                    await browser.close()
                await served.stop()
    for name in ("queues", "jobs", "runs"):
        print(out / f"dashboard-{name}.png")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.dashboard.screenshots", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", metavar="DIR")
    anyio.run(main, parser.parse_args().out)
