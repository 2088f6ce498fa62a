"""The public surface: ``__all__`` lists exactly what the package offers."""

from __future__ import annotations

import importlib
import inspect

import tasker_async
from tasker_async import errors


def public_names(module: object) -> set[str]:
    return {name for name in vars(module) if not name.startswith("_") and not inspect.ismodule(getattr(module, name))}


def test_all_matches_the_importable_public_names() -> None:
    exported = set(tasker_async.__all__)
    assert len(exported) == len(tasker_async.__all__), "duplicates in __all__"
    for name in exported:
        assert hasattr(tasker_async, name), name
    # Everything public in the package namespace is exported (bar the version and annotations import).
    assert public_names(tasker_async) - {"annotations"} == exported


def test_errors_module_is_complete_and_reexported() -> None:
    assert set(errors.__all__) == public_names(errors) - {"annotations"}
    for name in errors.__all__:
        assert getattr(tasker_async, name) is getattr(errors, name)


def test_error_hierarchy() -> None:
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.TaskTimeoutError, TimeoutError)
    # Every error the library raises is a TaskerError; the two a task raises to steer its retries are not.
    for name in set(errors.__all__) - {"RetryableError", "PermanentError"}:
        assert issubclass(getattr(errors, name), errors.TaskerError)
    assert not issubclass(errors.RetryableError, errors.TaskerError)
    assert not issubclass(errors.PermanentError, errors.TaskerError)


def test_every_public_name_has_a_docstring() -> None:
    for name in tasker_async.__all__:
        obj = getattr(tasker_async, name)
        if inspect.isclass(obj):
            assert obj.__doc__, name


def test_private_modules_are_importable_but_not_exported() -> None:
    for module in (
        "_api.manager",
        "_core.worker",
        "_core.queue",
        "_core.config",
        "_observe.events",
        "_scaling.policies",
    ):
        importlib.import_module(f"tasker_async.{module}")
        assert module.split(".")[0] not in tasker_async.__all__
