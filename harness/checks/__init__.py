"""Checks: pure functions of a recorded run."""
