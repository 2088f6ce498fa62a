"""``open_store(url)``: a store chosen by its URL, so code and command lines name engines the same way."""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ...errors import ConfigError
from .._model.serializer import Serializer
from .protocol import Store

__all__ = ("SUPPORTED", "open_store")

# The URL forms open_store takes, as its errors list them.
SUPPORTED = (
    "memory://",
    "sqlite:///relative.db",
    "sqlite:////absolute.db",
    "postgresql://user@host:port/database",
    "redis://host:port/db",
    "rediss://host:port/db",
)


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


def _redis(parts: SplitResult, serializer: Serializer | None) -> Store:
    """A ``RedisStore``; the ``prefix`` query parameter is the store's, the rest goes to redis-py."""
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    rest = urlunsplit(parts._replace(query=urlencode([(n, v) for n, v in query if n != "prefix"])))
    from .redis import RedisStore

    if prefixes:
        return RedisStore(rest, serializer=serializer, prefix=prefixes[-1])
    return RedisStore(rest, serializer=serializer)


def _postgres(parts: SplitResult, serializer: Serializer | None) -> Store:
    """A ``PostgresStore`` on the URL; its ``schema`` and ``pool_size`` query parameters (taken out) are the store's."""
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {name: value for name, value in query if name in ("schema", "pool_size")}  # the last one of each counts
    rest = urlencode([(name, value) for name, value in query if name not in own])
    dsn = urlunsplit(parts._replace(query=rest))
    options: dict[str, Any] = {}
    if "schema" in own:
        options["schema"] = own["schema"]
    if "pool_size" in own:
        try:
            options["pool_size"] = int(own["pool_size"])
        except ValueError:
            raise ConfigError(
                f"pool_size in a postgresql URL must be a whole number, got {own['pool_size']!r}"
            ) from None
    from .postgres import PostgresStore

    return PostgresStore(dsn, serializer=serializer, **options)


def open_store(url: str, *, serializer: Serializer | None = None, create: bool = True) -> Store:
    """The store ``url`` names, not yet entered: enter it with ``async with``.

    - ``memory://``: a new ``MemoryStore`` (this process only; each call makes a separate one).
    - ``sqlite:///relative.db`` (relative to the working directory) or
      ``sqlite:////absolute.db``: an ``SQLiteStore`` on that file. The path is
      percent-decoded (``%20`` for a space, ``%3F`` for ``?``, ``%23`` for ``#``).
    - ``postgresql://user:password@host:port/database`` (or ``postgres://``): a ``PostgresStore``
      (the ``postgres`` extra); ``?schema=NAME`` puts its tables in that schema, ``?pool_size=N`` caps its
      connections (4 by default, the listener on top), other query parameters go to the driver.
    - ``redis://[user:password@]host[:port][/db]`` or ``rediss://...`` (TLS): a ``RedisStore`` (needs
      the ``redis`` extra); ``?prefix=name`` sets its key prefix, other query parameters go to redis-py.

    Args:
        url: the store's URL.
        serializer: how the store encodes arguments and results (default JSON).
        create: make the store when there is none yet (an SQLite file and its tables). False, to
            look at a store without making one where there is none: entering the store then raises
            ``StoreUnavailableError`` and leaves nothing behind. (``memory://`` is always a new store.)

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

        return SQLiteStore(path, serializer=serializer, create=create)
    if parts.scheme in ("redis", "rediss"):
        return _redis(parts, serializer)
    if parts.scheme in ("postgresql", "postgres"):
        return _postgres(parts, serializer)
    if not parts.scheme:
        raise _unsupported(f"a store URL starts with its scheme, got {url!r}")
    # The rest of the URL is not shown: it may hold a password.
    raise _unsupported(f"no store for the URL scheme {parts.scheme!r}")
