"""The consumer: feeds an ``AsyncManager`` from a store, renews what it holds, records what its runs did."""

from .consumer import Consumer
from .stats import ConsumerHealth, ConsumerStats

__all__ = ("Consumer", "ConsumerHealth", "ConsumerStats")
