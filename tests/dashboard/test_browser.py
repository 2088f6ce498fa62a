"""The dashboard in a real headless browser (Debian's Chromium driven by Playwright), served by the real command.

Two dashboard processes serve one SQLite file for the module, one read-only and one with actions and a
token; each test adds what it looks at (its own jobs and runs) through the public API on that file and
waits with Playwright's auto-waiting assertions. No test may leave an error in the browser's console.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from examples.durable import orders
from tasker_async import AsyncManager
from tasker_async.durable import Client, Consumer, RunFailedError, SQLiteStore, Store

from . import _seed
from ._browser import LAUNCH_ARGS, check_chromium
from ._server import dashboard

pytestmark = pytest.mark.asyncio(loop_scope="module")
TOKEN = "browser-token"


@dataclass
class Site:
    """The module's store file and the URLs of the two dashboards serving it."""

    db: Path
    read_only: str
    actions: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    folder = tmp_path_factory.mktemp("dashboard")
    db = folder / "tasker.db"
    async with SQLiteStore(db):
        pass  # the file and its tables: the dashboard only looks, it makes no store
    url = f"sqlite:///{db}"
    with ExitStack() as started:
        read_only = started.enter_context(dashboard(folder, url, "--interval", "0.2"))
        actions = started.enter_context(
            dashboard(folder, url, "--interval", "0.2", "--allow-actions", "--token", TOKEN)
        )
        yield Site(db, await read_only.ready(), await actions.ready())
        assert await read_only.stop() == 0, read_only.output()
        assert await actions.stop() == 0, actions.output()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    chromium = check_chromium()
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page; the test fails if anything was logged as an error in its console, or thrown."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text}")

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    try:
        yield opened
    finally:
        await context.close()
    assert errors == []


@pytest_asyncio.fixture(loop_scope="module")
async def store(site: Site) -> AsyncIterator[Store]:
    async with SQLiteStore(site.db) as opened:
        yield opened


async def test_the_queues_depth_shows_and_changes_live_as_jobs_are_submitted(
    page: Page, site: Site, store: Store
) -> None:
    async with Client(store) as client:
        await _seed.queued(client, 3)
        await page.goto(site.read_only)
        await expect(page.locator("#live")).to_have_text("live")
        mail = page.locator('#queues tr[data-queue="mail"]')
        await expect(mail.locator('td[data-field="ready_main"]')).to_have_text("3")
        await expect(mail.locator("svg.spark")).to_have_count(1)

        await _seed.queued(client, 2)
        await _seed.queued(client, 1, priority=True)
        await _seed.queued(client, 1, delay=3600)
        await _seed.heartbeat(store, "worker-browser", host="web-9", pid=999, capacity=4, running=2)
        await expect(mail.locator('td[data-field="ready_main"]')).to_have_text("5")
        await expect(mail.locator('td[data-field="ready_priority"]')).to_have_text("1")
        await expect(mail.locator('td[data-field="delayed"]')).to_have_text("1")
        consumer = page.locator('#consumers tr[data-consumer="worker-browser"]')
        await expect(consumer).to_contain_text("web-9")
        await expect(consumer.locator('td[data-field="running"]')).to_have_text("2")
    await expect(page.locator("#mode")).to_have_text("read-only")


async def test_read_only_shows_dead_jobs_with_their_error_but_no_button(page: Page, site: Site, store: Store) -> None:
    async with Client(store) as client:
        [dead] = await _seed.dead(store, client, 1)
    await page.goto(site.read_only + "#jobs")
    card = page.locator(f'#jobs-dead article[data-job-id="{dead}"]')
    await expect(card).to_contain_text("DeadLetterError")
    await expect(card).to_contain_text("delivered once without an outcome")
    await expect(card.locator("button")).to_have_count(0)
    await expect(page.locator("#cancel-job")).to_be_hidden()
    await expect(page.locator("#token-field")).to_be_hidden()


async def test_a_dead_job_s_requeue_button_puts_it_back_in_its_queue(page: Page, site: Site, store: Store) -> None:
    async with Client(store) as client:
        [dead] = await _seed.dead(store, client, 1)
        failed = await _seed.reports(store, client, ["2026-11-30"])
    await page.goto(site.actions + "#jobs")
    await expect(page.locator("#mode")).to_have_text("actions allowed")
    await page.locator("#token").fill(TOKEN)  # kept in sessionStorage for the page's requests
    # A failed job's traceback unfolds, and stays unfolded through the updates.
    report = page.locator(f'#jobs-failed article[data-job-id="{failed[0]}"]')
    await report.locator("summary").click()
    await expect(report.locator("pre")).to_contain_text("KeyError: '2026-11-30'")
    await expect(report.locator("pre")).to_contain_text("ReportError: no sales ledger for 2026-11-30")

    card = page.locator(f'#jobs-dead article[data-job-id="{dead}"]')
    await card.get_by_role("button", name="Requeue").click()
    await expect(page.locator("#notice")).to_have_text(f"job {dead} requeued")
    await expect(card).to_have_count(0)
    info = await store.info(dead)
    assert info is not None
    assert (info.state, info.deliveries) == ("queued", 0)
    await expect(report.locator("pre")).to_be_visible()


async def test_the_example_workflow_s_runs_are_drawn_with_each_step_s_state_live(
    page: Page, site: Site, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stock = tmp_path / "stock.json"
    stock.write_text(json.dumps({"lamp": 0}), encoding="utf-8")
    monkeypatch.setenv("ORDERS_STOCK", str(stock))
    await page.goto(site.actions + "#runs")
    await expect(page.locator("#live")).to_have_text("live")
    async with Client(store) as client:
        waiting = await client.start(orders.fulfil, order={"id": 301, "lines": [{"sku": "mug", "qty": 1}]})
        run = page.locator(f'article[data-run-id="{waiting.id}"]')
        await expect(run.locator('g.node[data-step="validate"]')).to_have_attribute("data-state", "ready")
        await expect(run.locator('g.node[data-step="ship"]')).to_have_attribute("data-state", "pending")
        await expect(run.locator("path.edge")).to_have_count(4)

        shipped = await client.start(
            orders.fulfil, order={"id": 302, "lines": [{"sku": "mug", "qty": 1}, {"sku": "tee", "qty": 2}]}
        )
        short = await client.start(orders.fulfil, order={"id": 303, "lines": [{"sku": "lamp", "qty": 2}]})
        async with AsyncManager(orders.config) as manager, Consumer(store, orders.registry, manager):
            await shipped.result(timeout=_seed.DEADLINE)
            await waiting.result(timeout=_seed.DEADLINE)
            with pytest.raises(RunFailedError):
                await short.result(timeout=_seed.DEADLINE)
            await _seed.wait_for(lambda: _charged(short.id, store))
    for started in (waiting, shipped, short):
        info = await started.info()
        drawn = page.locator(f'article[data-run-id="{started.id}"]')
        await expect(drawn).to_have_attribute("data-state", info.state)
        for name, step in info.steps.items():
            await expect(drawn.locator(f'g.node[data-step="{name}"]')).to_have_attribute("data-state", step.state)
    failed = page.locator(f'article[data-run-id="{short.id}"]')
    assert {name: step.state for name, step in (await short.info()).steps.items()} == {
        "validate": "succeeded",
        "charge": "succeeded",
        "reserve": "failed",
        "ship": "upstream_failed",
    }
    await expect(failed).to_contain_text("OutOfStockError: lamp: 2 wanted, 0 in stock")
    await expect(failed.get_by_role("button", name="Resume")).to_be_visible()
    reserve = page.locator(f'article[data-run-id="{shipped.id}"] g.node[data-step="reserve"]')
    await expect(reserve).to_contain_text("2 items")


async def _charged(run_id: str, store: Store) -> bool:
    info = await store.run_info(run_id)
    return info is not None and info.steps["charge"].state == "succeeded"
