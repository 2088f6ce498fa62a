"""The SQLite store: one file, shared by the processes of one machine."""

from .store import SQLiteStore

__all__ = ("SQLiteStore",)
