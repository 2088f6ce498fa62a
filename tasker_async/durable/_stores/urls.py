"""``open_store(url)``: a store chosen by its URL, so code and command lines name engines the same way."""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit

from ...errors import ConfigError
from .._model.serializer import Serializer
from .protocol import Store

__all__ = ("SUPPORTED", "open_store")

# The URL forms open_store takes, as its errors list them.
SUPPORTED = ("memory://", "sqlite:///relative.db", "sqlite:////absolute.db")


def _unsupported(detail: str) -> ConfigError:
    return ConfigError(f"{detail}; supported: {', '.join(SUPPORTED)}")


def _sqlite_path(url: str, parts: SplitResult) -> str:
    """The file an ``sqlite:`` URL names: the path after ``sqlite:///``, percent-decoded."""
    if parts.netloc:
        raise _unsupported(f"a sqlite URL names no host, got {parts.netloc!r} in {url!r}")
    if parts.query:
        raise _unsupported(f"a sqlite URL takes no query string, got {parts.query!r} in {url!r}")
    if parts.fragment:
        raise _unsupported(f"a sqlite URL takes no fragment, got {parts.fragment!r} in {url!r}")
    if not parts.path.startswith("/"):
        raise _unsupported(f"a sqlite URL starts with sqlite:/// then the path, got {url!r}")
    path = unquote(parts.path[1:])
    if not path or path.endswith("/"):
        raise _unsupported(f"a sqlite URL names a file, got {url!r}")
    return path


def open_store(url: str, *, serializer: Serializer | None = None) -> Store:
    """The store ``url`` names, not yet entered: enter it with ``async with``.

    - ``memory://``: a new ``MemoryStore`` (this process only; each call makes a separate one).
    - ``sqlite:///relative.db`` (relative to the working directory) or
      ``sqlite:////absolute.db``: an ``SQLiteStore`` on that file. The path is
      percent-decoded (``%20`` for a space, ``%3F`` for ``?``, ``%23`` for ``#``).

    Args:
        url: the store's URL.
        serializer: how the store encodes arguments and results (default JSON).

    Raises:
        ConfigError: the scheme is not supported (the message lists those that are), or the
            URL holds what its scheme does not take (a host or query string for sqlite).
        TypeError: ``url`` is not a str.
    """
    if not isinstance(url, str):
        raise TypeError(f"a store URL must be a str, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme == "memory":
        if parts.netloc or parts.path or parts.query or parts.fragment:
            raise _unsupported(f"memory:// takes nothing after it, got {url!r}")
        # Imported here: only the engine asked for is loaded.
        from .memory import MemoryStore

        return MemoryStore(serializer=serializer)
    if parts.scheme == "sqlite":
        path = _sqlite_path(url, parts)
        from .sqlite import SQLiteStore

        return SQLiteStore(path, serializer=serializer)
    if not parts.scheme:
        raise _unsupported(f"a store URL starts with its scheme, got {url!r}")
    # The rest of the URL is not shown: it may hold a password.
    raise _unsupported(f"no store for the URL scheme {parts.scheme!r}")
