"""The manager's public methods and lifecycle, built on the engine."""
