"""Find what ``worker MODULE[:REGISTRY]`` names: the module's registry and config, or a clear error."""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .._core.config import Config
from ..durable import Registry

__all__ = ("UsageError", "WorkerTarget", "load_target", "with_concurrency")

DEFAULT_REGISTRY = "registry"
DEFAULT_CONFIG = "config"


class UsageError(Exception):
    """What the user asked for cannot be done; the message says why (printed, exit code 2)."""


@dataclass(frozen=True, slots=True)
class WorkerTarget:
    """What a worker runs: the registry of its tasks and the config of its manager."""

    module: str
    registry: Registry
    config: Config[Any]


def _import(name: str) -> ModuleType:
    """Import ``name`` as ``python -m`` would: the current directory first on the path."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == name or name.startswith(missing + "."):
            raise UsageError(
                f"no module named {name!r} (looked in {here} and the installed packages; "
                "run the worker from the directory that holds it, or install it)"
            ) from None
        raise UsageError(f"importing {name!r} failed:\n{''.join(traceback.format_exception(exc))}") from None
    except Exception as exc:
        raise UsageError(f"importing {name!r} failed:\n{''.join(traceback.format_exception(exc))}") from None


def _attribute(module: ModuleType, name: str, kind: type, what: str) -> Any:
    if not hasattr(module, name):
        raise UsageError(f"module {module.__name__!r} has no attribute {name!r}: it must define {what}")
    value = getattr(module, name)
    if not isinstance(value, kind):
        raise UsageError(f"{module.__name__}.{name} is of type {type(value).__name__}, not {what}")
    return value


def load_target(spec: str) -> WorkerTarget:
    """Import ``MODULE[:REGISTRY]`` and take its registry (``registry`` by default) and its ``config``.

    Raises:
        UsageError: the module cannot be imported, or an attribute is missing or of the wrong type.
    """
    module_name, _, registry_name = spec.partition(":")
    if not module_name or (":" in spec and not registry_name):
        raise UsageError(f"expected MODULE or MODULE:REGISTRY, got {spec!r}")
    module = _import(module_name)
    registry = _attribute(module, registry_name or DEFAULT_REGISTRY, Registry, "a tasker_async.durable.Registry")
    config = _attribute(module, DEFAULT_CONFIG, Config, "a tasker_async.Config (its manager's config)")
    return WorkerTarget(module_name, registry, config)


def with_concurrency(config: Config[Any], concurrency: int | None) -> Config[Any]:
    """``config`` with ``worker_count`` set to ``concurrency``, and its burst ceiling scaled alike.

    ``max_worker_count`` keeps its ratio to ``worker_count`` (the default ceiling, twice the workers, stays
    twice; a config without burst workers stays without).

    Raises:
        UsageError: the config refuses the new counts.
    """
    if concurrency is None:
        return config
    ceiling = max(concurrency, concurrency * (config.max_worker_count or config.worker_count) // config.worker_count)
    try:
        return dataclasses.replace(config, worker_count=concurrency, max_worker_count=ceiling)
    except Exception as exc:
        raise UsageError(f"--concurrency {concurrency}: {exc}") from None
