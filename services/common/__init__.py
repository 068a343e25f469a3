"""Pieces every service shares: settings, Redis keys, events, broker topology, live feed."""
