"""``Config``: every knob of a manager, validated once, frozen afterwards."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, overload, runtime_checkable

from .._observe.events import LifecycleHook, checked_hooks
from .._observe.metrics import MetricsCollector
from .._scaling.policies import BacklogPolicy, RatePolicy, ScalingPolicy
from ..errors import ConfigError

if TYPE_CHECKING:
    from typing import Unpack

    from .config_options import ConfigOptions

__all__ = ("Config", "LoggerProtocol")

R = TypeVar("R")


@runtime_checkable
class LoggerProtocol(Protocol):
    """The logging methods the manager calls; ``logging.Logger`` satisfies it.

    Messages use ``%``-style arguments, so a logger that drops a level pays no
    formatting cost for it.
    """

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log per-task detail."""

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log lifecycle events."""

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log unhealthy errors and retries."""

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        """Log failures the manager cannot fix by itself."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    """A real number that fits a float and is finite (``10**400`` and ``nan`` are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def check_seconds(name: str, value: object, *, positive: bool = False, optional: bool = False) -> None:
    """Raise ``ConfigError`` unless ``value`` is a finite number of seconds (> 0 or >= 0; ``None`` if optional)."""
    if value is None and optional:
        return
    if not _is_number(value) or value < 0 or (positive and value == 0):  # type: ignore[operator]
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(name, value, f"a finite number of seconds {bound}{' or None' if optional else ''}")


# Fields holding seconds (or a rate): (name, must be > 0, may be None).
_SECONDS: tuple[tuple[str, bool, bool], ...] = (
    ("destroy_timeout", True, True),
    ("retry_delay", False, False),
    ("retry_max_delay", False, True),
    ("burst_interval", True, False),
    ("task_timeout", True, True),
    ("max_per_second", True, True),
    ("max_resource_age", True, True),
    ("check_resource_interval", True, False),
    ("cancel_grace", False, False),
    ("creation_backoff_base", True, False),
    ("creation_backoff_max", True, False),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config(Generic[R]):
    """How an :class:`~tasker_async.AsyncManager` makes resources and runs tasks.

    Every field is keyword-only and checked on construction.

    Args:
        on_create: makes one resource; sync or async.
        on_destroy: releases one resource; sync or async; always awaited,
            shielded from cancellation, its exceptions logged.
        destroy_timeout: seconds an async ``on_destroy`` may take before it
            is cancelled, logged and abandoned (``None``: wait as long as it
            takes).
        worker_count: base workers, always kept alive.
        max_worker_count: ceiling of base plus burst workers
            (``None``: twice ``worker_count``).
        check_health: given a task's exception, returns ``False`` when the
            worker's resource is bad; sync or async (``None``: every error
            is healthy).
        max_retries: re-runs of a task after an unhealthy error; 0 means none.
        retry_delay: seconds before a re-queued task may run again: the
            base of the backoff.
        retry_multiplier: each further retry of a task waits this many times
            longer (1: a constant delay).
        retry_max_delay: cap on the backoff (``None``: no cap).
        retry_jitter: fraction (0 to 1) by which each delay is randomly
            shortened, so retries of many tasks spread out.
        rng: random source for jitter (``None``: a fresh ``random.Random()``);
            pass a seeded one for repeatable delays.
        burst_interval: seconds between burst-scaling decisions.
        burst_task_threshold: if set, the backlog scaling policy is used.
        burst_worker_count: workers the backlog policy adds for every
            ``burst_task_threshold`` tasks queued.
        resource_pool_size: resources kept for ``run_task``
            (``None``: ``worker_count``; 0: none).
        task_timeout: default per-task deadline in seconds (``None``: none).
        max_queue_size: bound on each queue; 0 means unbounded.
        max_per_second: most task starts per second across the pool,
            ``run_task`` included (``None``: no limit); tasks wait their turn,
            none is dropped.
        rate_limit_burst: starts allowed at once above the steady rate.
        max_tasks_per_worker: a worker retires after this many tasks and a
            fresh one (new resource) replaces it (``None``: never).
        max_resource_age: seconds, within ±10%, after which a worker retires
            after its current task and is replaced (``None``: never).
        check_resource: ``(resource) -> bool``, sync or async, probed on idle
            workers every ``check_resource_interval`` seconds; ``False`` (or
            raising) replaces the resource.
        check_resource_interval: seconds between idle probes.
        creation_breaker_threshold: after this many ``on_create`` failures in
            a row while no worker is alive, queued and new tasks fail fast with
            ``ResourceCreationError`` until a creation succeeds (``None``: off).
        creation_backoff_base: seconds a worker waits after its first
            ``on_create`` failure in a row; each further failure doubles it,
            up to ``creation_backoff_max``. Every wait is jittered (drawn
            between half and all of it), and a successful creation lets the
            workers waiting out a backoff try again at once.
        creation_backoff_max: cap on that wait, in seconds.
        cancel_grace: seconds a cancelled run (its caller gave up, or its
            timeout expired) may take to finish its own cleanup (an
            ``except CancelledError`` or ``finally`` that awaits). A run still
            going that long after its cancellation has its resource treated
            as unhealthy: destroyed and replaced, never reused.
        max_temporary_resources: most temporary resources ``run_task`` holds
            at once when its pool is empty (default: ``worker_count``;
            ``None``: no cap). Beyond it, ``run_task`` waits for a pooled
            resource or a temporary slot.
        logger: where the manager logs (``None``: ``logging.getLogger("tasker_async")``).
        collector: the metrics collector (``None``: the built-in one).
        scaling_policy: decides when burst workers come and go (``None``:
            ``BacklogPolicy(threshold=burst_task_threshold,
            step=burst_worker_count)`` if ``burst_task_threshold`` is set,
            else ``RatePolicy()``); bursting is off when
            ``max_worker_count == worker_count``.
        hooks: plain (sync) callables told of every lifecycle event (see
            ``TaskEvent``); more can be added with ``AsyncManager.add_hook``.
            An ``async def`` hook is refused, as it would never be awaited: for
            async work, have a sync hook schedule it with
            ``asyncio.get_running_loop().create_task(...)``, keeping a
            reference to the task until it is done.

    Raises:
        ConfigError: a field holds a value it cannot take; the message names
            the field and the value.
    """

    on_create: Callable[[], R | Awaitable[R]]
    on_destroy: Callable[[R], object] | None = None
    destroy_timeout: float | None = None
    worker_count: int = 4
    max_worker_count: int | None = None
    check_health: Callable[[BaseException], bool | Awaitable[bool]] | None = None
    max_retries: int = 3
    retry_delay: float = 0.0
    retry_multiplier: float = 1.0
    retry_max_delay: float | None = None
    retry_jitter: float = 0.0
    rng: random.Random | None = field(default=None, repr=False)
    burst_interval: float = 0.1
    burst_task_threshold: int | None = None
    burst_worker_count: int = 1
    resource_pool_size: int | None = None
    task_timeout: float | None = None
    max_queue_size: int = 0
    max_per_second: float | None = None
    rate_limit_burst: int = 1
    max_tasks_per_worker: int | None = None
    max_resource_age: float | None = None
    check_resource: Callable[[R], bool | Awaitable[bool]] | None = None
    check_resource_interval: float = 30.0
    creation_breaker_threshold: int | None = None
    creation_backoff_base: float = 0.05
    creation_backoff_max: float = 5.0
    cancel_grace: float = 5.0
    max_temporary_resources: int | Literal["worker_count"] | None = "worker_count"
    logger: logging.Logger | LoggerProtocol | None = field(default=None, repr=False)
    collector: MetricsCollector | None = field(default=None, repr=False)
    scaling_policy: ScalingPolicy | None = None
    hooks: Sequence[LifecycleHook] = field(default=(), repr=False)

    # mypy cannot infer R from one factory type ``R | Awaitable[R]``: one overload per kind of factory.
    # Declared only: at runtime (and for doc tools) ``__init__`` is the one the dataclass makes.
    if TYPE_CHECKING:
        # fmt: off
        @overload  # type: ignore[no-overload-impl]
        def __init__(self, *, on_create: Callable[[], Awaitable[R]], on_destroy: Callable[[R], object] | None = ...,
                     check_resource: Callable[[R], bool | Awaitable[bool]] | None = ...,
                     **options: Unpack[ConfigOptions]) -> None: ...
        @overload
        def __init__(self, *, on_create: Callable[[], R], on_destroy: Callable[[R], object] | None = ...,
                     check_resource: Callable[[R], bool | Awaitable[bool]] | None = ...,
                     **options: Unpack[ConfigOptions]) -> None: ...
        # fmt: on

    def __post_init__(self) -> None:
        """Validate every field and resolve the defaults that depend on others."""
        self._check_callables()
        self._check_counts()
        self._check_seconds()
        self._check_resilience()
        self._check_collaborators()
        object.__setattr__(self, "hooks", checked_hooks(self.hooks))

    def _check_callables(self) -> None:
        if not callable(self.on_create):
            raise ConfigError("on_create", self.on_create, "a callable returning a resource")
        for name in ("on_destroy", "check_health", "check_resource"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ConfigError(name, value, "a callable or None")

    def _check_counts(self) -> None:
        if not _is_int(self.worker_count) or self.worker_count <= 0:
            raise ConfigError("worker_count", self.worker_count, "an int > 0")
        if self.max_worker_count is None:
            object.__setattr__(self, "max_worker_count", 2 * self.worker_count)
        elif not _is_int(self.max_worker_count) or self.max_worker_count < self.worker_count:
            bound = f"an int >= worker_count ({self.worker_count})"
            raise ConfigError("max_worker_count", self.max_worker_count, bound)
        self._check_int("max_retries", minimum=0)
        self._check_int("burst_worker_count", minimum=1)
        self._check_int("max_queue_size", minimum=0)
        if self.resource_pool_size is None:
            object.__setattr__(self, "resource_pool_size", self.worker_count)
        else:
            self._check_int("resource_pool_size", minimum=0)
        if self.burst_task_threshold is not None:
            self._check_int("burst_task_threshold", minimum=1)
        if self.max_temporary_resources == "worker_count":
            object.__setattr__(self, "max_temporary_resources", self.worker_count)
        elif self.max_temporary_resources is not None:
            self._check_int("max_temporary_resources", minimum=1)

    def _check_seconds(self) -> None:
        for name, positive, optional in _SECONDS:
            check_seconds(name, getattr(self, name), positive=positive, optional=optional)
        if self.creation_backoff_max < self.creation_backoff_base:
            bound = f"a number of seconds >= creation_backoff_base ({self.creation_backoff_base})"
            raise ConfigError("creation_backoff_max", self.creation_backoff_max, bound)

    def _check_resilience(self) -> None:
        if not _is_number(self.retry_multiplier) or self.retry_multiplier < 1:
            raise ConfigError("retry_multiplier", self.retry_multiplier, "a finite number >= 1")
        if not _is_number(self.retry_jitter) or not 0 <= self.retry_jitter <= 1:
            raise ConfigError("retry_jitter", self.retry_jitter, "a number from 0 to 1")
        if self.rng is not None and not isinstance(self.rng, random.Random):
            raise ConfigError("rng", self.rng, "a random.Random or None")
        self._check_int("rate_limit_burst", minimum=1)
        for name in ("max_tasks_per_worker", "creation_breaker_threshold"):
            if getattr(self, name) is not None:
                self._check_int(name, minimum=1)

    def _check_collaborators(self) -> None:
        if self.logger is not None and not isinstance(self.logger, (logging.Logger, LoggerProtocol)):
            raise ConfigError("logger", self.logger, "a logging.Logger, a LoggerProtocol or None")
        if self.collector is not None and not isinstance(self.collector, MetricsCollector):
            methods = "record_arrival, record_completion, record_failure, record_retry and metrics methods"
            raise ConfigError("collector", self.collector, f"an object with {methods}, or None")
        if self.scaling_policy is None:
            if self.burst_task_threshold is None:
                policy: ScalingPolicy = RatePolicy()
            else:
                policy = BacklogPolicy(threshold=self.burst_task_threshold, step=self.burst_worker_count)
            object.__setattr__(self, "scaling_policy", policy)
        elif not isinstance(self.scaling_policy, ScalingPolicy):
            expected = "an object with a decide(snapshot) method, or None"
            raise ConfigError("scaling_policy", self.scaling_policy, expected)

    def _check_int(self, name: str, *, minimum: int) -> None:
        value = getattr(self, name)
        if not _is_int(value) or value < minimum:
            raise ConfigError(name, value, f"an int >= {minimum}")
