"""``ConfigOptions``: the keyword arguments of ``Config`` whose types do not name the resource.

Only type checkers use it: ``Config.__init__`` is overloaded for them (so that
``on_create`` may be sync or async and the resource type is still inferred),
and these are the arguments both overloads share. Each key's annotation is the
field's own, word for word; a test holds them together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    import logging
    import random
    from collections.abc import Awaitable, Callable, Sequence
    from typing import Literal

    from .._observe.events import LifecycleHook
    from .._observe.metrics import MetricsCollector
    from .._scaling.policies import ScalingPolicy
    from .config import LoggerProtocol

__all__ = ("ConfigOptions",)


class ConfigOptions(TypedDict, total=False):
    """Every ``Config`` field but ``on_create``, ``on_destroy`` and ``check_resource``; all optional."""

    destroy_timeout: float | None
    worker_count: int
    max_worker_count: int | None
    check_health: Callable[[BaseException], bool | Awaitable[bool]] | None
    max_retries: int
    retry_delay: float
    retry_multiplier: float
    retry_max_delay: float | None
    retry_jitter: float
    rng: random.Random | None
    burst_interval: float
    burst_task_threshold: int | None
    burst_worker_count: int
    resource_pool_size: int | None
    task_timeout: float | None
    max_queue_size: int
    max_per_second: float | None
    rate_limit_burst: int
    max_tasks_per_worker: int | None
    max_resource_age: float | None
    check_resource_interval: float
    creation_breaker_threshold: int | None
    creation_backoff_base: float
    creation_backoff_max: float
    cancel_grace: float
    max_temporary_resources: int | Literal["worker_count"] | None
    logger: logging.Logger | LoggerProtocol | None
    collector: MetricsCollector | None
    scaling_policy: ScalingPolicy | None
    hooks: Sequence[LifecycleHook]
