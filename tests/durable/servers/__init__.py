"""Real engine servers the durable tests start themselves (no engine installed system-wide is needed)."""
