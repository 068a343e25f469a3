"""Observation: probes, alerts, the effects observer, broker and store watchers."""
