"""Durable tasks: jobs stored in an engine, run by ``AsyncManager``s in any number of processes.

See the guide (docs/durable.md) and the contract (SPEC-durable §11).
"""

from typing import TYPE_CHECKING, Any

from ._client.client import Client
from ._client.job import Job
from ._client.run import WorkflowRun
from ._consumer import Consumer, ConsumerHealth, ConsumerStats
from ._model.errors import (
    DeadLetterError,
    JobCancelledError,
    JobFailedError,
    JobLostError,
    RunFailedError,
    StoreUnavailableError,
    UnknownTaskError,
    WorkflowError,
)
from ._model.records import ConsumerInfo, ErrorInfo, JobEvent, JobInfo, JobState, QueueStats
from ._model.registry import DurableTask, Registry
from ._model.serializer import JSONSerializer, Serializer
from ._model.workflow import RunEvent, RunInfo, RunState, Step, StepEvent, StepInfo, StepState, Workflow
from ._stores.memory import MemoryStore
from ._stores.protocol import Store
from ._stores.sqlite import SQLiteStore
from ._stores.urls import open_store

if TYPE_CHECKING:
    from ._stores.postgres import PostgresStore
    from ._stores.redis import RedisStore

__all__ = (
    "Client",
    "Consumer",
    "ConsumerInfo",
    "ConsumerHealth",
    "ConsumerStats",
    "DeadLetterError",
    "DurableTask",
    "ErrorInfo",
    "JSONSerializer",
    "Job",
    "JobCancelledError",
    "JobEvent",
    "JobFailedError",
    "JobInfo",
    "JobLostError",
    "JobState",
    "MemoryStore",
    "PostgresStore",
    "QueueStats",
    "RedisStore",
    "Registry",
    "RunEvent",
    "RunFailedError",
    "RunInfo",
    "RunState",
    "SQLiteStore",
    "Serializer",
    "Step",
    "StepEvent",
    "StepInfo",
    "StepState",
    "Store",
    "StoreUnavailableError",
    "UnknownTaskError",
    "Workflow",
    "WorkflowError",
    "WorkflowRun",
    "open_store",
)


def __getattr__(name: str) -> Any:
    # RedisStore is loaded on first use: the core does not need redis-py (its ImportError names the extra).
    if name == "RedisStore":
        from ._stores.redis import RedisStore

        return RedisStore
    # PostgresStore likewise: the core does not need asyncpg.
    if name == "PostgresStore":
        from ._stores.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
