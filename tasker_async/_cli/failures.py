"""The failures a command tells in one line rather than a traceback, and the exit code each gives."""

from __future__ import annotations

import sys

from ..durable import StoreUnavailableError
from ..errors import ConfigError

__all__ = ("TOLD", "tell")

# Bad input (a URL, a queue name), or a store that cannot be reached: the user can act on the message alone.
TOLD = (ConfigError, StoreUnavailableError)


def tell(exc: ConfigError | StoreUnavailableError) -> int:
    """Print why the command stopped; return its exit code: 1 when the store is unavailable, 2 for bad input."""
    if isinstance(exc, StoreUnavailableError):
        sys.stderr.write(f"error: the store is unavailable: {exc}\n")
        return 1
    sys.stderr.write(f"error: {exc}\n")
    return 2
