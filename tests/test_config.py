"""Config: defaults, resolution of dependent defaults, and validation naming field and value."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import pytest

from tasker_async import Config, ConfigError, TaskLifecycleTimestamps, TaskMetrics


def make() -> object:
    return object()


def test_defaults_follow_the_spec() -> None:
    config = Config(on_create=make)
    assert config.worker_count == 4
    assert config.max_worker_count == 8
    assert config.max_retries == 3
    assert config.retry_delay == 0
    assert config.burst_interval == 0.1
    assert config.burst_task_threshold is None
    assert config.burst_worker_count == 1
    assert config.resource_pool_size == 4
    assert config.task_timeout is None
    assert config.max_queue_size == 0
    assert config.check_health is None
    assert config.on_destroy is None


def test_dependent_defaults_follow_worker_count() -> None:
    config = Config(on_create=make, worker_count=3)
    assert config.max_worker_count == 6
    assert config.resource_pool_size == 3


def test_config_is_frozen_and_keyword_only() -> None:
    config = Config(on_create=make)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.worker_count = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        Config(make)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("worker_count", 0),
        ("worker_count", -1),
        ("worker_count", 1.5),
        ("worker_count", True),
        ("max_worker_count", 3),
        ("max_retries", -1),
        ("retry_delay", -0.1),
        ("retry_delay", math.nan),
        ("burst_interval", 0),
        ("burst_task_threshold", 0),
        ("burst_worker_count", 0),
        ("resource_pool_size", -1),
        ("task_timeout", 0),
        ("destroy_timeout", -1),
        ("task_timeout", math.inf),
        ("max_queue_size", -1),
        ("on_destroy", "not callable"),
        ("check_health", 42),
        ("logger", "tasker"),
        ("collector", object()),
    ],
)
def test_bad_values_name_the_field_and_the_value(field: str, value: Any) -> None:
    options: dict[str, Any] = {"on_create": make, "worker_count": 4, field: value}
    with pytest.raises(ConfigError) as caught:
        Config(**options)
    assert caught.value.field == field
    assert caught.value.value is value
    assert f"Config.{field}" in str(caught.value)
    assert repr(value) in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_on_create_must_be_callable() -> None:
    with pytest.raises(ConfigError, match="on_create"):
        Config(on_create=42)  # type: ignore[call-overload]


def test_max_retries_zero_is_kept() -> None:
    assert Config(on_create=make, max_retries=0).max_retries == 0


def test_accepts_a_logger_and_a_custom_collector() -> None:
    class Collector:
        def record_arrival(self) -> None: ...
        def record_completion(self, stamps: TaskLifecycleTimestamps) -> None: ...
        def record_failure(self, stamps: TaskLifecycleTimestamps) -> None: ...
        def record_retry(self) -> None: ...
        def metrics(self) -> TaskMetrics:
            return TaskMetrics()

    logger = logging.getLogger("test")
    config = Config(on_create=make, logger=logger, collector=Collector())
    assert config.logger is logger
