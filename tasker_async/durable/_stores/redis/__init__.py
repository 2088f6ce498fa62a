"""``RedisStore``: the durable store on Redis or Valkey (needs the ``redis`` extra: redis-py)."""

try:
    import redis  # noqa: F401  (checked here so the message names the extra)
except ImportError as exc:  # pragma: no cover - exercised only without redis-py
    raise ImportError("RedisStore needs redis-py: pip install 'tasker-async[redis]'") from exc

from .store import RedisStore

__all__ = ("RedisStore",)
