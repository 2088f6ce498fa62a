"""mypy --strict: ``Config`` infers its resource type from ``on_create``, sync or async, whatever comes with it.

Checked by ``mypy --strict tests/typing`` (and ``tests/test_typing.py``), never run. Each
``# type: ignore[...]`` line is a use that must be rejected: warn_unused_ignores fails the
check if it is ever accepted.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from typing import Any, assert_type

from tasker_async import AsyncManager, BacklogPolicy, Config, DefaultCollector, LifecycleEvent


class Conn:
    async def ping(self) -> bool:
        return True


class Other: ...


async def connect() -> Conn:
    return Conn()


def connect_sync() -> Conn:
    return Conn()


async def close(conn: Conn) -> None: ...


def close_sync(conn: Conn) -> None: ...


async def healthy(error: BaseException) -> bool:
    return not isinstance(error, ConnectionError)


def healthy_sync(error: BaseException) -> bool:
    return not isinstance(error, ConnectionError)


async def probe(conn: Conn) -> bool:
    return await conn.ping()


def probe_sync(conn: Conn) -> bool:
    return True


def close_other(other: Other) -> None: ...


def hook(event: LifecycleEvent) -> None: ...


def check_async_on_create() -> None:
    assert_type(Config(on_create=connect), Config[Conn])
    assert_type(Config(on_create=connect, on_destroy=close), Config[Conn])
    assert_type(Config(on_create=connect, on_destroy=close_sync), Config[Conn])
    assert_type(Config(on_create=connect, check_health=healthy), Config[Conn])
    assert_type(Config(on_create=connect, check_health=healthy_sync), Config[Conn])
    assert_type(Config(on_create=connect, check_resource=probe), Config[Conn])
    assert_type(Config(on_create=connect, check_resource=probe_sync), Config[Conn])
    assert_type(
        Config(on_create=connect, on_destroy=close, check_health=healthy, check_resource=probe, worker_count=2),
        Config[Conn],
    )


def check_sync_on_create() -> None:
    assert_type(Config(on_create=connect_sync), Config[Conn])
    assert_type(Config(on_create=Conn), Config[Conn])
    assert_type(Config(on_create=lambda: Conn()), Config[Conn])
    assert_type(Config(on_create=connect_sync, on_destroy=close), Config[Conn])
    assert_type(Config(on_create=connect_sync, on_destroy=close_sync), Config[Conn])
    assert_type(Config(on_create=connect_sync, check_health=healthy), Config[Conn])
    assert_type(Config(on_create=connect_sync, check_resource=probe_sync), Config[Conn])
    assert_type(Config(on_create=object), Config[object])


def check_lambdas_see_the_resource_type() -> None:
    assert_type(Config(on_create=connect, on_destroy=lambda conn: conn.ping()), Config[Conn])
    assert_type(Config(on_create=connect, check_resource=lambda conn: conn.ping()), Config[Conn])
    Config(on_create=connect, on_destroy=lambda conn: conn.nope())  # type: ignore[attr-defined]


def check_every_option_is_accepted() -> None:
    config = Config(
        on_create=connect,
        on_destroy=close,
        destroy_timeout=1.0,
        worker_count=2,
        max_worker_count=4,
        check_health=healthy,
        max_retries=1,
        retry_delay=0.1,
        retry_multiplier=2.0,
        retry_max_delay=1.0,
        retry_jitter=0.5,
        rng=random.Random(1),
        burst_interval=0.1,
        burst_task_threshold=10,
        burst_worker_count=2,
        resource_pool_size=1,
        task_timeout=5.0,
        max_queue_size=100,
        max_per_second=50.0,
        rate_limit_burst=5,
        max_tasks_per_worker=1000,
        max_resource_age=60.0,
        check_resource=probe,
        check_resource_interval=30.0,
        creation_breaker_threshold=3,
        creation_backoff_base=0.05,
        creation_backoff_max=5.0,
        cancel_grace=5.0,
        max_temporary_resources=None,
        logger=logging.getLogger("app"),
        collector=DefaultCollector(),
        scaling_policy=BacklogPolicy(threshold=10, step=2),
        hooks=[hook],
    )
    assert_type(config, Config[Conn])
    assert_type(Config(on_create=connect, max_temporary_resources="worker_count"), Config[Conn])


def check_settings_from_a_mapping(settings: dict[str, Any]) -> None:
    Config(on_create=connect, **settings)


def check_explicit_and_replaced() -> None:
    assert_type(Config[Conn](on_create=connect), Config[Conn])
    assert_type(dataclasses.replace(Config(on_create=connect), worker_count=3), Config[Conn])
    Config[Other](on_create=connect)  # type: ignore[arg-type]


def check_the_manager_takes_the_resource_type() -> None:
    assert_type(AsyncManager(Config(on_create=connect)), AsyncManager[Conn])
    assert_type(AsyncManager(Config(on_create=connect_sync, on_destroy=close)), AsyncManager[Conn])
    manager: AsyncManager[Conn] = AsyncManager(Config(on_create=connect))
    assert_type(manager, AsyncManager[Conn])


def check_wrong_uses_are_rejected() -> None:
    Config(on_create=connect, on_destroy=close_other)  # type: ignore[misc]
    Config(on_create=connect, check_resource=close_other)  # type: ignore[arg-type]
    Config(on_create=connect, check_health=lambda: True)  # type: ignore[arg-type, misc]
    Config(on_create=connect, worker_count="2")  # type: ignore[call-overload]
    Config(on_create=connect, timeout=5.0)  # type: ignore[call-overload]
    Config(on_create=connect, max_temporary_resources="all")  # type: ignore[call-overload]
    Config(on_destroy=close)  # type: ignore[call-overload]
    Config(connect)  # type: ignore[call-overload]
    manager: AsyncManager[Other] = AsyncManager(Config(on_create=connect))  # type: ignore[arg-type]
    del manager
