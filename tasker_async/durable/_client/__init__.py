"""The producer side: ``Client`` submits jobs to a store, ``Job`` is a handle on one."""
