"""Burst scaling: pure policies, and the supervisor that applies their decisions."""
