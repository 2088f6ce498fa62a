"""The event stream: an overview event at once and one per interval; it ends when the client goes or the app stops."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette

from tasker_async.dashboard import create_app, stop_streams
from tasker_async.durable import Client, MemoryStore, Store

from . import _seed
from ._client import lifespan


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with MemoryStore() as memory:
        yield memory


class Browser:
    """The client end of one ``GET /api/events``, spoken in ASGI: what it was sent, and a way to leave."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.left = anyio.Event()
        self.ended = anyio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.messages.append(dict(message))

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """The events received so far: name and parsed data."""
        text = b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body").decode()
        found = []
        for block in text.split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in fields:
                found.append((fields["event"], json.loads(fields["data"])))
        return found

    async def open(self, app: Starlette) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/api/events",
            "raw_path": b"/api/events",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"dash")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        await app(scope, self.receive, self.send)
        self.ended.set()

    async def wait_events(self, count: int) -> None:
        with anyio.fail_after(_seed.DEADLINE):
            while len(self.events()) < count:  # noqa: ASYNC110 - the messages are appended by another task
                await anyio.sleep(0.005)


async def test_the_stream_sends_an_overview_at_once_then_the_new_counts_and_ends_when_the_client_goes(
    store: Store,
) -> None:
    app = create_app(store, interval=0.02)
    browser = Browser()
    async with lifespan(app), Client(store) as client, anyio.create_task_group() as group:
        group.start_soon(browser.open, app)
        await browser.wait_events(1)
        await _seed.queued(client, 3)
        with anyio.fail_after(_seed.DEADLINE):
            while browser.events()[-1][1]["status"]["queues"].get("mail", {}).get("ready_main") != 3:
                await browser.wait_events(len(browser.events()) + 1)
        browser.left.set()
        with anyio.fail_after(_seed.DEADLINE):
            await browser.ended.wait()
    start = browser.messages[0]
    assert start["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    names = {name for name, _ in browser.events()}
    assert names == {"overview"}
    first = browser.events()[0][1]
    assert set(first) == {"at", "status", "history", "jobs", "runs", "actions", "error"}
    # The client left: nothing more is sent, not even the end of the body.
    assert browser.messages[-1].get("more_body") is True


async def test_stop_streams_ends_every_open_stream_with_the_end_of_its_body(store: Store) -> None:
    app = create_app(store, interval=60)  # no sample comes while the test runs: only stop can end them
    browsers = [Browser(), Browser()]
    async with lifespan(app), anyio.create_task_group() as group:
        for browser in browsers:
            group.start_soon(browser.open, app)
        for browser in browsers:
            await browser.wait_events(1)  # the overview the startup read, sent at once
        stop_streams(app)
        with anyio.fail_after(_seed.DEADLINE):
            for browser in browsers:
                await browser.ended.wait()
    for browser in browsers:
        assert len(browser.events()) == 1
        assert browser.messages[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_a_stream_opened_after_the_stop_ends_at_once(store: Store) -> None:
    app = create_app(store, interval=60)
    browser = Browser()
    async with lifespan(app):
        stop_streams(app)
        with anyio.fail_after(_seed.DEADLINE):
            await browser.open(app)
    assert browser.events() == []
    assert browser.messages[-1]["more_body"] is False
