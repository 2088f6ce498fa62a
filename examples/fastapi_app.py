"""A FastAPI service that funnels its database work through a pool of connections.

Each worker of the manager holds one connection to a (simulated) database;
request handlers never touch a connection themselves, they hand a task to the
manager and await its result. The manager starts with the application and,
at shutdown, after the server has answered the requests in flight, drains
its queues and closes every connection.

    GET  /users/{user_id}  a lookup, queued on the main queue
    POST /report           a report, queued with priority: it overtakes queued lookups
    GET  /ping             a round trip through run_task: on a spare connection, bypassing the queues
    GET  /stats            manager.stats() and manager.metrics() as JSON
    GET  /metrics          the same in Prometheus text format (needs prometheus_client)

Run: python examples/fastapi_app.py [--host 127.0.0.1] [--port 8000] [--workers 4]
Or:  uvicorn fastapi_app:app --app-dir examples
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Annotated, Any

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from tasker_async import AsyncManager, Config, ManagerNotRunningError, TaskTimeoutError
from tasker_async.fastapi import get_manager, manager_lifespan

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

Manager = Annotated[AsyncManager[Connection], Depends(get_manager)]
router = APIRouter()


@router.get("/users/{user_id}")
async def read_user(user_id: int, manager: Manager) -> dict[str, Any]:
    user = await manager.queue_task(fetch_user, user_id)
    if user is None:
        raise HTTPException(status_code=404, detail=f"no user {user_id}")
    return user


@router.post("/report")
async def create_report(manager: Manager) -> dict[str, Any]:
    return await manager.queue_task(build_report, priority=True)


@router.get("/ping")
async def read_ping(manager: Manager) -> dict[str, Any]:
    return await manager.run_task(ping)


@router.get("/stats")
async def read_stats(manager: Manager) -> dict[str, Any]:
    return {"stats": asdict(manager.stats()), "metrics": asdict(manager.metrics())}


@router.get("/metrics")
async def read_metrics(request: Request) -> Response:
    registry = getattr(request.app.state, "registry", None)
    if registry is None:
        raise HTTPException(status_code=404, detail="install prometheus_client to get /metrics")
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def not_running(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": "shutting down"}, status_code=503)


async def timed_out(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=504)


def create_app(db: FakeDatabase | None = None, *, workers: int = 4) -> FastAPI:
    """Build the application around ``db`` (a fresh ``FakeDatabase`` by default)."""
    database = FakeDatabase() if db is None else db
    tasker = manager_lifespan(make_config(database, workers))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The manager's lifespan, entered inside the application's own.
        async with tasker(app):
            if instrument is not None:
                app.state.registry = CollectorRegistry()
                instrument(app.state.tasker, registry=app.state.registry, prefix="tasker")
            yield

    app = FastAPI(title="tasker_async FastAPI example", lifespan=lifespan)
    app.state.db = database
    app.include_router(router)
    app.add_exception_handler(ManagerNotRunningError, not_running)
    app.add_exception_handler(TaskTimeoutError, timed_out)
    return app


app = create_app()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one")
    parser.add_argument("--workers", type=int, default=4, help="database connections kept open (default: 4)")
    args = parser.parse_args()
    uvicorn.run(create_app(workers=args.workers), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
