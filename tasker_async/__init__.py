"""tasker_async: run async tasks through a pool of workers, each bound to its own resource.

A typical use::

    async with AsyncManager(Config(on_create=connect, on_destroy=close)) as manager:
        rows = await manager.queue_task(fetch_rows, "select 1")
"""

from __future__ import annotations

from ._api.manager import AsyncManager
from ._core.config import Config, LoggerProtocol
from ._core.handle import TaskHandle
from ._observe.collector import DefaultCollector
from ._observe.events import (
    LifecycleEvent,
    LifecycleHook,
    ResourceCreationFailed,
    ScalingEvent,
    TaskEvent,
    TaskEventKind,
    WorkerEvent,
    WorkerEventKind,
)
from ._observe.metrics import MetricsCollector, TaskLifecycleTimestamps, TaskMetrics
from ._observe.stats import ManagerState, TaskStats
from ._scaling.policies import BacklogPolicy, RatePolicy, ScalingDecision, ScalingPolicy, ScalingSnapshot
from .errors import (
    ConfigError,
    ManagerNotRunningError,
    MaxRetriesExceededError,
    PermanentError,
    QueueFullError,
    ResourceCreationError,
    RetryableError,
    TaskAbortedError,
    TaskerError,
    TaskTimeoutError,
)

__all__ = (
    "AsyncManager",
    "BacklogPolicy",
    "Config",
    "ConfigError",
    "DefaultCollector",
    "LifecycleEvent",
    "LifecycleHook",
    "LoggerProtocol",
    "ManagerNotRunningError",
    "ManagerState",
    "MaxRetriesExceededError",
    "MetricsCollector",
    "PermanentError",
    "QueueFullError",
    "RatePolicy",
    "ResourceCreationError",
    "ResourceCreationFailed",
    "RetryableError",
    "ScalingDecision",
    "ScalingEvent",
    "ScalingPolicy",
    "ScalingSnapshot",
    "TaskAbortedError",
    "TaskEvent",
    "TaskEventKind",
    "TaskHandle",
    "TaskLifecycleTimestamps",
    "TaskMetrics",
    "TaskStats",
    "TaskTimeoutError",
    "TaskerError",
    "WorkerEvent",
    "WorkerEventKind",
)

__version__ = "0.1.0"
