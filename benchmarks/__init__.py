"""The benchmark suite: ``python -m benchmarks`` (see ``benchmarks/README.md``).

Every measurement runs in one process, against a hand-written two-queue pool
(the *floor*) measured back to back with each candidate, so the ratios hold
on any machine even when the absolute numbers do not.
"""
