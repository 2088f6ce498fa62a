"""What a step function's signature says: the resource first, then the names it receives by keyword."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import WorkflowError

__all__ = ("Params", "read_params")

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@dataclass(frozen=True, slots=True)
class Params:
    """The parameters of a step function after its resource.

    Attributes:
        keywords: its keyword-only parameters, in signature order: workflow inputs and parent results.
        required: those of ``keywords`` without a default.
        takes_all: whether it takes ``**kwargs`` (and so receives every input and parent result).
        resource: the resource parameter's name when it could also be passed by keyword (``None`` when it
            is positional-only): a ``**kwargs`` step must not receive a value under that name.
    """

    keywords: tuple[str, ...]
    required: frozenset[str]
    takes_all: bool
    resource: str | None


def read_params(step: str, fn: Callable[..., Any]) -> Params:
    """Read the signature of step ``step``'s function ``async def fn(resource, *, name, ...)``.

    Raises:
        WorkflowError: it takes no resource, or a positional parameter (or ``*args``) after it.
    """
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:  # builtins and some C callables have no signature to read
        raise WorkflowError(f"step {step!r}: cannot read the signature of {fn!r} ({exc})") from exc
    if not parameters or parameters[0].kind not in _POSITIONAL:
        raise WorkflowError(
            f"step {step!r} must take its resource as its first positional parameter: "
            f"async def {step}(resource, *, ...)"
        )
    resource, rest = parameters[0], parameters[1:]
    positional = [p.name for p in rest if p.kind not in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)]
    if positional:
        names = ", ".join(repr(name) for name in positional)
        raise WorkflowError(
            f"step {step!r}: parameter(s) {names} come before `*`; a step receives its inputs and parent results "
            f"as keyword-only parameters: async def {step}({resource.name}, *, ...)"
        )
    keywords = tuple(p.name for p in rest if p.kind is inspect.Parameter.KEYWORD_ONLY)
    required = frozenset(
        p.name for p in rest if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    )
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in rest)
    by_keyword = resource.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    return Params(keywords, required, takes_all, resource.name if by_keyword else None)
