"""The dashboard application served in the test's own event loop, with its lifespan, to an httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette

from tasker_async.dashboard import create_app
from tasker_async.durable import Store


@asynccontextmanager
async def served(store: Store, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of ``create_app(store, **options)``, its lifespan (the sampler) running."""
    app = create_app(store, **options)
    async with lifespan(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dash") as http:
        yield http


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with app.router.lifespan_context(app):
        yield
