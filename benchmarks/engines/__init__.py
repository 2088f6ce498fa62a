"""Engine benchmarks: tasker_async's durable stores against the Python queues on the same engine.

``python -m benchmarks.engines`` (see ``benchmarks/README.md``, section *Engines*): end-to-end throughput
of tasker_async and its peers on a local Redis and a local PostgreSQL, each system a worker command and
a producer (``_system.System``); ``--latency`` and ``--recovery`` measure tasker_async alone.
"""
