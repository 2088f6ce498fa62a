"""Observation: the built-in collector, lifecycle events and records, the exporters' skeleton."""
