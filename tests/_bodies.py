"""Task bodies shared by the exporter tests (Prometheus, OpenTelemetry)."""

from __future__ import annotations

import asyncio

from .conftest import Resource


class Broken(Exception):
    """An error that means the resource went bad."""


async def ok(resource: Resource) -> int:
    return resource.id


async def fail(resource: Resource) -> None:
    raise ValueError("bad input")


async def slow(resource: Resource) -> None:
    await asyncio.Event().wait()


async def broken_first(resource: Resource) -> int:
    if resource.id == 0:
        raise Broken
    return resource.id
