"""The engine: the task ledger, the queues, workers, cancellation, resources, the run_task pool."""
