"""``GET /api/events``: server-sent events, one ``overview`` event with the whole overview each interval.

A plain ASGI application rather than a streaming response, to watch both ends at once: the stream ends
as soon as the client goes (its ``http.disconnect``, not at the next failed write) and as soon as the
dashboard stops (``Dashboard.stop``), which a server must call when its shutdown begins, since servers
wait for open responses to finish before they end the application's lifespan.
"""

from __future__ import annotations

import contextlib
import json

import anyio
from starlette.types import Receive, Scope, Send

from ._live import Dashboard

__all__ = ("RETRY_MS", "EventStream", "encode_event")

RETRY_MS = 2000  # how long a browser waits before it reconnects a stream that ended


def encode_event(event: str, data: object) -> bytes:
    """One server-sent event: its name and its data as one line of JSON."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    # A proxy that buffers responses (nginx does by default) would hold the events back.
    (b"x-accel-buffering", b"no"),
]


class EventStream:
    """The ASGI application of ``GET /api/events``."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the newest overview, then each one published after it, until the client or the dashboard goes."""
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        gone = False
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                nonlocal gone
                await _disconnected(receive)
                gone = True
                group.cancel_scope.cancel()

            group.start_soon(watch)
            try:
                await self._pump(send)
            except OSError:  # the connection broke under a write
                gone = True
            group.cancel_scope.cancel()
        if not gone:
            await _end(send)

    async def _pump(self, send: Send) -> None:
        await send({"type": "http.response.body", "body": f"retry: {RETRY_MS}\n\n".encode(), "more_body": True})
        version = 0
        while (published := await self.dashboard.newer(version)) is not None:
            version = published.version
            body = encode_event("overview", published.document)
            await send({"type": "http.response.body", "body": body, "more_body": True})


async def _disconnected(receive: Receive) -> None:
    """Return once the client has gone (a request body, if any, is read and ignored)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _end(send: Send) -> None:
    """Finish the response; a client that went meanwhile is no error."""
    with anyio.CancelScope(shield=True):
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
