"""The worker's health endpoint (``--health-port``): liveness at ``/health``, readiness at ``/ready``, in JSON.

Kubernetes (or systemd, or a load balancer) asks a worker process two things. *Live*: the process
answers and its consumer serves, so a restart would not help; a store outage leaves it live, since a
new process would reach the store no better. *Ready*: it serves and its heartbeat reached the store
lately (``REACHES_STORE_WITHIN``); neither while it drains, so no new work is routed to it.

A probe sends one small ``GET`` and reads one reply: a few lines over anyio's TCP listener answer it, and keep
the core free of an HTTP dependency. Each connection gets one reply, then is closed.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream, TaskStatus

from ..durable import Consumer, ConsumerHealth

__all__ = ("Reply", "reply", "serve_health")

MAX_REQUEST = 8192  # bytes of request line and headers read at most: a probe sends a few hundred
READ_TIMEOUT = 5.0  # seconds a client may take to send its request
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP status and its JSON body."""

    status: int
    body: dict[str, Any]


def reply(request_line: str, health: ConsumerHealth, facts: dict[str, Any], now: float) -> Reply:
    """What to answer ``request_line`` (``GET /health HTTP/1.1``), given the consumer's health at ``now``."""
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return Reply(400, {"error": "expected a request line such as 'GET /health HTTP/1.1'"})
    method, path = parts[0], parts[1].split("?", 1)[0]
    if path not in ("/health", "/ready"):
        return Reply(404, {"error": f"no {path}: ask /health (liveness) or /ready (readiness)"})
    if method not in ("GET", "HEAD"):
        return Reply(405, {"error": f"{method} {path}: only GET (or HEAD) is answered"})
    age = health.heartbeat_age(now)
    body = {
        **facts,
        "state": health.state,
        "running": health.running,
        "capacity": health.capacity,
        "heartbeat_age": None if age is None else round(age, 3),
    }
    if not health.serving():
        return Reply(503, {"status": "stopping", **body})
    if path == "/ready" and not health.reaches_store(now):
        return Reply(503, {"status": "store unreachable", **body})
    return Reply(200, {"status": "ok", **body})


def _encode(answer: Reply, *, head: bool) -> bytes:
    body = json.dumps(answer.body).encode()
    lines = [
        f"HTTP/1.1 {answer.status} {_REASONS[answer.status]}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body)


async def _request_line(stream: SocketStream) -> str:
    """The request's first line, once its headers are in (a body, which a probe never sends, is not read)."""
    received = b""
    with anyio.move_on_after(READ_TIMEOUT):
        while b"\r\n\r\n" not in received and len(received) < MAX_REQUEST:
            try:
                received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                break
    return received.split(b"\r\n", 1)[0].decode("latin-1")


def _answerer(consumer: Consumer) -> Callable[[SocketStream], Any]:
    async def answer(stream: SocketStream) -> None:
        async with stream:
            line = await _request_line(stream)
            answer = reply(line, consumer.health(), {"consumer": consumer.id}, time.time())
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):  # the prober left
                await stream.send(_encode(answer, head=line.startswith("HEAD ")))

    return answer


async def serve_health(
    consumer: Consumer, *, host: str, port: int, task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Answer health probes about ``consumer`` on ``host:port`` until cancelled; started with the bound address.

    Raises:
        OSError: the address cannot be bound (in use, or not this machine's).
    """
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port, reuse_port=False)
    async with listener:
        bound = listener.listeners[0].extra(SocketAttribute.local_address)
        task_status.started((str(bound[0]), int(bound[1])))
        await listener.serve(_answerer(consumer))
