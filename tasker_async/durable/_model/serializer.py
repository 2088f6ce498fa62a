"""How arguments and results become bytes in a store: JSON by default, any ``Serializer`` by choice."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ("Call", "JSONSerializer", "Serializer", "decode_call", "encode_call", "refused_key")


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes and back; ``dumps`` raises ``TypeError`` or ``ValueError`` for what it cannot encode."""

    def dumps(self, value: Any) -> bytes:
        """Encode ``value``."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode what ``dumps`` made."""
        ...


# What ``json.dumps(value, separators=(",", ":"), allow_nan=False)`` builds on every call, built once: each
# submit encodes its arguments and each job its result (a new encoder per call costs more than most encodes).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


class JSONSerializer:
    """Compact JSON in UTF-8; NaN and infinities are refused, not written as invalid JSON."""

    __slots__ = ()

    def dumps(self, value: Any) -> bytes:
        """Encode ``value`` as JSON."""
        return _ENCODER.encode(value).encode()

    def loads(self, data: bytes) -> Any:
        """Decode JSON."""
        return json.loads(data)

    def __repr__(self) -> str:
        return "JSONSerializer()"


@dataclass(frozen=True, slots=True)
class Call:
    """The arguments of one job, decoded."""

    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


def _parameter_names(fn: Callable[..., Any] | None, count: int) -> list[str]:
    """The names of the parameters after the resource that ``count`` positional arguments go to."""
    if fn is None:
        return []
    try:
        parameters = list(inspect.signature(fn).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    names = []
    for parameter in parameters:
        if parameter.kind == parameter.VAR_POSITIONAL:
            break
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            names.append(parameter.name)
    return names[:count]


def _culprit(serializer: Serializer, fn: Callable[..., Any] | None, name: str, args: Sequence[Any]) -> str:
    """Name the first argument the serializer refuses: its parameter name, else its position."""
    names = _parameter_names(fn, len(args))
    for position, value in enumerate(args):
        try:
            serializer.dumps(value)
        except (TypeError, ValueError, OverflowError):
            where = f"parameter {names[position]!r}" if position < len(names) else f"argument {position + 1}"
            return f"{where} of {name!r} ({type(value).__name__}: {value!r:.80})"
    return f"the arguments of {name!r}"


def refused_key(serializer: Serializer, values: Mapping[str, Any]) -> str | None:
    """The first key of ``values`` whose value ``serializer`` cannot encode, or ``None``."""
    for key, value in values.items():
        try:
            serializer.dumps(value)
        except (TypeError, ValueError, OverflowError):
            return key
    return None


def encode_call(
    serializer: Serializer,
    name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any] | None = None,
    *,
    fn: Callable[..., Any] | None = None,
) -> bytes:
    """Encode a job's arguments; ``fn`` (the task function, resource first) names a refused argument.

    Raises:
        TypeError: the serializer cannot encode an argument; the message names its parameter or position.
    """
    try:
        return serializer.dumps({"args": list(args), "kwargs": dict(kwargs or {})})
    except (TypeError, ValueError, OverflowError) as exc:
        culprit = _culprit(serializer, fn, name, list(args))
        refused = refused_key(serializer, kwargs or {})
        if refused is not None:
            culprit = f"keyword argument {refused!r} of {name!r} ({type((kwargs or {})[refused]).__name__})"
        raise TypeError(f"{serializer!r} cannot encode {culprit}: {exc}") from exc


def decode_call(serializer: Serializer, payload: bytes) -> Call:
    """Decode a job's arguments.

    Raises:
        ValueError: the payload is not what ``encode_call`` makes.
    """
    try:
        data = serializer.loads(payload)
    except Exception as exc:
        raise ValueError(f"the payload cannot be decoded: {exc!r}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("args"), list) or not isinstance(data.get("kwargs"), dict):
        raise ValueError(f"the payload is not a call (args and kwargs): {data!r:.200}")
    return Call(tuple(data["args"]), data["kwargs"])
