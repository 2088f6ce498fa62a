"""Durable tasks: jobs stored in an engine, run by ``AsyncManager``s in any number of processes.

See the guide (docs/durable.md) and the contract (SPEC-durable §11).
"""

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
from ._stores.protocol import Store

__all__ = (
    "ConsumerInfo",
    "DeadLetterError",
    "DurableTask",
    "ErrorInfo",
    "JSONSerializer",
    "JobCancelledError",
    "JobEvent",
    "JobFailedError",
    "JobInfo",
    "JobLostError",
    "JobState",
    "QueueStats",
    "Registry",
    "RunFailedError",
    "Serializer",
    "Store",
    "StoreUnavailableError",
    "UnknownTaskError",
    "WorkflowError",
)
