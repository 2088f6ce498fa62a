"""The worker's health endpoint: what ``/health`` and ``/ready`` answer, in a worker process and in-process."""

from __future__ import annotations

import functools
import json
import re
import signal
from pathlib import Path
from typing import Any

import anyio
import pytest

from tasker_async._cli.health import reply, serve_health
from tasker_async.durable import Client, ConsumerHealth, MemoryStore
from tasker_async.durable._consumer.stats import REACHES_STORE_WITHIN

from . import cli_worker_mod as mod
from ._doubles import Lab, OutageStore, serving
from .cli_procs import Workers, cli, wait_until

pytestmark = pytest.mark.timeout(30)

NOW = 1_000_000.0


def _health(state: Any = "running", heartbeat_at: float | None = NOW - 0.3) -> ConsumerHealth:
    return ConsumerHealth(state=state, heartbeat_at=heartbeat_at, heartbeat_every=0.5, running=2, capacity=4)


async def probe(host: str, port: int, request: str) -> tuple[int, dict[str, Any]]:
    """Send ``request`` (a request line) to the endpoint; the reply's status and JSON body."""
    with anyio.fail_after(10):
        async with await anyio.connect_tcp(host, port) as stream:
            await stream.send(f"{request}\r\nHost: {host}\r\nUser-Agent: kube-probe/1.30\r\n\r\n".encode())
            received = b""
            try:
                while True:
                    received += await stream.receive()
            except anyio.EndOfStream:
                pass
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"Content-Type: application/json" in head
    return status, json.loads(body) if body else {}


# -- what each request is answered


@pytest.mark.parametrize("path", ["/health", "/ready", "/ready?verbose=1"])
def test_a_serving_consumer_that_reaches_its_store_is_live_and_ready(path: str) -> None:
    answer = reply(f"GET {path} HTTP/1.1", _health(), {"consumer": "c"}, NOW)
    assert answer.status == 200
    assert answer.body == {
        "status": "ok",
        "consumer": "c",
        "state": "running",
        "running": 2,
        "capacity": 4,
        "heartbeat_age": 0.3,
    }


def test_a_consumer_cut_off_from_its_store_is_live_but_not_ready() -> None:
    old = _health(heartbeat_at=NOW - REACHES_STORE_WITHIN - 0.1)
    assert reply("GET /health HTTP/1.1", old, {}, NOW).status == 200  # a restart would reach the store no better
    answer = reply("GET /ready HTTP/1.1", old, {}, NOW)
    assert (answer.status, answer.body["status"]) == (503, "store unreachable")
    never = reply("GET /ready HTTP/1.1", _health(heartbeat_at=None), {}, NOW)
    assert (never.status, never.body["heartbeat_age"]) == (503, None)


@pytest.mark.parametrize("state", ["stopping", "killing", "stopped"])
@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_a_draining_or_stopped_consumer_is_neither_live_nor_ready(state: str, path: str) -> None:
    answer = reply(f"GET {path} HTTP/1.1", _health(state), {}, NOW)
    assert (answer.status, answer.body["status"], answer.body["state"]) == (503, "stopping", state)


@pytest.mark.parametrize(
    ("line", "status", "named"),
    [
        ("GET /metrics HTTP/1.1", 404, "/metrics"),
        ("POST /health HTTP/1.1", 405, "POST"),
        ("GET /health", 400, "request line"),
        ("", 400, "request line"),
    ],
)
def test_other_requests_get_an_error_naming_what_was_wrong(line: str, status: int, named: str) -> None:
    answer = reply(line, _health(), {}, NOW)
    assert answer.status == status
    assert named in answer.body["error"]


# -- in-process, over a consumer


async def test_the_endpoint_answers_over_tcp_and_tracks_the_store_reaching_the_consumer() -> None:
    store = OutageStore(MemoryStore())
    async with serving(store, Lab()) as node, anyio.create_task_group() as group:
        start = functools.partial(serve_health, node.consumer, host="127.0.0.1", port=0)
        host, port = await group.start(start)
        status, body = await probe(host, port, "GET /ready HTTP/1.1")
        assert (status, body["status"], body["consumer"]) == (200, "ok", node.consumer.id)
        assert (await probe(host, port, "HEAD /health HTTP/1.1"))[0] == 200
        reached = node.consumer.health().heartbeat_at
        store.down = True
        await wait_until(lambda: store.failed["renew"] >= 2)
        # The heartbeat no longer reaches the store: its time stands still, and readiness follows it.
        assert node.consumer.health().heartbeat_at == reached
        later = (reached or 0.0) + REACHES_STORE_WITHIN + 1.0
        assert reply("GET /ready HTTP/1.1", node.consumer.health(), {}, later).status == 503
        store.down = False
        await wait_until(lambda: (node.consumer.health().heartbeat_at or 0.0) > (reached or 0.0))
        group.cancel_scope.cancel()


# -- in a worker process (``url``, ``client`` and ``procs``: conftest.py)


async def test_a_worker_answers_probes_and_fails_liveness_while_it_drains(
    client: Client, procs: Workers, tmp_path: Path
) -> None:
    worker = procs.start("--health-port", "0")
    await worker.wait_output("/ready")
    found = re.search(r"health probes: http://([\d.]+):(\d+)/health", worker.output())
    assert found is not None, worker.output()
    host, port = found[1], int(found[2])
    job = await client.submit(mod.hold, str(tmp_path), "probed")
    await wait_until(lambda: mod.marks(tmp_path, "probed") == [worker.pid])
    status, body = await probe(host, port, "GET /health HTTP/1.1")
    assert (status, body["running"], body["capacity"]) == (200, 1, 2)
    assert body["consumer"].split(":")[1] == str(worker.pid)
    assert (await probe(host, port, "GET /ready HTTP/1.1"))[0] == 200
    worker.signal(signal.SIGTERM)
    await worker.wait_output("draining")
    status, body = await probe(host, port, "GET /health HTTP/1.1")
    assert (status, body["status"], body["state"]) == (503, "stopping", "stopping")
    (tmp_path / "release").touch()
    assert await worker.wait_exit() == 0, worker.output()
    assert await job.result(timeout=5) == worker.pid


def test_a_health_port_in_use_is_told_in_a_line(url: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = cli("worker", mod.__name__, "--store", url, "--health-port", str(port))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"--health-port {port} on 127.0.0.1" in done.stderr


@pytest.mark.parametrize("port", ["65536", "-1", "http"])
def test_a_bad_health_port_is_a_usage_error(port: str, url: str) -> None:
    done = cli("worker", mod.__name__, "--store", url, f"--health-port={port}")
    assert done.returncode == 2
    assert "--health-port" in done.stderr
