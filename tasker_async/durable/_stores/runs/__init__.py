"""What the stores share about workflow runs: the plans they keep, the jobs they release, the transitions' glue."""
