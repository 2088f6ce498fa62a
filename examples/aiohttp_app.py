"""An aiohttp service that funnels its database work through a pool of connections.

The same API as ``fastapi_app.py``, on aiohttp: each worker of the manager
holds one connection to a (simulated) database; request handlers hand tasks
to the manager and await their results. ``tasker_async.aiohttp.setup``
starts the manager with the application and, at cleanup, after aiohttp has
answered the requests in flight, drains its queues and closes every
connection.

    GET  /users/{user_id}  a lookup, queued on the main queue
    POST /report           a report, queued with priority: it overtakes queued lookups
    GET  /ping             a round trip through run_task: on a spare connection, bypassing the queues
    GET  /stats            manager.stats() and manager.metrics() as JSON
    GET  /metrics          the same in Prometheus text format (needs prometheus_client)

Run: python examples/aiohttp_app.py [--host 127.0.0.1] [--port 8080] [--workers 4]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from aiohttp import web

from tasker_async import AsyncManager, Config, ManagerNotRunningError, TaskTimeoutError
from tasker_async.aiohttp import get_manager, setup

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    from tasker_async.prometheus import instrument
except ImportError:  # /metrics answers 404 without it
    instrument = None  # type: ignore[assignment]

USER_BY_ID = "SELECT id, name FROM users WHERE id = $1"
USER_COUNT = "SELECT count(*) AS count FROM users"
PING = "SELECT 1 AS one"


class FakeDatabase:
    """Stands in for a database server, and counts the connections opened and closed.

    ``answering`` is set while the server answers; clear it to stall every
    query (a slow backend), set it again to let them through.
    """

    def __init__(self, *, latency: float = 0.005) -> None:
        self.latency = latency
        self.users = {1: "Ada Lovelace", 2: "Alan Turing", 3: "Grace Hopper", 4: "Edsger Dijkstra"}
        self.opened = 0
        self.closed = 0
        self.queries = 0
        self.answering = asyncio.Event()
        self.answering.set()
        self._ids = itertools.count(1)

    async def connect(self) -> Connection:
        """``on_create``: open one connection."""
        await asyncio.sleep(0)  # a real driver does a network handshake here
        self.opened += 1
        return Connection(self, next(self._ids))

    async def disconnect(self, connection: Connection) -> None:
        """``on_destroy``: close one connection."""
        await asyncio.sleep(0)
        connection.closed = True
        self.closed += 1

    def answer(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        if sql == USER_BY_ID:
            (user_id,) = params
            name = self.users.get(user_id)
            return [] if name is None else [{"id": user_id, "name": name}]
        if sql == USER_COUNT:
            return [{"count": len(self.users)}]
        if sql == PING:
            return [{"one": 1}]
        raise ValueError(f"this fake database does not know {sql!r}")


class Connection:
    """One connection to the fake database: expensive to open, one query at a time."""

    def __init__(self, db: FakeDatabase, id: int) -> None:
        self.db = db
        self.id = id
        self.closed = False

    async def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        if self.closed:
            raise ConnectionError(f"connection {self.id} is closed")
        await self.db.answering.wait()
        await asyncio.sleep(self.db.latency)
        self.db.queries += 1
        return self.db.answer(sql, params)


# -- tasks: what the workers run, each on its own connection -------------------------


async def fetch_user(connection: Connection, user_id: int) -> dict[str, Any] | None:
    rows = await connection.query(USER_BY_ID, user_id)
    return {**rows[0], "connection": connection.id} if rows else None


async def build_report(connection: Connection) -> dict[str, Any]:
    (row,) = await connection.query(USER_COUNT)
    return {"users": row["count"], "connection": connection.id}


async def ping(connection: Connection) -> dict[str, Any]:
    await connection.query(PING)
    return {"ok": True, "connection": connection.id}


def make_config(db: FakeDatabase, workers: int = 4) -> Config[Connection]:
    return Config(
        on_create=db.connect,
        on_destroy=db.disconnect,
        worker_count=workers,
        max_worker_count=2 * workers,  # burst connections while a backlog lasts
        resource_pool_size=1,  # one spare connection for /ping
        task_timeout=10.0,
        # A lost connection is replaced and the task retried on a fresh one.
        check_health=lambda exc: not isinstance(exc, ConnectionError),
    )


# -- the HTTP side ---------------------------------------------------------------------

# Typed keys: get_manager(request, key=MANAGER) is an AsyncManager[Connection].
MANAGER = web.AppKey("manager", AsyncManager[Connection])
DB = web.AppKey("db", FakeDatabase)
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry")


async def read_user(request: web.Request) -> web.Response:
    try:
        user_id = int(request.match_info["user_id"])
    except ValueError:
        return web.json_response({"detail": "user_id must be an integer"}, status=422)
    user = await get_manager(request, key=MANAGER).queue_task(fetch_user, user_id)
    if user is None:
        return web.json_response({"detail": f"no user {user_id}"}, status=404)
    return web.json_response(user)


async def create_report(request: web.Request) -> web.Response:
    return web.json_response(await get_manager(request, key=MANAGER).queue_task(build_report, priority=True))


async def read_ping(request: web.Request) -> web.Response:
    return web.json_response(await get_manager(request, key=MANAGER).run_task(ping))


async def read_stats(request: web.Request) -> web.Response:
    manager = get_manager(request, key=MANAGER)
    return web.json_response({"stats": asdict(manager.stats()), "metrics": asdict(manager.metrics())})


async def read_metrics(request: web.Request) -> web.Response:
    registry = request.app.get(REGISTRY)
    if registry is None:
        return web.json_response({"detail": "install prometheus_client to get /metrics"}, status=404)
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def manager_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except ManagerNotRunningError:
        return web.json_response({"detail": "shutting down"}, status=503)
    except TaskTimeoutError as exc:
        return web.json_response({"detail": str(exc)}, status=504)
    return response


async def prometheus_context(app: web.Application) -> AsyncIterator[None]:
    # Runs after setup()'s context, so the manager already exists.
    registry = CollectorRegistry()
    app[REGISTRY] = registry
    with instrument(get_manager(app, key=MANAGER), registry=registry, prefix="tasker"):
        yield


def make_app(db: FakeDatabase | None = None, *, workers: int = 4) -> web.Application:
    """Build the application around ``db`` (a fresh ``FakeDatabase`` by default)."""
    app = web.Application(middlewares=[manager_errors])
    app[DB] = FakeDatabase() if db is None else db
    setup(app, make_config(app[DB], workers), key=MANAGER)
    if instrument is not None:
        app.cleanup_ctx.append(prometheus_context)
    app.router.add_get("/users/{user_id}", read_user)
    app.router.add_post("/report", create_report)
    app.router.add_get("/ping", read_ping)
    app.router.add_get("/stats", read_stats)
    app.router.add_get("/metrics", read_metrics)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one")
    parser.add_argument("--workers", type=int, default=4, help="database connections kept open (default: 4)")
    args = parser.parse_args()
    web.run_app(make_app(workers=args.workers), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
