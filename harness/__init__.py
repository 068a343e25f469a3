"""Outage Lab harness: stack control, history, checker, load, probes, runner, reports, CLI."""
